// The audit log and integrity verification end to end: a real server (in-process, temporary data
// directory), the `postern` CLI spawned as an operator would run it, the admin API, and damage done to
// the database files while the server is stopped. Covers config.loaded (with the changed keys between
// starts), admin actions, failed token checks, message access, `audit verify`, `audit export`,
// `verify`, the verify job and the metrics.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { Config } from '../../core/config/schema.ts';
import type { AuditRecord } from '../../core/audit/types.ts';
import { RocksEngine } from '../../core/storage/rocksdb-engine.ts';
import { keys } from '../../core/storage/kv-keys.ts';

const CLI = fileURLToPath(new URL('../../core/cli/postern.js', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'postern-audit-cli-'));
let srv: TestServer | null = null;

after(async () => {
  await srv?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const configure = (access: boolean) => (c: Config): void => {
  c.audit.recordMessageAccess = access;
  c.audit.verifySchedule = '1d';
};

async function start(access = true): Promise<TestServer> {
  srv = await startTestServer(configure(access), dataDir);
  return srv;
}

async function stop(): Promise<void> {
  await srv?.running.shutdown('test');
  srv = null;
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      env: { ...process.env, POSTERN_DATA_DIR: dataDir, POSTERN_ADMIN_PORT: String(srv?.adminPort ?? 1) },
    }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function http(method: string, path: string, token: string | null): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv?.adminPort, path, method, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

const token = (): string => readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();

async function records(): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of (srv as TestServer).running.app.service('audit').list()) out.push(r);
  return out;
}

test('the first start records config.loaded with the configuration hash and no previous start', async () => {
  await start();
  const [first] = await records();
  assert.equal(first?.seq, 1);
  assert.equal(first?.action, 'config.loaded');
  assert.equal(first?.category, 'config');
  const d = first?.details as { hash: string; keys: Record<string, string>; previous: unknown; changed: unknown };
  assert.match(d.hash, /^[0-9a-f]{64}$/);
  assert.ok('audit.recordMessageAccess' in d.keys && 'smtp.port' in d.keys);
  assert.equal(d.previous, null);
  assert.equal(d.changed, null);
});

test('admin changes, failed token checks and message reads are recorded; the CLI verifies and exports', async () => {
  const s = srv as TestServer;
  const added = await cli(['user', 'add', 'alice', '-a', 'alice@example.com']);
  assert.equal(added.code, 0, added.stderr);
  assert.equal((await http('GET', '/api/v1/users', 'wrong-token')).status, 401);
  assert.equal((await http('GET', '/api/v1/status', null)).status, 401);
  const c = await SmtpClient.open(s.smtpPort);
  await c.read();
  await c.cmd('EHLO t');
  assert.equal((await sendMail(c, 'x@else.org', ['alice@example.com'], 'Subject: hi\r\n\r\nhello\r\n')).code, 250);
  c.close();
  await s.settle();
  const got = await cli(['archive', 'get', 'alice', '1']);
  assert.equal(got.code, 0, got.stderr);
  assert.equal((await cli(['archive', 'list', 'alice'])).code, 0);  // listing is a read without bodies: not recorded

  const all = await records();
  const summary = all.map((r) => `${r.category} ${r.action} ${r.actor} ${r.target} ${r.outcome}`);
  assert.deepEqual(summary.slice(1), [
    'admin api.users.post admin-token  success',
    'login api.token unknown /api/v1/users failure',
    'login api.token unknown /api/v1/status failure',
    'access message.get admin-token alice/Inbox/1 success',
  ]);
  assert.equal(all[2]?.remote, '127.0.0.1');

  const v = await cli(['audit', 'verify']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /Audit log OK: 5 records/);

  const exported = await cli(['audit', 'export', '--since', all[1]?.at ?? '']);
  assert.equal(exported.code, 0, exported.stderr);
  const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
  assert.deepEqual(lines.map((r) => r.seq), all.filter((r) => r.at >= (all[1]?.at ?? '')).map((r) => r.seq));
  assert.deepEqual(lines.at(-1), all.at(-1));
  const file = join(dataDir, 'export.jsonl');
  assert.equal((await cli(['audit', 'export', '--from-seq', '4', '--output', file])).code, 0);
  assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as AuditRecord).seq), [4, 5]);

  // IMAP reads arrive through the `access` hook.
  await s.running.app.hooks.notify('access', { user: 'alice', auditor: false, target: 'alice', folder: 'Inbox', uid: 1, what: 'fetch-body', via: 'imap' });
  const last = (await records()).at(-1);
  assert.deepEqual([last?.category, last?.action, last?.actor, last?.target, last?.details], ['access', 'imap.fetch-body', 'alice', 'alice/Inbox/1', { auditor: false }]);
});

test('bad export arguments are refused by the CLI and the API', async () => {
  const bad = await cli(['audit', 'export', '--since', 'last tuesday']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--since "last tuesday" is not an ISO date/);
  assert.match((await cli(['audit', 'export', '--from-seq', '0'])).stderr, /--from-seq "0" must be a positive whole number/);
  for (const q of ['since=nope', 'fromSeq=0', 'fromSeq=-1', 'limit=abc', 'limit=0']) {
    const r = await http('GET', `/api/v1/audit/records?${q}`, token());
    assert.equal(r.status, 400, q);
  }
  const help = await cli(['audit', 'export', '--help']);
  assert.match(help.stdout, /--since <time>/);
  assert.match((await cli(['verify', '--help'])).stdout, /re-hash every blob/);
});

