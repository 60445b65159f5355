// Exports through the admin API of a live server: by user, folder, legal hold and search query, in each
// format; every message byte-identical to the archive's (SHA-256 per message against the blob ids), the
// manifest and SHA256SUMS consistent with the files, the manifest's SHA-256 in the audit log; access
// rules of the export privilege (own archive, auditors and admins any, preview blocking); expiry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { tokenPath } from '../../core/admin/token.ts';
import { hashPassword } from '../../core/smtp/password.ts';
import { readMbox } from '../../core/import/mbox.ts';
import type { Privilege } from '../../core/storage/types.ts';
import type { AuditRecord } from '../../core/audit/types.ts';
import type { ExportRecord } from '../../core/export/types.ts';
import type { ManifestLine, ManifestMessage } from '../../core/export/manifest.ts';

const PASSWORD = 'correct horse battery';
type Auth = 'token' | string;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Mail with bodies that test the mbox quoting and line endings, filed per user and folder. */
const MAIL: Array<{ user: string; folder?: string; bytes: string }> = [
  { user: 'alice', bytes: 'From: Partner <partner@client.example>\r\nTo: alice@example.com\r\nSubject: tricky one\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\n' },
  { user: 'alice', bytes: 'From: other@else.example\nTo: alice@example.com\nSubject: tricky LF no newline\n\nFrom here\nlast line' },
  { user: 'alice', bytes: 'From: other@else.example\nTo: alice@example.com\nSubject: plain\n\nnothing special\n\n' },
  { user: 'alice', folder: 'Work/Projects', bytes: 'From: partner@client.example\r\nTo: alice@example.com\r\nSubject: project\r\n\r\nin a sub-folder\r\n' },
  { user: 'bob', bytes: 'From: partner@client.example\r\nTo: bob@example.com\r\nSubject: for bob\r\n\r\nbob\'s secret\r\n' },
  { user: 'carol', bytes: 'From: x@y.example\r\nTo: carol@example.com\r\nSubject: tricky carol\r\n\r\ncarol\r\n' },
];

function client(srv: () => TestServer, token: () => string) {
  const auth = (a: Auth): string => (a === 'token' ? `Bearer ${token()}` : `Basic ${Buffer.from(`${a}:${PASSWORD}`).toString('base64')}`);
  const api = async (method: string, path: string, body?: unknown, a: Auth = 'token'): Promise<{ status: number; json: Record<string, unknown>; bytes: Buffer; headers: Headers }> => {
    const res = await fetch(`http://127.0.0.1:${srv().adminPort}/api/v1/${path}`, {
      method, headers: { authorization: auth(a), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch { /* a file */ }
    return { status: res.status, json, bytes, headers: res.headers };
  };
  /** Start an export and wait for its end; the finished record. */
  const run = async (selection: Record<string, unknown>, format: string, a: Auth = 'token'): Promise<ExportRecord> => {
    const r = await api('POST', 'exports', { selection, format }, a);
    assert.equal(r.status, 202, JSON.stringify(r.json));
    const id = (r.json.export as ExportRecord).id;
    for (let i = 0; i < 300; i++) {
      const rec = (await api('GET', `exports/${id}`, undefined, a)).json.export as ExportRecord;
      if (rec.status !== 'queued' && rec.status !== 'running') return rec;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`Export ${id} did not finish`);
  };
  const file = async (rec: ExportRecord, which: 'file' | 'manifest', a: Auth = 'token'): Promise<Buffer> => {
    const r = await api('GET', `exports/${rec.id}/${which}`, undefined, a);
    assert.equal(r.status, 200, r.bytes.toString().slice(0, 200));
    const info = which === 'file' ? rec.file : rec.manifest;
    assert.equal(r.headers.get('x-content-sha256'), info?.sha256);
    assert.equal(sha(r.bytes), info?.sha256, `${which} bytes have the reported SHA-256`);
    return r.bytes;
  };
  return { api, run, file };
}

function manifestOf(text: Buffer): { lines: ManifestLine[]; messages: ManifestMessage[] } {
  const lines = text.toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ManifestLine);
  return { lines, messages: lines.filter((l): l is ManifestMessage => l.type === 'message') };
}

async function mboxMessages(bytes: Buffer): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const m of readMbox(Readable.from([bytes]))) {
    assert.ok(m.ok);
    out.push(m.bytes);
  }
  return out;
}

