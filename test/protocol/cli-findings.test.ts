// New-user findings on the `postern` CLI against a spawned server: import summaries per archive,
// --as sign-in failures, EPIPE on a closed pipe, folder names in archive list, repeatable options,
// API validation errors as sentences, unknown POSTERN_ variables, the hidden _unrouted archive, and
// plurals/articles in printouts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';
import { CLI, runCli, type CliResult } from '../helpers/cli.ts';

const fx = (name: string): string => fileURLToPath(new URL(`../fixtures/import/${name}`, import.meta.url));
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

async function fails(args: string[], pattern: RegExp, env: Record<string, string> = {}): Promise<string> {
  const r = await cli(args, env);
  assert.notEqual(r.code, 0, `${args.join(' ')} should fail: ${r.stdout}`);
  assert.match(r.stderr, pattern);
  return r.stderr;
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'postern-cli-findings-'));
  srv = await spawnServer(dataDir);
});
after(async () => {
  srv.child.kill('SIGTERM');
  await srv.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

test('import --user after an import without it reports the entries added to that archive, duplicates included', async () => {
  await ok(['user', 'add', 'bob', '--address', 'bob@example.com']);
  await ok(['user', 'add', 'alice', '--address', 'alice@example.com']);
  const first = await ok(['import', 'mbox', fx('mboxrd.mbox')]);
  assert.match(first, /^Archived: +3 /m);
  assert.doesNotMatch(first, /^Into /m, 'no per-archive line without --user (the router decides)');
  await waitDrained(srv);
  const second = await ok(['import', 'mbox', fx('mboxrd.mbox'), '--user', 'alice']);
  assert.match(second, /^Archived: +0 .*\nDuplicates: +3 /m);
  assert.match(second, /^Into alice\/Inbox: 3 entries added, 0 messages already there$/m);
  await waitDrained(srv);
  assert.equal((await srv.api<{ entries: unknown[] }>('GET', '/api/v1/archive/alice/messages')).entries.length, 3);
  const third = await ok(['import', 'mbox', fx('mboxrd.mbox'), '--user', 'alice', '--folder', 'Old']);
  assert.match(third, /^Into alice\/Old: 3 entries added, 0 messages already there$/m);
  await waitDrained(srv);
  const again = await ok(['import', 'mbox', fx('mboxrd.mbox'), '--user', 'alice']);
  assert.match(again, /^Into alice\/Inbox: 0 entries added, 3 messages already there$/m);
});

test('--as with a wrong password or without the login privilege says so, the same way for both', async () => {
  await ok(['user', 'add', 'gina', '--address', 'gina@example.com']);
  await srv.api('PUT', '/api/v1/account/password', { user: 'gina', password: 'gina password' });
  const expected = /Wrong user name or password for --as gina \(POSTERN_PASSWORD\), or "gina" may not sign in \(needs the "login" privilege\)/;
  const noLogin = await fails(['hold', 'list', '--as', 'gina'], expected, { POSTERN_PASSWORD: 'gina password' });
  await ok(['privileges', 'gina', '--add', 'login']);
  const wrong = await fails(['hold', 'list', '--as', 'gina'], expected, { POSTERN_PASSWORD: 'not her password' });
  assert.equal(noLogin, wrong, 'no password oracle: both refusals read alike');
  assert.doesNotMatch(wrong, /bearer token/);
  await fails(['auditor', 'get', 'gina', '1', '--as', 'gina'], expected, { POSTERN_PASSWORD: 'not her password' });
  await fails(['hold', 'list', '--as', 'nobody'], /Wrong user name or password for --as nobody/, { POSTERN_PASSWORD: 'whatever1' });
});

test('output into a closed pipe (postern … | head) ends quietly with status 0', async () => {
  for (const args of [['config', 'env'], ['user', 'list']]) {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, POSTERN_DATA_DIR: dataDir, POSTERN_ADMIN_PORT: String(srv.adminPort) },
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(stderr, '', `${args.join(' ')}: nothing on stderr`);
    assert.equal(code, 0, args.join(' '));
  }
});

test('archive list takes IMAP names and any letter case, and fails clearly on an unknown folder', async () => {
  await ok(['user', 'add', 'kim', '--address', 'kim@example.com']);
  const inbox = await ok(['archive', 'list', 'alice']);
  assert.notEqual(inbox, '');
  assert.equal(await ok(['archive', 'list', 'alice', '--folder', 'INBOX']), inbox);
  assert.equal(await ok(['archive', 'list', 'alice', '--folder', 'inbox']), inbox);
  assert.equal(await ok(['archive', 'list', 'alice', '--folder', 'old']), await ok(['archive', 'list', 'alice', '--folder', 'Old']));
  const r = await cli(['archive', 'list', 'alice', '--folder', 'Archive']);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /User "alice" has no folder "Archive"; the folders are "Inbox", "Sent", "Old"/);
  assert.equal(await ok(['archive', 'list', 'alice', '--folder', 'sent']), await ok(['archive', 'list', 'alice', '--folder', 'Sent']));
  assert.equal(await ok(['archive', 'list', 'kim', '--folder', 'Sent']), '', 'the sent folder exists for every user, empty at first');
  const raw = await ok(['archive', 'get', 'alice', '1', '--folder', 'INBOX']);
  assert.match(raw, /^From: /);
  await fails(['archive', 'get', 'alice', '1', '--folder', 'Nope'], /User "alice" has no folder "Nope"/);
});