test('`postern verify` passes on a clean archive and the verify job and metrics agree', async () => {
  const s = srv as TestServer;
  const r = await cli(['verify']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Checked: +1 blob .*1 message, 1 entry$/m);
  assert.match(r.stdout, /No problems found/);
  const jobs = s.running.app.service('jobs');
  assert.equal(jobs.show('integrity-verify').kind, 'verify');
  await jobs.run('integrity-verify', 'manual', 'test');
  await jobs.waitFor('integrity-verify');
  const [result] = await jobs.results({ job: 'integrity-verify' });
  assert.equal(result?.status, 'succeeded');
  assert.equal((result?.summary as { ok: boolean }).ok, true);
  const metrics = (await http('GET', '/metrics', null)).body;
  assert.match(metrics, /postern_verify_problems\{kind="blob-corrupt"\} 0/);
  assert.match(metrics, /postern_verify_last_run_timestamp_seconds [1-9]/);
  assert.ok((await records()).some((x) => x.action === 'verify.run' && x.actor === 'job:integrity-verify' && x.outcome === 'success'));
});

test('a restart records config.loaded linked to the previous start and names the changed keys', async () => {
  const before = (await records()).length;
  await stop();
  await start(false);
  const all = await records();
  const loaded = all.filter((r) => r.action === 'config.loaded');
  assert.equal(all.length, before + 1);
  const d = loaded.at(-1)?.details as { previous: { seq: number }; changed: string[] };
  assert.equal(d.previous.seq, 1);
  assert.deepEqual(d.changed, ['audit.recordMessageAccess']);
  // With recordMessageAccess off, a raw read is not recorded.
  assert.equal((await cli(['archive', 'get', 'alice', '1'])).code, 0);
  const hooks = (srv as TestServer).running.app.hooks;
  await hooks.notify('access', { user: 'alice', auditor: false, target: 'alice', folder: 'Inbox', uid: 1, what: 'fetch-body', via: 'imap' });
  assert.equal((await records()).length, before + 1);
  // Reads of someone else's archive through the auditor namespace are recorded regardless.
  await hooks.notify('access', { user: 'auditor-20260101-000000', auditor: true, target: 'alice', folder: 'Inbox', uid: null, what: 'examine', via: 'imap' });
  const last = (await records()).at(-1);
  assert.deepEqual([last?.action, last?.actor, last?.target], ['imap.examine', 'auditor-20260101-000000', 'alice/Inbox']);
});

test('damage done while the server is stopped is found: `verify` and `audit verify` exit 1 and name it', async () => {
  const s = srv as TestServer;
  const entry = (await s.archive.listEntries('alice', 'Inbox'))[0];
  const sha = (await s.archive.getMessage(entry?.messageId ?? ''))?.blobId ?? '';
  const n = (await records()).length;
  assert.ok(n >= 9);
  await stop();
  const engine = new RocksEngine(join(dataDir, 'archive'));
  await engine.open();
  const chunk = Buffer.from((await engine.get(keys.chunk(sha, 0))) as Buffer);
  chunk[chunk.length - 3] = (chunk[chunk.length - 3] as number) ^ 0x40;
  const rec = ((await engine.get(keys.audit(2))) as Buffer).toString().replace('"admin-token"', '"someone-else"');
  await engine.write([{ type: 'put', key: keys.chunk(sha, 0), value: chunk }, { type: 'put', key: keys.audit(2), value: Buffer.from(rec) }], { sync: true });
  await engine.close();
  await start();

  const av = await cli(['audit', 'verify']);
  assert.equal(av.code, 1);
  assert.match(av.stdout, /Audit log BROKEN at record 2 \(hash-mismatch\)/);
  assert.equal((await records()).length, n + 1, 'logging goes on after the damage');

  const v = await cli(['verify']);
  assert.equal(v.code, 1, v.stderr);
  assert.match(v.stdout, /Problems: 1 \(blob-corrupt 1\)/);
  assert.match(v.stdout, /alice\tInbox\t1\tblob-corrupt 1/);
  assert.match(v.stdout, /\[1 entry: alice\/Inbox\/1\]/);
  const json = JSON.parse((await cli(['verify', '--last', '--json'])).stdout) as { problems: Record<string, number> };
  assert.equal(json.problems['blob-corrupt'], 1);
  assert.match((await http('GET', '/metrics', null)).body, /postern_verify_problems\{kind="blob-corrupt"\} 1/);
  const jobs = (srv as TestServer).running.app.service('jobs');
  await jobs.run('integrity-verify', 'manual', 'test');
  await jobs.waitFor('integrity-verify');
  const results = await jobs.results({ job: 'integrity-verify' });
  assert.equal(results.at(-1)?.status, 'completed-with-errors');
  assert.match(results.at(-1)?.errors.join('\n') ?? '', /blob-corrupt: .*chunk 0 does not decode.*alice\/Inbox\/1/);
});

test('a bad audit.verifySchedule stops the start with a message naming the setting', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-audit-bad-'));
  try {
    await assert.rejects(startTestServer((c) => { c.audit.verifySchedule = 'every full moon'; }, dir), /audit\.verifySchedule: .*every full moon/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
