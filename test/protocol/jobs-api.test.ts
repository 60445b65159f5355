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
import { hashPassword } from '../../core/smtp/password.ts';

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
    ['GET', 'job-results?from=yesterday', undefined, 400, /The "from" date "yesterday" is not yyyy-mm-dd/],
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
  assert.match(bad.stderr, /The "from" date "soon" is not yyyy-mm-dd or an ISO time/);

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

test('an administrator signed in with a password cannot make the server read its own files or environment', async () => {
  // Basic-auth administrators are below the token (preview blocking applies to them): a job option that
  // names a server file (the admin token, key files) or variable would send it to a server they choose.
  await srv.archive.addUser({ name: 'erin', addresses: ['erin@example.com'], passwordHash: await hashPassword('erin password 1'), privileges: ['login', 'admin'] });
  const basic = `Basic ${Buffer.from('erin:erin password 1').toString('base64')}`;
  const asErin = async (method: string, path: string, body: unknown): Promise<{ status: number; text: string }> => {
    const res = await fetch(`http://127.0.0.1:${srv.adminPort}/api/v1/${path}`, { method, headers: { authorization: basic, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  };
  const steal = { ...refused, passwordEnv: undefined, passwordFile: join(srv.dataDir, 'admin.token') };
  const viaEnv = { ...refused, passwordEnv: 'POSTERN_TEST_NOT_NEEDED' };
  for (const options of [steal, viaEnv]) {
    const created = await asErin('POST', 'jobs', { name: 'stolen', kind: 'import-pop3', options });
    assert.equal(created.status, 403, created.text);
    assert.match(created.text, /only with the admin token/);
    const listed = await asErin('POST', 'job-list', { kind: 'import-pop3', options });
    assert.equal(listed.status, 403, listed.text);
  }
  assert.equal((await api('GET', 'jobs/stolen')).status, 404);
  // A plain password is fine for erin; changing a job to read a file is not.
  const own = await asErin('POST', 'jobs', { name: 'erins', kind: 'import-pop3', options: { ...refused, passwordEnv: undefined, password: 'pop password' } });
  assert.equal(own.status, 201, own.text);
  assert.equal((await asErin('PATCH', 'jobs/erins', { options: steal })).status, 403);
  // The token may (it can read the data directory anyway).
  assert.equal((await api('POST', 'jobs', JSON.stringify({ name: 'tokens', kind: 'import-pop3', options: viaEnv }))).status, 201);
  for (const n of ['erins', 'tokens']) assert.equal((await api('DELETE', `jobs/${n}`)).status, 200);
});

test('changing where a job sends its password requires giving the password again', async () => {
  const stored = { server: '127.0.0.1', port: 1, tls: 'none', username: 'journal', password: 'the pop password' };
  assert.equal((await api('POST', 'jobs', JSON.stringify({ name: 'keeps', kind: 'import-pop3', options: stored }))).status, 201);
  const { password: _omit, ...withoutPassword } = stored;
  // Pacing changes keep the stored password ...
  const paced = await api('PATCH', 'jobs/keeps', JSON.stringify({ options: { ...withoutPassword, delaySeconds: 1 } }));
  assert.equal(paced.status, 200, JSON.stringify(paced.json));
  // ... but another server, port, user name or TLS setting would receive it: it must be given again.
  for (const moved of [{ server: 'collector.example' }, { port: 2 }, { username: 'other' }, { tls: 'implicit', acceptSelfSigned: true }]) {
    const r = await api('PATCH', 'jobs/keeps', JSON.stringify({ options: { ...withoutPassword, ...moved } }));
    assert.equal(r.status, 400, JSON.stringify(moved));
    assert.match(String(r.json.error), /password/);
    const marked = await api('PATCH', 'jobs/keeps', JSON.stringify({ options: { ...withoutPassword, ...moved, password: '(secret)' } }));
    assert.equal(marked.status, 400, `"(secret)" keeps nothing either: ${JSON.stringify(moved)}`);
  }
  const again = await api('PATCH', 'jobs/keeps', JSON.stringify({ options: { ...withoutPassword, server: 'collector.example', password: 'the pop password' } }));
  assert.equal(again.status, 200, JSON.stringify(again.json));
  assert.equal(((again.json.job as { options: Record<string, unknown> }).options).password, '(secret)');
  assert.equal((await api('DELETE', 'jobs/keeps')).status, 200);
});
