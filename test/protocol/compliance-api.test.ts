// Retention, legal hold, privileges, auditors and preview blocking through the admin API of a live
// server: held entries cannot be deleted through the API, the purge job or a direct store call; only
// users with the right privilege act; auditors read everything and change nothing; administrators see
// only headers of other users' mail under preview blocking; every change lands in the audit log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { tokenPath } from '../../core/admin/token.ts';
import { hashPassword } from '../../core/smtp/password.ts';
import { isPosternError } from '../../core/errors.ts';
import type { Privilege } from '../../core/storage/types.ts';
import type { AuditRecord } from '../../core/audit/types.ts';

let srv: TestServer;
let token: string;
const PASSWORD = 'correct horse battery';
type Auth = 'token' | { user: string; password?: string } | 'none';

async function api(method: string, path: string, body?: unknown, auth: Auth = 'token'): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const headers: Record<string, string> = {};
  if (auth === 'token') headers.authorization = `Bearer ${token}`;
  else if (auth !== 'none') headers.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.password ?? PASSWORD}`).toString('base64')}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${srv.adminPort}/api/v1/${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch { /* raw message bytes */ }
  return { status: res.status, json, text };
}
const as = (user: string): Auth => ({ user });

async function mail(to: string, subject: string): Promise<void> {
  const c = await SmtpClient.open(srv.smtpPort);
  await c.read();
  await c.cmd('EHLO test.example');
  const body = `From: Partner <partner@client.example>\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nsecret body of ${subject}\r\n`;
  assert.equal((await sendMail(c, 'partner@client.example', [to], body)).code, 250);
  c.close();
}

async function auditActions(category: string): Promise<string[]> {
  const out: string[] = [];
  for await (const r of srv.running.app.service('audit').list() as AsyncIterable<AuditRecord>) if (r.category === category) out.push(`${r.action} ${r.actor} ${r.outcome}`);
  return out;
}

before(async () => {
  srv = await startTestServer((c) => {
    c.compliance.previewBlocking = true;
    c.compliance.policies = [
      { name: 'alice-short', match: { users: ['alice'] }, minimum: '0d', maximum: '0d' },
      { name: 'bob-ten-years', match: { users: ['bob'] }, minimum: '10y' },
    ];
  });
  token = readFileSync(tokenPath(srv.dataDir), 'utf8').trim();
  const hash = await hashPassword(PASSWORD);
  const people: Array<[string, Privilege[]]> = [['alice', ['login']], ['bob', []], ['carol', ['login', 'delete']], ['dave', ['login', 'compliance']], ['erin', ['login', 'admin']], ['nolog', []]];
  for (const [name, privileges] of people) await srv.archive.addUser({ name, addresses: [`${name}@example.com`], passwordHash: hash, privileges });
  for (let n = 1; n <= 5; n++) await mail('alice@example.com', `Alice ${n}`);
  await mail('bob@example.com', 'Bob 1');
  await srv.settle();
});
after(async () => {
  await srv.stop();
});

test('credentials: token, or Basic with a user who has a password and the login privilege', async () => {
  assert.equal((await api('GET', 'status', undefined, 'none')).status, 401);
  assert.equal((await api('GET', 'archive/alice/messages', undefined, { user: 'alice', password: 'wrong password' })).status, 401);
  assert.equal((await api('GET', 'archive/alice/messages', undefined, as('nolog'))).status, 401, 'no login privilege');
  assert.equal((await api('GET', 'archive/alice/messages', undefined, { user: 'nobody', password: 'x' })).status, 401);
  // A right password without `login` reads exactly like a wrong one (no password oracle), and no bearer token is mentioned.
  const wrongPassword = await api('GET', 'archive/alice/messages', undefined, { user: 'alice', password: 'wrong password' });
  const noLogin = await api('GET', 'archive/alice/messages', undefined, as('nolog'));
  assert.deepEqual(noLogin.json, wrongPassword.json);
  assert.equal(wrongPassword.json.error, 'Wrong user name or password, or the user may not sign in');
  for (const header of ['Basic !!!', 'Basic ' + Buffer.from('no-colon').toString('base64'), 'Basic ' + Buffer.from(':' + PASSWORD).toString('base64'), 'Basic', 'Digest x', 'Basic ' + 'A'.repeat(2000)]) {
    const res = await fetch(`http://127.0.0.1:${srv.adminPort}/api/v1/status`, { headers: { authorization: header } });
    assert.equal(res.status, 401, header.slice(0, 40));
  }
  const own = await api('GET', 'archive/alice/messages', undefined, as('alice'));
  assert.equal(own.status, 200);
  assert.equal((own.json.entries as unknown[]).length, 5);
  assert.equal((await api('GET', 'archive/bob/messages', undefined, as('alice'))).status, 403, 'only their own archive');
  assert.equal((await api('GET', 'users', undefined, as('alice'))).status, 403);
  assert.equal((await api('POST', 'users', { name: 'x', addresses: ['x@example.com'] }, as('carol'))).status, 403);
  assert.deepEqual((await auditActions('login')).filter((a) => a.startsWith('api.login alice')).slice(0, 1), ['api.login alice success']);
});