test('repeatable options are not variadic: the name after them is the name', async () => {
  assert.equal(await ok(['user', 'add', '--address', 'hal@example.com', 'hal']), 'Added user hal (hal@example.com)\n');
  assert.equal(await ok(['user', 'add', '--address', 'ida@example.com', '--address', 'i.da@example.com', '--domain', 'ida.example', 'ida']),
    'Added user ida (ida@example.com, i.da@example.com, @ida.example)\n');
  assert.match(await ok(['user', 'add', '--help']), /--address <address> +mail address of the user \(repeatable\)/);
});

test('API validation errors read as sentences', async () => {
  const r = await cli(['user', 'add', 'jo']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'postern: A user needs at least one address or domain\n');
  await fails(['user', 'edit', 'jo', '--add-group', 'Not Valid'], /User "jo" does not exist|"addGroups" item 1 must be lower-case/);
  await fails(['user', 'edit', 'hal', '--add-group', 'Not Valid'], /^postern: "addGroups" item 1 must be lower-case letters, digits/);
});

test('unknown POSTERN_ variables are warned about, naming the closest one', async () => {
  const r = await cli(['config', 'check'], { POSTERN_SMTP_PORTT: '25' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^postern: warning: Environment variable POSTERN_SMTP_PORTT is not a Postern setting and changes nothing \(did you mean POSTERN_SMTP_PORT\?\)$/m);
  const clean = await cli(['config', 'check'], { POSTERN_PASSWORD: 'x' });
  assert.equal(clean.stderr, '', 'settings and the CLI\'s own variables are known');
  assert.equal(srv.logs.filter((l) => l.includes('is not a Postern setting')).length, 0, 'the test server started without warnings');
  const dir = mkdtempSync(join(tmpdir(), 'postern-env-warning-'));
  try {
    const other = await spawnServer(dir, { POSTERN_SMTP_PORTT: '25' });
    other.child.kill('SIGTERM');
    await other.exited;
    const warnings = other.logs.filter((l) => l.includes('POSTERN_SMTP_PORTT'));
    assert.equal(warnings.length, 1, 'warned once at start');
    assert.match(warnings[0] as string, /"level":"warn".*did you mean POSTERN_SMTP_PORT\?/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('_unrouted is no user in user list or the status counts, but its archive is listed', async () => {
  const users = await ok(['user', 'list']);
  assert.doesNotMatch(users, /^_unrouted/m);
  assert.match(await ok(['user', 'list', '--all']), /^_unrouted\t/m);
  assert.doesNotMatch(await ok(['user', 'list', '--json']), /_unrouted/);
  const count = users.trim() === '' ? 0 : users.trim().split('\n').length;
  assert.match(await ok(['status']), new RegExp(`^Archive: +${count} users, `, 'm'));
  await ok(['archive', 'list', '_unrouted']);
});

test('counted nouns and articles in printouts', async () => {
  assert.match(await ok(['import', 'imap', '--help']), /of an IMAP mailbox/);
  assert.match(await ok(['import', 'pop3', '--help']), /of a POP3 mailbox/);
  assert.match(await ok(['user', 'show', 'alice']), /^Folder: +Inbox\t3 messages /m);
  await ok(['import', 'eml', fx('eml/a.eml'), '--user', 'kim']);
  await waitDrained(srv);
  assert.match(await ok(['user', 'show', 'kim']), /^Folder: +Inbox\t1 message \(/m);
  assert.equal(await ok(['delete', 'kim', 'Inbox', '1']), 'Deleted 1 entry (1 message and 1 blob removed)\n');
});
