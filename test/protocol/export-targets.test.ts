// Exports of several archives by job targets through the admin API of a live server: "except" and
// "group" resolved when the export runs (a user added after the request is included), the manifest
// naming each user's messages, the selection described in jobs show; an "only" list naming an unknown
// user refused at once; a user without the auditor/admin privilege refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { tokenPath } from '../../core/admin/token.ts';
import { hashPassword } from '../../core/smtp/password.ts';
import type { ExportRecord } from '../../core/export/types.ts';
import type { ManifestLine, ManifestMessage } from '../../core/export/manifest.ts';

const PASSWORD = 'correct horse battery';
let srv: TestServer;
let token = '';

async function api(method: string, path: string, body?: unknown, basic?: string): Promise<{ status: number; json: Record<string, unknown>; bytes: Buffer }> {
  const res = await fetch(`http://127.0.0.1:${srv.adminPort}/api/v1/${path}`, {
    method,
    headers: { authorization: basic ? `Basic ${Buffer.from(`${basic}:${PASSWORD}`).toString('base64')}` : `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch { /* a file */ }
  return { status: res.status, json, bytes };
}

async function file(user: string, subject: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${srv.adminPort}/api/v1/import/message?user=${user}`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'message/rfc822' },
    body: `From: x@example.net\r\nTo: ${user}@example.com\r\nSubject: ${subject}\r\n\r\n${subject}\r\n`,
  });
  assert.equal(res.status, 201, await res.text());
}

async function finished(id: string): Promise<ExportRecord> {
  for (let i = 0; i < 300; i++) {
    const rec = (await api('GET', `exports/${id}`)).json.export as ExportRecord;
    if (rec.status !== 'queued' && rec.status !== 'running') return rec;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Export ${id} did not finish`);
}

async function exportedUsers(rec: ExportRecord): Promise<string[]> {
  const text = (await api('GET', `exports/${rec.id}/manifest`)).bytes.toString('utf8');
  const lines = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ManifestLine);
  return lines.filter((l): l is ManifestMessage => l.type === 'message').map((m) => m.user).sort();
}

before(async () => {
  srv = await startTestServer();
  token = readFileSync(tokenPath(srv.dataDir), 'utf8').trim();
  const hash = await hashPassword(PASSWORD);
  for (const [name, groups] of [['alice', ['sales']], ['bob', []], ['carol', ['sales']]] as const) {
    await srv.archive.addUser({ name, addresses: [`${name}@example.com`], groups: [...groups], passwordHash: hash, privileges: ['login', 'export'] });
    await file(name, `for ${name}`);
  }
  await srv.settle();
});
after(async () => {
  await srv.stop();
});

test('targets "except" and "group": several archives in one export, resolved when it runs', async () => {
  const r = await api('POST', 'exports', { selection: { targets: { mode: 'except', users: 'bob' } }, format: 'mbox' });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  const rec = await finished((r.json.export as ExportRecord).id);
  assert.equal(rec.status, 'succeeded', rec.errors.join('; '));
  assert.deepEqual(await exportedUsers(rec), ['alice', 'carol']);
  const job = (await api('GET', `jobs/${rec.job}`)).json.job as { detail: string };
  assert.match(job.detail, /mbox of targets: every user with an address except bob\)$/, 'jobs show names the targets');

  await srv.archive.addUser({ name: 'dave', addresses: ['dave@example.com'], groups: ['sales'] });
  await file('dave', 'for dave');
  await srv.settle();
  const g = await api('POST', 'exports', { selection: { targets: { mode: 'group', group: 'sales' } }, format: 'mbox' });
  const grec = await finished((g.json.export as ExportRecord).id);
  assert.deepEqual(await exportedUsers(grec), ['alice', 'carol', 'dave']);
  assert.deepEqual(grec.counts.exported, 3);
});

test('an "only" list with an unknown user is refused before anything runs; a user without auditor/admin may not', async () => {
  const bad = await api('POST', 'exports', { selection: { targets: { mode: 'only', users: ['alice', 'nobody'] } }, format: 'mbox' });
  assert.equal(bad.status, 404, JSON.stringify(bad.json));
  assert.match(String(bad.json.error), /"nobody"/);
  const two = await api('POST', 'exports', { selection: { user: 'alice', targets: { mode: 'all' } }, format: 'mbox' });
  assert.equal(two.status, 400);
  assert.match(String(two.json.error), /exactly one of "user", "hold" or "query", or "targets"/);
  const forbidden = await api('POST', 'exports', { selection: { targets: { mode: 'only', users: ['alice'] } }, format: 'mbox' }, 'alice');
  assert.equal(forbidden.status, 403, JSON.stringify(forbidden.json));
  assert.match(String(forbidden.json.error), /several archives by job targets/);
});