test('preview blocking: administrators see only from/to/subject/date of other users\' mail, never bodies', async () => {
  for (const who of ['token', as('erin')] as Auth[]) {
    const one = await api('GET', 'archive/alice/messages/1', undefined, who);
    assert.equal(one.status, 200);
    assert.deepEqual(Object.keys(one.json.message as object).sort(), ['date', 'from', 'id', 'previewBlocked', 'subject', 'to']);
    const raw = await api('GET', 'archive/alice/messages/1/raw', undefined, who);
    assert.equal(raw.status, 403);
    assert.doesNotMatch(raw.text, /secret body/);
  }
  const mine = await api('GET', 'archive/alice/messages/1/raw', undefined, as('alice'));
  assert.equal(mine.status, 200);
  assert.match(mine.text, /secret body of Alice 1/);
  const full = await api('GET', 'archive/alice/messages/1', undefined, as('alice'));
  assert.ok(Array.isArray((full.json.message as { captures: unknown[] }).captures), 'the owner sees the whole record');
});

test('policies: configured rules are read-only, stored rules need the compliance privilege, bad input is 400', async () => {
  assert.equal((await api('POST', 'policies', { name: 'p1', minimum: '1y' }, as('carol'))).status, 403);
  const added = await api('POST', 'policies', { name: 'legal', match: { groups: ['legal'] }, minimum: '7y', maximum: '10y' }, as('dave'));
  assert.equal(added.status, 201, added.text);
  const list = await api('GET', 'policies', undefined, as('dave'));
  assert.deepEqual((list.json.policies as Array<{ name: string; source: string }>).map((p) => `${p.name}:${p.source}`), ['alice-short:config', 'bob-ten-years:config', 'legal:archive']);
  assert.equal((await api('DELETE', 'policies/alice-short', undefined, as('dave'))).status, 403);
  assert.equal((await api('POST', 'policies', { name: 'bad', minimum: 'ages' }, as('dave'))).status, 400);
  assert.equal((await api('POST', 'policies', { name: 'bad', minimum: '2y', maximum: '1y' }, as('dave'))).status, 400);
  assert.equal((await api('POST', 'policies', { name: 'bad', minimum: '1y', extra: 1 }, as('dave'))).status, 400);
  assert.equal((await api('DELETE', 'policies/legal', undefined, as('dave'))).status, 200);
  assert.equal((await api('DELETE', 'policies/legal', undefined, as('dave'))).status, 404);
  assert.deepEqual((await auditActions('compliance')).filter((a) => a.startsWith('policy.')), [
    'policy.add dave success', 'policy.remove dave denied', 'policy.add dave failure', 'policy.add dave failure', 'policy.remove dave success', 'policy.remove dave failure',
  ]);
});

test('a held entry cannot be deleted through the API; retention blocks bob\'s; the delete privilege is required', async () => {
  assert.equal((await api('POST', 'holds', { name: 'case-7', scope: { query: 'subject:"alice 2"' } }, as('carol'))).status, 403, 'needs compliance');
  const created = await api('POST', 'holds', { name: 'case-7', description: 'Litigation 7', scope: { query: 'subject:"alice 2"' } }, as('dave'));
  assert.equal(created.status, 201, created.text);
  assert.equal((await api('POST', 'holds', { name: 'bad', scope: {} }, as('dave'))).status, 400);
  assert.equal((await api('POST', 'holds', { name: 'bad', scope: { query: 'body:x' } }, as('dave'))).status, 400);
  const status = await api('GET', 'retention/alice/2', undefined, as('carol'));
  assert.deepEqual(status.json.reasons, ['hold:case-7']);

  const held = await api('POST', 'entries/delete', { entries: [{ user: 'alice', folder: 'Inbox', uid: 2 }] }, as('carol'));
  assert.equal(held.status, 423);
  assert.match(String(held.json.error), /hold:case-7/);
  assert.ok(await srv.archive.getEntry('alice', 'Inbox', 2), 'still archived');
  const retained = await api('POST', 'entries/delete', { entries: [{ user: 'bob', folder: 'Inbox', uid: 1 }] }, 'token');
  assert.equal(retained.status, 423, 'before its minimum retention, even for the admin token');
  assert.match(String(retained.json.error), /retention:/);
  assert.equal((await api('POST', 'entries/delete', { entries: [{ user: 'alice', folder: 'Inbox', uid: 1 }] }, as('dave'))).status, 403, 'needs delete');
  assert.equal((await api('POST', 'entries/delete', { entries: [{ user: 'alice', folder: 'Inbox', uid: 0 }] }, as('carol'))).status, 400);
  assert.equal((await api('POST', 'entries/delete', { entries: [] }, as('carol'))).status, 400);
  const ok = await api('POST', 'entries/delete', { entries: [{ user: 'alice', folder: 'Inbox', uid: 1 }] }, as('carol'));
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(ok.json, { deleted: 1, messagesRemoved: 1, blobsRemoved: 1 });
  assert.equal((await api('POST', 'entries/delete', { entries: [{ user: 'alice', folder: 'Inbox', uid: 1 }] }, as('carol'))).status, 404);
  // A direct call on the storage interface is refused just the same.
  await assert.rejects(srv.archive.retention().deleteEntries([{ user: 'alice', folder: 'Inbox', uid: 2 }]), (e) => isPosternError(e, 'HELD'));
  const deletes = await auditActions('delete');
  assert.ok(deletes.includes('message.delete carol denied'), deletes.join('\n'));
  assert.ok(deletes.includes('message.delete carol success'));
});

