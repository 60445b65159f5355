// The jobs admin API and `postern jobs` CLI against a live server: token, validation of every body
// and query, 404/409 cases, config-defined jobs, a real failing run (nothing listens on the source
// port) with its result in the history, and `jobs results --from/--to`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

const CLI = fileURLToPath(new URL('../../core/cli/postern.js', import.meta.url));
let srv: TestServer;

function api(method: string, path: string, body?: string, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const tok = token ?? readFileSync(join(srv.dataDir, 'admin.token'), 'utf8').trim();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv.adminPort, path: `/api/v1/${path}`, method, headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(parts).toString() || '{}') as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      env: { ...process.env, POSTERN_DATA_DIR: srv.dataDir, POSTERN_ADMIN_PORT: String(srv.adminPort) },
    }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

const refused = { server: '127.0.0.1', port: 1, tls: 'none', username: 'journal', passwordEnv: 'POSTERN_TEST_NOT_NEEDED' };

before(async () => {
  process.env.POSTERN_TEST_NOT_NEEDED = 'pw';
  srv = await startTestServer((c) => {
    c.jobs = [{ name: 'nightly', kind: 'import-pop3', schedule: '0 3 * * *', enabled: true, options: refused }];
  });
});
after(async () => {
  await srv.stop();
  delete process.env.POSTERN_TEST_NOT_NEEDED;
});

test('the token is required', async () => {
  assert.equal((await api('GET', 'jobs', undefined, 'wrong')).status, 401);
});

test('config jobs are listed with their next run and cannot be changed through the API', async () => {
  const r = await api('GET', 'jobs');
  const jobs = r.json.jobs as Array<{ name: string; source: string; nextRunAt: string | null; status: string }>;
  assert.equal(jobs.length, 1);
  assert.equal(jobs[0]?.source, 'config');
  assert.equal(jobs[0]?.status, 'scheduled');
  assert.ok(jobs[0]?.nextRunAt);
  const kinds = (r.json.kinds as Array<{ kind: string }>).map((k) => k.kind);
  assert.ok(kinds.includes('import-imap') && kinds.includes('import-pop3'));
  const p = await api('PATCH', 'jobs/nightly', JSON.stringify({ enabled: false }));
  assert.equal(p.status, 409);
  assert.match(String(p.json.error), /defined in the configuration file/);
  assert.equal((await api('DELETE', 'jobs/nightly')).status, 409);
});

test('bad bodies and unknown names', async () => {
  const cases: Array<[string, string, string | undefined, number, RegExp]> = [
    ['POST', 'jobs', '{not json', 400, /not valid JSON/],
    ['POST', 'jobs', JSON.stringify({ name: 'x' }), 400, /kind/],
    ['POST', 'jobs', JSON.stringify({ name: 'x', kind: 'import-pop3', options: refused, surprise: 1 }), 400, /surprise|Unrecognized/],
    ['POST', 'jobs', JSON.stringify({ name: 'x', kind: 'nope', options: {} }), 400, /Job kind "nope" is not known/],
    ['POST', 'jobs', JSON.stringify({ name: 'X Y', kind: 'import-pop3', options: refused }), 400, /Job name "X Y"/],
    ['POST', 'jobs', JSON.stringify({ name: 'x', kind: 'import-pop3', schedule: 'sometimes', options: refused }), 400, /neither an interval/],
    ['POST', 'jobs', JSON.stringify({ name: 'x', kind: 'import-pop3', options: { ...refused, port: 'one' } }), 400, /port/],
    ['POST', 'jobs', JSON.stringify({ name: 'nightly', kind: 'import-pop3', options: refused }), 409, /already exists/],
    ['GET', 'jobs/none', undefined, 404, /Job "none" does not exist/],
    ['PATCH', 'jobs/none', '{}', 404, /does not exist/],
    ['DELETE', 'jobs/none', undefined, 404, /does not exist/],
    ['POST', 'jobs/none/run', '{}', 404, /does not exist/],
    ['POST', 'jobs/nightly/cancel', '{}', 409, /is not running/],
    ['POST', 'jobs/nightly/run', JSON.stringify({ list: 'yes' }), 400, /list/],
    ['GET', 'job-results?from=yesterday', undefined, 400, /from: "yesterday" is not a date/],
    ['GET', 'job-results?limit=0', undefined, 400, /limit/],
    ['POST', 'job-list', JSON.stringify({ kind: 'import-imap', options: { server: 'x' } }), 400, /Options: /],
    ['POST', 'job-list', JSON.stringify({ kind: 'nope', options: {} }), 400, /Job kind "nope" is not known/],
    ['POST', 'job-list', JSON.stringify({ kind: 'import-imap' }), 400, /options/],
  ];
  for (const [method, path, body, status, message] of cases) {
    const r = await api(method, path, body);
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.json)}`);
    assert.match(String(r.json.error), message, `${method} ${path}`);
  }
});

test('create, run (the source refuses the connection), results history, update, delete', async () => {
  const c = await cli(['jobs', 'create', 'adhoc', '--kind', 'import-pop3', '--options', JSON.stringify(refused)]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /Schedule: +on demand/);
  assert.match(c.stdout, /Created: .* by admin-token \(/);
  const r = await cli(['jobs', 'run', 'adhoc', '--wait']);
  assert.equal(r.code, 1, 'a failed run exits 1');
  assert.match(r.stdout, /\tadhoc\timport-pop3\tfailed\t/);
  assert.match(r.stdout, /Cannot log in to 127\.0\.0\.1:1: .*ECONNREFUSED/);
  const show = await cli(['jobs', 'show', 'adhoc']);
  assert.match(show.stdout, /Status: +failed/);

  const today = new Date().toISOString().slice(0, 10);
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  const inRange = await cli(['jobs', 'results', '--from', today, '--to', tomorrow]);
  assert.match(inRange.stdout, /\tadhoc\t/);
  const before = await cli(['jobs', 'results', '--to', today]);
  assert.equal(before.stdout, '');
  const bad = await cli(['jobs', 'results', '--from', 'soon']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /from: "soon" is not a date/);

  const u = await cli(['jobs', 'update', 'adhoc', '--schedule', '15m']);
  assert.equal(u.code, 0, u.stderr);
  assert.match(u.stdout, /Schedule: +15m/);
  assert.match(u.stdout, /Next run: +\d{4}-/);
  const d = await cli(['jobs', 'delete', 'adhoc']);
  assert.equal(d.code, 0);
  assert.equal((await api('GET', 'jobs/adhoc')).status, 404);
  assert.match((await cli(['jobs', 'results', '--job', 'adhoc'])).stdout, /\tadhoc\t/, 'results outlive the job');
});

test('`postern import imap` only lists; its source must be given and valid', async () => {
  const noList = await cli(['import', 'imap', '--options', '{}']);
  assert.equal(noList.code, 1);
  assert.match(noList.stderr, /Mailbox imports run as jobs/);
  const noOptions = await cli(['import', 'pop3', '--list']);
  assert.match(noOptions.stderr, /Give the source with --options/);
  const refusedList = await cli(['import', 'pop3', '--list', '--options', JSON.stringify(refused)]);
  assert.equal(refusedList.code, 1);
  assert.match(refusedList.stderr, /Cannot log in to 127\.0\.0\.1:1: .*ECONNREFUSED/);
});

test('a bad job in the configuration stops the boot with its name', async () => {
  await assert.rejects(startTestServer((c) => {
    c.jobs = [{ name: 'broken', kind: 'import-imap', schedule: null, enabled: true, options: { server: 'x' } }];
  }), /jobs: "broken": Options of job "broken"/);
});
