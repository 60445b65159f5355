// The compliance commands of the `postern` CLI against a spawned server, as an operator runs them:
// policies, holds, deletion (a held entry cannot be deleted through the CLI), purge with --dry-run,
// acting as a user with --as, auditor creation; every command has --help; bad input exits 1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { spawnServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';

let dataDir: string;
let srv: SpawnedServer;

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { dataDir, adminPort: srv?.adminPort }, env);
}

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await cli(args, env);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function fails(args: string[], pattern: RegExp, env: Record<string, string> = {}): Promise<void> {
  const r = await cli(args, env);
  assert.equal(r.code, 1, `${args.join(' ')} should fail: ${r.stdout}`);
  assert.match(r.stderr, pattern);
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'postern-compliance-cli-'));
  srv = await spawnServer(dataDir);
});
after(async () => {
  srv.child.kill('SIGTERM');
  await srv.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

test('every compliance command has --help', async () => {
  const top = await ok(['--help']);
  assert.match(await ok(['auditor', '--help']), /create[\s\S]*list[\s\S]*get/);
  for (const cmd of ['policy', 'hold', 'retention', 'delete', 'purge', 'auditor', 'privileges']) assert.match(top, new RegExp(`\\n  ${cmd}\\b`));
  assert.match(await ok(['policy', '--help']), /list[\s\S]*add[\s\S]*remove/);
  assert.match(await ok(['policy', 'add', '--help']), /--minimum <duration>[\s\S]*--maximum <duration>[\s\S]*--direction/);
  assert.match(await ok(['hold', '--help']), /create[\s\S]*release[\s\S]*list[\s\S]*show/);
  assert.match(await ok(['hold', 'create', '--help']), /--query <expression>/);
  assert.match(await ok(['delete', '--help']), /delete privilege/);
  assert.match(await ok(['purge', '--help']), /--dry-run/);
  assert.match(await ok(['auditor', 'create', '--help']), /auditor-YYYYMMDD-HHMMSS/);
  assert.match(await ok(['delete', '--help']), /--as <user>/);
});

test('policies, holds, deletion and purge through the CLI; a held entry cannot be deleted', async () => {
  await ok(['user', 'add', 'alice', '--address', 'alice@example.com']);
  await ok(['user', 'add', 'carol', '--address', 'carol@example.com']);
  assert.equal(await ok(['policy', 'add', 'short', '--user', 'alice', '--minimum', '0d', '--maximum', '0d']), 'Added policy short (minimum 0d, maximum 0d)\n');
  await fails(['policy', 'add', 'bad', '--minimum', 'soon'], /Duration "soon"/);
  await fails(['policy', 'add', 'bad'], /required option '--minimum <duration>'/);
  assert.match(await ok(['policy', 'list']), /^short\tarchive\tmin 0d\tmax 0d\t\{"users":\["alice"\]\}$/m);

  const c = await SmtpClient.open(srv.smtpPort);
  await c.read();
  await c.cmd('EHLO cli.example');
  for (let n = 1; n <= 4; n++) {
    const body = `From: p@client.example\r\nTo: alice@example.com\r\nSubject: Deal ${n}\r\n\r\nbody ${n}\r\n`;
    assert.equal((await sendMail(c, 'p@client.example', ['alice@example.com'], body)).code, 250);
    await waitDrained(srv); // archived one by one: UID n is "Deal n"
  }
  c.close();
  await waitDrained(srv);

  assert.match(await ok(['hold', 'create', 'deal-2', '--description', 'Deal two dispute', '--query', 'subject:"deal 2"']), /^Created hold deal-2: \{"query":"subject:\\"deal 2\\""\}$/m);
  await fails(['hold', 'create', 'bad', '--query', 'body:x'], /Hold query field "body" is unknown/);
  await fails(['hold', 'create', 'bad'], /A hold needs a scope/);
  assert.match(await ok(['hold', 'list']), /^deal-2\tactive\t/m);
  assert.match(await ok(['hold', 'show', 'deal-2']), /^Description: Deal two dispute$/m);
  assert.match(await ok(['retention', 'show', 'alice', '2']), /^Held: +hold:deal-2$/m);

  await fails(['delete', 'alice', 'Inbox', '2'], /cannot be deleted: hold:deal-2/);
  await fails(['delete', 'alice', 'Inbox', 'two'], /UID "two" must be a number/);
  await fails(['delete', 'alice', 'Inbox', '99'], /No entry alice\/Inbox\/99/);
  assert.equal(await ok(['delete', 'alice', 'Inbox', '1']), 'Deleted 1 entry (1 message and 1 blob removed)\n');

  // Acting as a user: carol needs a password, the login privilege, then the delete privilege.
  await srv.api('PUT', '/api/v1/account/password', { user: 'carol', password: 'carol password' });
  const asCarol = ['--as', 'carol'];
  await fails(['delete', 'alice', 'Inbox', '3', ...asCarol], /POSTERN_PASSWORD/);
  await fails(['delete', 'alice', 'Inbox', '3', ...asCarol], /Wrong user name or password for --as carol \(POSTERN_PASSWORD\), or "carol" may not sign in/, { POSTERN_PASSWORD: 'carol password' });
  assert.equal(await ok(['privileges', 'carol', '--add', 'login']), 'carol: login\n');
  await fails(['delete', 'alice', 'Inbox', '3', ...asCarol], /needs the "delete" privilege/, { POSTERN_PASSWORD: 'carol password' });
  await ok(['privileges', 'carol', '--add', 'delete']);
  await fails(['delete', 'alice', 'Inbox', '2', ...asCarol], /cannot be deleted: hold:deal-2/, { POSTERN_PASSWORD: 'carol password' });
  await fails(['hold', 'release', 'deal-2', ...asCarol], /needs the "compliance" privilege/, { POSTERN_PASSWORD: 'carol password' });

  assert.match(await ok(['purge', '--dry-run', ...asCarol], { POSTERN_PASSWORD: 'carol password' }), /^Dry run: would delete 2 entries \(0 messages, 0 blobs removed\); skipped 1 held, 0 vetoed;/);
  assert.match(await ok(['purge']), /^Deleted 2 entries \(2 messages, 2 blobs removed\); skipped 1 held, 0 vetoed;/);
  await fails(['purge', '--batch-size', '0'], /batchSize/);
  assert.equal((await srv.api<{ entries: unknown[] }>('GET', '/api/v1/archive/alice/messages')).entries.length, 1);

  assert.match(await ok(['hold', 'release', 'deal-2']), /^Released hold deal-2 at /);
  await fails(['hold', 'release', 'deal-2'], /No active hold "deal-2"/);
  assert.match(await ok(['hold', 'list', '--all']), /^deal-2\treleased /m);
  await fails(['hold', 'everything', 'maybe'], /must be "on" or "off"/);
  assert.equal(await ok(['hold', 'everything', 'on']), 'Hold everything on\n');
  await fails(['delete', 'alice', 'Inbox', '2'], /hold-everything/);
  await ok(['hold', 'everything', 'off']);
  assert.match(await ok(['delete', 'alice', 'Inbox', '2']), /^Deleted 1 entry/);
  assert.equal(await ok(['policy', 'remove', 'short']), 'Removed policy short\n');
});

test('auditor create prints a timestamped name and a password once; the auditor reads any archive and changes nothing', async () => {
  const out = await ok(['auditor', 'create']);
  const m = /^Auditor: (auditor-\d{8}-\d{6})\nPassword: (\S{20,})\n/.exec(out);
  assert.ok(m, out);
  const users = await ok(['user', 'list', '--json']);
  assert.match(users, new RegExp(`"name": "${m[1]}"`));
  const env = { POSTERN_PASSWORD: m[2] as string };
  assert.match(await ok(['hold', 'list', '--as', m[1] as string], env), /^Hold everything: off$/m);
  await fails(['hold', 'create', 'x', '--user', 'alice', '--as', m[1] as string], /Auditors can read archives but not change anything/, env);

  const c = await SmtpClient.open(srv.smtpPort);
  await c.read();
  await c.cmd('EHLO cli.example');
  const body = 'From: p@client.example\r\nTo: carol@example.com\r\nSubject: For carol\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\ncarol body\r\n';
  assert.equal((await sendMail(c, 'p@client.example', ['carol@example.com'], body)).code, 250);
  c.close();
  await waitDrained(srv);
  assert.equal(await ok(['auditor', 'list', 'carol', '--as', m[1] as string], env), '1\t2026-11-02T10:00:00.000Z\tp@client.example\tFor carol\n');
  assert.equal(await ok(['auditor', 'get', 'carol', '1', '--as', m[1] as string], env), body);
  await fails(['auditor', 'get', 'carol', '1', '--as', m[1] as string], /Wrong user name or password for --as auditor-/, { POSTERN_PASSWORD: 'wrong password' });
  await fails(['delete', 'carol', 'Inbox', '1', '--as', m[1] as string], /Auditors can read archives but not change anything/, env);
});

test('a hold by address covers sub-addressed mail, and a subject phrase matches a tab or a folded subject', async () => {
  await ok(['user', 'add', 'dave', '--address', 'dave@example.com']);
  await ok(['hold', 'create', 'dave-case', '--address', 'dave@example.com']);
  await ok(['hold', 'create', 'contract-42', '--query', 'subject:"contract 42"']);
  const c = await SmtpClient.open(srv.smtpPort);
  await c.read();
  await c.cmd('EHLO cli.example');
  const mails = [
    ['dave+legal@example.com', 'From: p@client.example\r\nTo: dave+legal@example.com\r\nSubject: For the case\r\n\r\nbody\r\n'],
    ['dave@example.com', 'From: p@client.example\r\nTo: dave@example.com\r\nSubject: About contract\t42\r\n\r\nbody\r\n'],
    ['dave@example.com', 'From: p@client.example\r\nTo: dave@example.com\r\nSubject: About contract\r\n 42, folded\r\n\r\nbody\r\n'],
  ] as const;
  for (const [rcpt, body] of mails) assert.equal((await sendMail(c, 'p@client.example', [rcpt], body)).code, 250);
  c.close();
  await waitDrained(srv);
  const entries = (await srv.api<{ entries: Array<{ uid: number; subject: string }> }>('GET', '/api/v1/archive/dave/messages')).entries;
  assert.equal(entries.length, 3, 'all three filed into dave\'s Inbox');
  const uidOf = (subject: RegExp): string => String(entries.find((e) => subject.test(e.subject))?.uid);
  const subaddressed = uidOf(/For the case/);
  assert.match(await ok(['retention', 'show', 'dave', subaddressed]), /^Held: +hold:dave-case$/m);
  await fails(['delete', 'dave', 'Inbox', subaddressed], /cannot be deleted: hold:dave-case/);
  await ok(['hold', 'release', 'dave-case']);
  for (const uid of [uidOf(/\t42/), uidOf(/folded/)]) {
    assert.match(await ok(['retention', 'show', 'dave', uid]), /^Held: +hold:contract-42$/m, `uid ${uid}`);
    await fails(['delete', 'dave', 'Inbox', uid], /cannot be deleted: hold:contract-42/);
  }
  assert.match(await ok(['retention', 'show', 'dave', subaddressed]), /^Held: +no$/m);
  await ok(['hold', 'release', 'contract-42']);
});