test('retention can be extended but never shortened through the API', async () => {
  const r = await api('GET', 'retention/alice/3', undefined, as('dave'));
  const current = (r.json.retention as { retainUntil: string }).retainUntil;
  assert.equal((await api('POST', 'retention/alice/3/extend', { retainUntil: '2000-01-01T00:00:00Z' }, as('dave'))).status, 403);
  assert.equal((await api('POST', 'retention/alice/3/extend', { retainUntil: 'tomorrow' }, as('dave'))).status, 400);
  const ext = await api('POST', 'retention/alice/3/extend', { retainUntil: '2999-01-01T00:00:00Z' }, as('dave'));
  assert.equal(ext.status, 200, ext.text);
  assert.deepEqual(ext.json.retention, { retainUntil: '2999-01-01T00:00:00.000Z', purgeAfter: '2999-01-01T00:00:00.000Z' });
  assert.ok(current < '2999-01-01');
});

test('the purge job deletes exactly what is eligible, skips held entries and reports counts and metrics', async () => {
  // Eligible: alice 4 and 5 (maximum 0d). Held: alice 2 (case-7). Not due: alice 3 (extended), bob 1 (no maximum).
  const dry = await api('POST', 'purge', { dryRun: true }, as('carol'));
  assert.equal(dry.status, 200, dry.text);
  assert.deepEqual([dry.json.deleted, dry.json.skippedHeld], [2, 1]);
  assert.equal((await srv.archive.listEntries('alice', 'Inbox')).length, 4, 'a dry run deletes nothing');
  assert.equal((await api('POST', 'purge', {}, as('dave'))).status, 403);
  assert.equal((await api('POST', 'purge', { batchSize: 0 }, as('carol'))).status, 400);

  const jobs = srv.running.app.service('jobs');
  await jobs.create({ name: 'purge-now', kind: 'purge', schedule: null, enabled: true, options: { batchSize: 1 } }, 'test');
  await jobs.run('purge-now', 'manual', 'test');
  await jobs.waitFor('purge-now');
  const [result] = await jobs.results({ job: 'purge-now' });
  assert.ok(result);
  assert.equal(result.status, 'succeeded');
  assert.equal(result.summary.deleted, 2);
  assert.equal(result.summary.skippedHeld, 1);
  assert.equal(result.summary.blobsRemoved, 2);
  assert.ok(Number(result.summary.batches) >= 3, 'bounded batches of one');
  assert.deepEqual((await srv.archive.listEntries('alice', 'Inbox')).map((e) => e.uid), [2, 3]);
  assert.equal((await srv.archive.listEntries('bob', 'Inbox')).length, 1);
  const metrics = await (await fetch(`http://127.0.0.1:${srv.adminPort}/metrics`)).text();
  assert.match(metrics, /^postern_purge_deleted_total 2$/m);
  assert.match(metrics, /^postern_purge_skipped_held_total [1-9]\d*$/m);
  assert.ok((await auditActions('delete')).includes('purge job:purge-now success'));

  // Released, the held entry goes with the next purge.
  assert.equal((await api('POST', 'holds/case-7/release', undefined, as('dave'))).status, 200);
  const after = await api('POST', 'purge', {}, 'token');
  assert.deepEqual([after.json.deleted, after.json.skippedHeld], [1, 0]);
  assert.deepEqual((await srv.archive.listEntries('alice', 'Inbox')).map((e) => e.uid), [3]);
  const holds = await api('GET', 'holds?all=1', undefined, as('dave'));
  assert.deepEqual((holds.json.holds as Array<{ name: string; releasedBy: string }>).map((h) => [h.name, h.releasedBy]), [['case-7', 'dave']]);
  assert.deepEqual((await auditActions('compliance')).filter((a) => a.startsWith('hold.')), [
    'hold.create dave success', 'hold.create dave failure', 'hold.create dave failure', 'hold.release dave success',
  ]);
});