async function zipEntries(bytes: Buffer): Promise<Map<string, { data: Buffer; method: number }>> {
  const zip = await yauzl.fromBufferPromise(bytes, { lazyEntries: true });
  const out = new Map<string, { data: Buffer; method: number }>();
  for await (const e of zip.eachEntry()) {
    const parts: Buffer[] = [];
    for await (const c of await zip.openReadStreamPromise(e)) parts.push(c as Buffer);
    out.set(e.fileName, { data: Buffer.concat(parts), method: e.compressionMethod });
  }
  return out;
}

async function seed(srv: TestServer, token: string, people: Array<[string, Privilege[]]>): Promise<void> {
  const hash = await hashPassword(PASSWORD);
  for (const [name, privileges] of people) await srv.archive.addUser({ name, addresses: [`${name}@example.com`], passwordHash: hash, privileges });
  for (const m of MAIL) {
    if (!people.some(([n]) => n === m.user)) continue;
    const q = new URLSearchParams({ user: m.user, ...(m.folder ? { folder: m.folder } : {}) });
    const res = await fetch(`http://127.0.0.1:${srv.adminPort}/api/v1/import/message?${q}`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'message/rfc822' }, body: m.bytes,
    });
    assert.equal(res.status, 201, await res.text());
  }
  await srv.settle();
}

/** Hex SHA-256 of every message in a user's archive (or one folder), from the archive's own records. */
async function archived(srv: TestServer, user: string, folder?: string): Promise<string[]> {
  const out: string[] = [];
  const folders = folder ? [folder] : (await srv.archive.folders(user)).map((f) => f.folder);
  for (const f of folders) {
    for (const e of await srv.archive.listEntries(user, f)) out.push((await srv.archive.getMessage(e.messageId))?.blobId ?? '');
  }
  return out.sort();
}

async function auditRecords(srv: TestServer, action: string): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of srv.running.app.service('audit').list()) if (r.action === action) out.push(r);
  return out;
}

