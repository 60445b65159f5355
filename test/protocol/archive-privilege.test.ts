// The `archive` privilege (MailStore's "archive e-mail"): a user holding it imports mail into their own
// archive (POST /api/v1/import/message?user=SELF, `postern import … --user SELF --as SELF`); never into
// another's or through the router; without it, or as an auditor, nothing; administrators and the admin
// token import anywhere, as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { runCli } from '../helpers/cli.ts';
import { tokenPath } from '../../core/admin/token.ts';
import { hashPassword } from '../../core/smtp/password.ts';
import type { Privilege } from '../../core/storage/types.ts';

const PASSWORD = 'correct horse battery';
let srv: TestServer;
let token = '';
let n = 0;

async function upload(who: string, user: string | null): Promise<{ status: number; error: string }> {
  const authorization = who === 'token' ? `Bearer ${token}` : `Basic ${Buffer.from(`${who}:${PASSWORD}`).toString('base64')}`;
  const q = user === null ? '' : `?user=${user}`;
  const res = await fetch(`http://127.0.0.1:${srv.adminPort}/api/v1/import/message${q}`, {
    method: 'POST', headers: { authorization, 'content-type': 'message/rfc822' },
    body: `From: someone@example.org\r\nTo: ${user ?? 'alice'}@example.com\r\nSubject: upload ${++n}\r\n\r\nbody ${n}\r\n`,
  });
  const json = (await res.json()) as { error?: string };
  return { status: res.status, error: json.error ?? '' };
}

before(async () => {
  srv = await startTestServer();
  token = readFileSync(tokenPath(srv.dataDir), 'utf8').trim();
  const hash = await hashPassword(PASSWORD);
  const people: Array<[string, Privilege[]]> = [['alice', ['login']], ['dave', ['login', 'archive']], ['erin', ['login']], ['audrey', ['login', 'auditor', 'archive']], ['root', ['login', 'admin']]];
  for (const [name, privileges] of people) await srv.archive.addUser({ name, addresses: [`${name}@example.com`], passwordHash: hash, privileges });
});
after(async () => {
  await srv.stop();
});

test('API: own archive with the archive privilege; refused otherwise', async () => {
  assert.equal((await upload('dave', 'dave')).status, 201);
  const other = await upload('dave', 'alice');
  assert.equal(other.status, 403);
  assert.match(other.error, /"dave" may import only into their own archive/);
  assert.equal((await upload('dave', null)).status, 403, 'not through the router either');
  const none = await upload('erin', 'erin');
  assert.equal(none.status, 403);
  assert.match(none.error, /"erin" needs the "archive" privilege/);
  const auditor = await upload('audrey', 'audrey');
  assert.equal(auditor.status, 403);
  assert.match(auditor.error, /Auditors can read archives but not change anything/);
  assert.equal((await upload('root', 'alice')).status, 201, 'administrators anywhere');
  assert.equal((await upload('token', null)).status, 201, 'the admin token anywhere');
  await srv.settle();
  assert.deepEqual((await srv.archive.listEntries('dave', 'Inbox')).map((e) => e.subject), ['upload 1']);
});

test('CLI: postern import eml --user SELF --as SELF', async () => {
  const file = join(srv.dataDir, 'mine.eml');
  writeFileSync(file, 'From: old@example.org\r\nTo: dave@example.com\r\nSubject: from my old mailbox\r\n\r\nold mail\r\n');
  const target = { dataDir: srv.dataDir, adminPort: srv.adminPort };
  const env = { POSTERN_PASSWORD: PASSWORD };
  const ok = await runCli(['import', 'eml', file, '--user', 'dave', '--as', 'dave'], target, env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Into dave\/Inbox: 1 entry added/);
  const elsewhere = await runCli(['import', 'eml', file, '--user', 'alice', '--as', 'dave'], target, env);
  assert.equal(elsewhere.code, 1);
  assert.match(elsewhere.stderr, /--as dave imports only into their own archive: add --user dave/);
  const without = await runCli(['import', 'eml', file, '--user', 'erin', '--as', 'erin'], target, env);
  assert.equal(without.code, 1);
  assert.match(without.stderr, /"erin" needs the "archive" privilege/);
  await srv.settle();
  assert.ok((await srv.archive.listEntries('dave', 'Inbox')).some((e) => e.subject === 'from my old mailbox'));
});