test('hold-everything stops every deletion until switched off', async () => {
  assert.equal((await api('PUT', 'hold-everything', { on: true }, as('carol'))).status, 403);
  assert.equal((await api('PUT', 'hold-everything', { on: true }, as('dave'))).status, 200);
  await mail('alice@example.com', 'Alice 6');
  await srv.settle();
  const held = await api('POST', 'entries/delete', { entries: [{ user: 'alice', folder: 'Inbox', uid: 6 }] }, 'token');
  assert.equal(held.status, 423);
  assert.match(String(held.json.error), /hold-everything/);
  assert.equal((await api('POST', 'purge', {}, 'token')).json.deleted, 0);
  assert.equal((await api('PUT', 'hold-everything', { on: false }, as('dave'))).status, 200);
  assert.equal((await api('POST', 'purge', {}, 'token')).json.deleted, 1);
});

test('after deletions and purges, integrity verification finds the archive consistent (reference counts exact)', async () => {
  assert.equal((await api('POST', 'verify', undefined, 'token')).status, 202);
  let state = await api('GET', 'verify', undefined, 'token');
  for (let i = 0; i < 600 && state.json.running === true; i++) {
    await new Promise((r) => setTimeout(r, 50));
    state = await api('GET', 'verify', undefined, 'token');
  }
  const last = state.json.last as { total: number; checked: { blobs: number; messages: number; entries: number } };
  assert.equal(last.total, 0, JSON.stringify(state.json));
  const stats = await srv.archive.stats();
  assert.deepEqual([last.checked.blobs, last.checked.messages, last.checked.entries], [stats.blobs, stats.messages, stats.entries]);
});

test('auditors: created with a timestamped name and a one-time password; read every archive, change nothing', async () => {
  assert.equal((await api('POST', 'auditors', undefined, as('dave'))).status, 403, 'needs admin');
  const created = await api('POST', 'auditors', undefined, 'token');
  assert.equal(created.status, 201, created.text);
  const name = String(created.json.name);
  assert.match(name, /^auditor-\d{8}-\d{6}$/);
  const auditor: Auth = { user: name, password: String(created.json.password) };
  const raw = await api('GET', 'archive/bob/messages/1/raw', undefined, auditor);
  assert.equal(raw.status, 200, 'full read, not preview-blocked');
  assert.match(raw.text, /secret body of Bob 1/);
  assert.equal((await api('GET', 'users', undefined, auditor)).status, 200);
  assert.equal((await api('GET', 'holds', undefined, auditor)).status, 200);
  assert.equal((await api('POST', 'holds', { name: 'x', scope: { users: ['bob'] } }, auditor)).status, 403);
  assert.equal((await api('POST', 'entries/delete', { entries: [{ user: 'bob', folder: 'Inbox', uid: 1 }] }, auditor)).status, 403);
  assert.equal((await api('PATCH', 'users/bob', { addAddresses: ['b2@example.com'] }, auditor)).status, 403);
  assert.equal((await api('PUT', 'account/password', { password: 'a new password' }, auditor)).status, 403);
  assert.equal((await api('PATCH', 'privileges/' + name, { add: ['delete'] }, auditor)).status, 403);
  // Even if someone grants an auditor the delete privilege, the auditor still cannot delete.
  assert.equal((await api('PATCH', 'privileges/' + name, { add: ['delete'] }, 'token')).status, 200);
  assert.equal((await api('POST', 'entries/delete', { entries: [{ user: 'bob', folder: 'Inbox', uid: 1 }] }, auditor)).status, 403);
  // Other users may change their own password; an administrator may change anyone's.
  assert.equal((await api('PUT', 'account/password', { password: 'short' }, as('alice'))).status, 400);
  assert.equal((await api('PUT', 'account/password', { password: 'another password' }, as('carol'))).status, 200);
  assert.equal((await api('GET', 'holds', undefined, { user: 'carol', password: 'another password' })).status, 403);
  assert.ok((await auditActions('compliance')).includes(`auditor.create admin-token success`));
});

test('a path with a malformed percent escape is a bad request, not a server error', async () => {
  for (const path of ['archive/%E0%A4%A/messages', 'holds/%', 'users/%zz']) {
    const r = await api('GET', path);
    assert.equal(r.status, 400, path);
    assert.match(String(r.json.error), /escape/);
  }
  assert.equal((await api('GET', 'holds/%', undefined, as('alice'))).status, 400);
});