describe('exports (preview blocking off, search plugin on)', () => {
  let srv: TestServer;
  let token = '';
  const { api, run, file } = client(() => srv, () => token);

  before(async () => {
    srv = await startTestServer((c) => {
      c.plugins = [{ name: 'search', config: { intervalSeconds: 1 } }];
    });
    token = readFileSync(tokenPath(srv.dataDir), 'utf8').trim();
    await seed(srv, token, [
      ['alice', ['login', 'export']], ['bob', ['login']], ['carol', ['login', 'export']],
      ['audrey', ['login', 'auditor', 'export']], ['auditless', ['login', 'auditor']], ['erin', ['login', 'admin', 'export']],
    ]);
  });
  after(async () => {
    await srv.stop();
  });

  test('mbox of a user: every message byte-identical, manifest and SHA256SUMS consistent', async () => {
    const rec = await run({ user: 'alice' }, 'mbox');
    assert.equal(rec.status, 'succeeded', rec.errors.join('; '));
    assert.deepEqual(rec.counts, { selected: 4, exported: 4, failed: 0, bytes: MAIL.filter((m) => m.user === 'alice').reduce((n, m) => n + Buffer.byteLength(m.bytes), 0) });
    const box = await file(rec, 'file');
    const messages = await mboxMessages(box);
    assert.deepEqual(messages.map(sha).sort(), await archived(srv, 'alice'));
    const { lines, messages: listed } = manifestOf(await file(rec, 'manifest'));
    assert.deepEqual(lines[0], { type: 'export', version: 1, id: rec.id, format: 'mbox', selection: { user: 'alice' }, createdAt: rec.createdAt, createdBy: 'admin-token' });
    assert.deepEqual(lines[lines.length - 1], { type: 'end', messages: 4, bytes: rec.counts.bytes, errors: 0 });
    assert.deepEqual(listed.map((m) => m.sha256), messages.map(sha), 'manifest order is mbox order');
    for (const m of listed) {
      assert.equal(box.subarray(m.offset ?? -1, (m.offset ?? 0) + 5).toString(), 'From ', 'offset points at the From_ line');
      assert.equal(m.file, null);
      assert.equal(m.captures.length, 1);
      assert.equal(m.captures[0]?.listener, 'import');
      assert.ok(m.captures[0]?.receivedAt);
    }
    const first = listed.find((m) => m.subject === 'tricky one');
    assert.deepEqual({ user: first?.user, folder: first?.folder, from: first?.from, size: first?.size }, { user: 'alice', folder: 'Inbox', from: 'Partner <partner@client.example>', size: Buffer.byteLength(MAIL[0]?.bytes ?? '') });
    assert.equal(first?.date, '2026-11-02T10:00:00.000Z');
    assert.ok(listed.some((m) => m.folder === 'Work/Projects'));
    // The export's files stay on the server until deleted (or they expire); their SHA-256 are listed there too.
    const sums = readFileSync(join(srv.dataDir, 'exports', rec.id, 'SHA256SUMS'), 'utf8');
    assert.equal(sums, `${rec.file?.sha256}  export.mbox\n${rec.manifest?.sha256}  manifest.jsonl\n`);
  });

  test('eml (stored) and zip (deflated) of one folder: USER/FOLDER/UID.eml, manifest.jsonl and SHA256SUMS inside', async () => {
    for (const format of ['eml', 'zip'] as const) {
      const rec = await run({ user: 'alice', folder: 'INBOX' }, format);
      assert.equal(rec.status, 'succeeded');
      assert.deepEqual(rec.selection, { user: 'alice', folder: 'Inbox' }, 'INBOX names the received folder');
      const entries = await zipEntries(await file(rec, 'file'));
      const emls = [...entries].filter(([n]) => n.endsWith('.eml'));
      assert.deepEqual(emls.map(([n]) => n).sort(), ['alice/Inbox/1.eml', 'alice/Inbox/2.eml', 'alice/Inbox/3.eml']);
      assert.deepEqual(emls.map(([, e]) => sha(e.data)).sort(), await archived(srv, 'alice', 'Inbox'));
      for (const [, e] of emls) assert.equal(e.method, format === 'eml' ? 0 : 8);
      const manifest = entries.get('manifest.jsonl')?.data ?? Buffer.alloc(0);
      assert.equal(sha(manifest), rec.manifest?.sha256);
      assert.deepEqual(manifest, await file(rec, 'manifest'), 'the manifest download is the one in the zip');
      const sums = entries.get('SHA256SUMS')?.data.toString() ?? '';
      const expected = [...emls.map(([n, e]) => `${sha(e.data)}  ${n}`), `${sha(manifest)}  manifest.jsonl`];
      assert.deepEqual(sums.trimEnd().split('\n'), expected);
      for (const m of manifestOf(manifest).messages) assert.equal(m.file, `alice/Inbox/${m.uid}.eml`);
    }
  });

  test('a sub-folder becomes nested directories', async () => {
    const rec = await run({ user: 'alice', folder: 'work/projects' }, 'zip');
    const names = [...(await zipEntries(await file(rec, 'file'))).keys()];
    assert.deepEqual(names, ['alice/Work/Projects/1.eml', 'manifest.jsonl', 'SHA256SUMS']);
  });

  test('picked messages: exactly those entries in the order given, duplicates once, only from archives the requester may export', async () => {
    const picks = [{ user: 'alice', folder: 'Work/Projects', uid: 1 }, { user: 'alice', folder: 'Inbox', uid: 2 }, { user: 'alice', folder: 'Work/Projects', uid: 1 }];
    const rec = await run({ messages: picks }, 'zip', 'alice');
    assert.equal(rec.status, 'succeeded', rec.errors.join('; '));
    assert.deepEqual(rec.selection, { messages: picks.slice(0, 2) });
    assert.deepEqual([...(await zipEntries(await file(rec, 'file', 'alice'))).keys()], ['alice/Work/Projects/1.eml', 'alice/Inbox/2.eml', 'manifest.jsonl', 'SHA256SUMS']);
    const post = (selection: unknown, who: Auth): Promise<{ status: number; json: Record<string, unknown> }> => api('POST', 'exports', { selection, format: 'mbox' }, who);
    const other = await post({ messages: [{ user: 'carol', folder: 'Inbox', uid: 1 }, { user: 'alice', folder: 'Inbox', uid: 1 }] }, 'carol');
    assert.equal(other.status, 403);
    assert.match(String(other.json.error), /may export only their own archive, not the archive of "alice"/);
    const missing = await post({ messages: [{ user: 'alice', folder: 'Inbox', uid: 99 }] }, 'alice');
    assert.equal(missing.status, 404);
    assert.match(String(missing.json.error), /User "alice" has no message with UID 99 in folder "Inbox"/);
    for (const selection of [{ messages: [] }, { messages: [{ user: 'alice', folder: 'Inbox', uid: 0 }] }, { user: 'alice', messages: [{ user: 'alice', folder: 'Inbox', uid: 1 }] }]) {
      assert.equal((await post(selection, 'alice')).status, 400, JSON.stringify(selection));
    }
    const auditor = await run({ messages: [{ user: 'bob', folder: 'Inbox', uid: 1 }, { user: 'alice', folder: 'Inbox', uid: 1 }] }, 'mbox', 'audrey');
    assert.equal(auditor.counts.exported, 2);
  });

  test('by legal hold: every covered entry of every archive, with the manifest SHA-256 in the audit log', async () => {
    const h = await api('POST', 'holds', { name: 'case-1', scope: { addresses: ['partner@client.example'] } });
    assert.equal(h.status, 201, JSON.stringify(h.json));
    const rec = await run({ hold: 'case-1' }, 'mbox');
    assert.equal(rec.status, 'succeeded');
    const { messages } = manifestOf(await file(rec, 'manifest'));
    assert.deepEqual(messages.map((m) => `${m.user} ${m.subject}`).sort(), ['alice project', 'alice tricky one', 'bob for bob']);
    const finish = (await auditRecords(srv, 'export.finish')).find((r) => r.details?.id === rec.id);
    assert.equal(finish?.details?.manifestSha256, rec.manifest?.sha256);
    assert.equal(finish?.actor, 'admin-token');
    assert.equal(finish?.target, 'hold case-1');
    assert.equal(finish?.seq, rec.auditSeq);
    assert.equal((await api('POST', 'exports', { selection: { hold: 'no-such-case' }, format: 'mbox' })).status, 404);
  });

  test('by query through the search service: a user gets only their own hits; the token all', async () => {
    for (let i = 0; ; i++) {
      const s = await api('GET', 'search?q=tricky');
      if ((s.json.hits as unknown[] | undefined)?.length === 3) break;
      if (i > 200) throw new Error(`the index did not catch up: ${JSON.stringify(s.json)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const all = await run({ query: 'tricky' }, 'zip');
    assert.deepEqual(manifestOf(await file(all, 'manifest')).messages.map((m) => m.user).sort(), ['alice', 'alice', 'carol']);
    const own = await run({ query: 'tricky' }, 'mbox', 'carol');
    const mine = manifestOf(await file(own, 'manifest', 'carol')).messages;
    assert.deepEqual(mine.map((m) => `${m.user} ${m.subject}`), ['carol tricky carol']);
    assert.deepEqual(own.scope, ['carol']);
    const bad = await api('POST', 'exports', { selection: { query: 'subject:(' }, format: 'mbox' });
    assert.equal(bad.status, 400);
  });

  test('access: the export privilege, own archive only for users, auditors any archive (audited)', async () => {
    const post = (selection: unknown, who: Auth): Promise<{ status: number; json: Record<string, unknown> }> => api('POST', 'exports', { selection, format: 'mbox' }, who);
    const noPrivilege = await post({ user: 'bob' }, 'bob');
    assert.equal(noPrivilege.status, 403);
    assert.match(String(noPrivilege.json.error), /needs the "export" privilege/);
    const other = await post({ user: 'alice' }, 'carol');
    assert.equal(other.status, 403);
    assert.match(String(other.json.error), /may export only their own archive/);
    assert.equal((await post({ hold: 'case-1' }, 'carol')).status, 403);
    assert.equal((await post({ user: 'alice' }, 'auditless')).status, 403, 'an auditor needs the export privilege too');
    // An auditor with it exports anyone's archive; the request and the end (with the manifest's SHA-256) are audited.
    const rec = await run({ user: 'bob' }, 'mbox', 'audrey');
    assert.equal(rec.status, 'succeeded');
    const manifest = await file(rec, 'manifest', 'audrey');
    const finish = (await auditRecords(srv, 'export.finish')).find((r) => r.details?.id === rec.id);
    assert.equal(finish?.actor, 'audrey');
    assert.equal(finish?.details?.manifestSha256, sha(manifest));
    assert.equal(finish?.target, 'user bob');
    assert.ok((await auditRecords(srv, 'export.request')).some((r) => r.details?.id === rec.id && r.actor === 'audrey'));
    assert.ok((await auditRecords(srv, 'export.download')).some((r) => r.details?.id === rec.id && r.details?.what === 'manifest'));
    const denied = await auditRecords(srv, 'export.request');
    assert.ok(denied.some((r) => r.actor === 'carol' && r.outcome === 'denied' && r.target === 'user alice'));
    // Administrators with the privilege too (no preview blocking here); others never see someone's export.
    assert.equal((await run({ user: 'alice' }, 'zip', 'erin')).status, 'succeeded');
    assert.equal((await api('GET', `exports/${rec.id}`, undefined, 'carol')).status, 404);
    assert.equal((await api('GET', `exports/${rec.id}/file`, undefined, 'carol')).status, 404);
    assert.equal((await api('GET', `exports/${rec.id}`)).status, 200, 'the token sees every export record');
    assert.equal((await api('GET', `exports/${rec.id}/file`)).status, 403, 'but downloads only its own');
    assert.deepEqual(((await api('GET', 'exports', undefined, 'carol')).json.exports as ExportRecord[]).map((e) => e.createdBy), ['carol']);
  });

  test('bad requests are refused with the reason', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ selection: { user: 'alice', hold: 'x' }, format: 'mbox' }, /exactly one of "user", "hold" or "query"/],
      [{ selection: { folder: 'Inbox', hold: 'x' }, format: 'mbox' }, /"folder" is only meaningful with "user"/],
      [{ selection: { user: 'alice' }, format: 'tar' }, /format/],
      [{ selection: { user: 'Not A User' }, format: 'mbox' }, /user name/],
    ];
    for (const [body, why] of cases) {
      const r = await api('POST', 'exports', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(String(r.json.error), why);
    }
    const noFolder = await api('POST', 'exports', { selection: { user: 'alice', folder: 'Nope' }, format: 'mbox' });
    assert.equal(noFolder.status, 404);
    assert.match(String(noFolder.json.error), /User "alice" has no folder "Nope"/);
    assert.equal((await api('POST', 'exports', { selection: { user: 'nobody' }, format: 'mbox' })).status, 404);
    assert.equal((await api('GET', 'exports/0123456789abcdef')).status, 404);
    assert.equal((await api('GET', 'exports/..%2F..')).status, 404);
  });

  test('the export job reports progress and counts; DELETE and expiry remove the files and the job', async () => {
    const rec = await run({ user: 'alice' }, 'mbox');
    // The export record is final a moment before the job scheduler records the run's end.
    let job = (await api('GET', `jobs/${rec.job}`)).json.job as { kind: string; status: string; detail: string };
    for (let i = 0; i < 100 && job.status === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      job = (await api('GET', `jobs/${rec.job}`)).json.job as typeof job;
    }
    assert.equal(job.kind, 'export');
    assert.equal(job.status, 'succeeded');
    assert.match(job.detail, /4 exported, 0 failed/);
    const results = (await api('GET', `jobs/${rec.job}/results`)).json.results as Array<{ counts: { found: number; archived: number } }>;
    assert.deepEqual(results.map((r) => [r.counts.found, r.counts.archived]), [[4, 4]]);
    // The job cannot be re-run to write the export again.
    await api('POST', `jobs/${rec.job}/run`, {});
    const dir = join(srv.dataDir, 'exports', rec.id);
    assert.ok(existsSync(join(dir, 'export.mbox')));
    assert.equal((await api('DELETE', `exports/${rec.id}`)).status, 200);
    assert.ok(!existsSync(dir));
    assert.equal((await api('GET', `exports/${rec.id}`)).status, 404);
    assert.equal((await api('GET', `jobs/${rec.job}`)).status, 404);
    // Expiry: keepHours after the end the sweep deletes an export.
    const old = await run({ user: 'carol' }, 'mbox', 'carol');
    await srv.running.app.service('exports').sweep(new Date(Date.now() + 25 * 3600_000));
    assert.equal((await api('GET', `exports/${old.id}`, undefined, 'carol')).status, 404);
    assert.ok(!existsSync(join(srv.dataDir, 'exports', old.id)));
  });
});

describe('exports under preview blocking, without the search plugin', () => {
  let srv: TestServer;
  let token = '';
  const { api, run } = client(() => srv, () => token);

  before(async () => {
    srv = await startTestServer((c) => {
      c.compliance.previewBlocking = true;
    });
    token = readFileSync(tokenPath(srv.dataDir), 'utf8').trim();
    await seed(srv, token, [['alice', ['login']], ['erin', ['login', 'admin', 'export']], ['audrey', ['login', 'auditor', 'export']]]);
  });
  after(async () => {
    await srv.stop();
  });

  test('administrators and the token may not export other users\' raw mail; auditors may; admins their own', async () => {
    const erin = await api('POST', 'exports', { selection: { user: 'alice' }, format: 'mbox' }, 'erin');
    assert.equal(erin.status, 403);
    assert.match(String(erin.json.error), /Preview blocking is on/);
    const tok = await api('POST', 'exports', { selection: { user: 'alice' }, format: 'mbox' });
    assert.equal(tok.status, 403);
    assert.match(String(tok.json.error), /Preview blocking is on: the admin token/);
    assert.equal((await run({ user: 'erin' }, 'mbox', 'erin')).status, 'succeeded');
    const audited = await run({ user: 'alice' }, 'eml', 'audrey');
    assert.equal(audited.status, 'succeeded');
    assert.equal(audited.counts.exported, 4);
  });

  test('a query export without the search plugin is refused with a clear error', async () => {
    const r = await api('POST', 'exports', { selection: { query: 'anything' }, format: 'mbox' }, 'audrey');
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'Full-text search is not enabled (plugin search)');
  });
});
