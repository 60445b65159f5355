// No request to the admin API, however malformed, may stop the server: oversize bodies (declared and
// chunked), invalid JSON, bodies of the wrong kind, a client that goes away mid-body, a request target
// that is no URL, and route handlers that throw odd values or fail after answering. Each is answered
// (413, 400, 500 with a JSON error) or its connection closed, nothing is left as an unhandled
// rejection, and the server keeps serving (regression: a 200 KB body was a 413 and then a TypeError on
// `req.socket.remoteAddress` in AdminServer.handle that ended the process).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { tokenPath } from '../../core/admin/token.ts';
import { hashPassword } from '../../core/smtp/password.ts';

let srv: TestServer;
let token: string;
const PASSWORD = 'correct horse battery';
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
const basic = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`;

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One request; a connection the server closes before answering resolves as status 0. */
function call(method: string, path: string, opts: { auth?: string; body?: Buffer | string; chunked?: boolean; type?: string } = {}): Promise<Reply> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { authorization: opts.auth ?? `Bearer ${token}`, 'content-type': opts.type ?? 'application/json' };
    if (opts.chunked) headers['transfer-encoding'] = 'chunked';
    const req = request({ host: '127.0.0.1', port: srv.adminPort, path, method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), headers: res.headers }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers }));
    });
    req.on('error', () => resolve({ status: 0, body: '', headers: {} }));
    if (opts.body !== undefined && opts.chunked) {
      const body = Buffer.from(opts.body);
      for (let i = 0; i < body.length; i += 16384) req.write(body.subarray(i, i + 16384));
      req.end();
    } else req.end(opts.body);
  });
}

/** Raw bytes on a fresh connection; resolves with what the server sent until it closed (or 2 s passed). */
function raw(bytes: string, abortAfterWrite = false): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(srv.adminPort, '127.0.0.1');
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
    sock.on('error', () => undefined);
    sock.on('close', () => resolve(got));
    sock.write(bytes, () => {
      if (abortAfterWrite) setTimeout(() => sock.destroy(), 50);
    });
    setTimeout(() => sock.destroy(), 2000).unref();
  });
}

async function alive(): Promise<void> {
  const res = await call('GET', '/healthz');
  assert.equal(res.status, 200, 'the server still answers');
  assert.equal((await call('GET', '/api/v1/status')).status, 200);
}

const json = (r: Reply): Record<string, unknown> => JSON.parse(r.body) as Record<string, unknown>;

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  srv = await startTestServer();
  token = readFileSync(tokenPath(srv.dataDir), 'utf8').trim();
  await srv.archive.addUser({ name: 'alice', addresses: ['alice@example.com'], passwordHash: await hashPassword(PASSWORD), privileges: ['login'] });
  const routes = srv.running.app.service('adminRoutes');
  routes.add('GET', 'test/throw-string', async () => {
    throw 'not an Error'; // eslint-disable-line @typescript-eslint/only-throw-error
  }, 'test');
  routes.add('GET', 'test/throw-after-headers', async ({ res }) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('partial');
    throw new Error('failed half way');
  }, 'test');
  routes.add('GET', 'test/throw-after-end', async ({ res }) => {
    res.end('done');
    throw new Error('failed after answering');
  }, 'test');
});
after(async () => {
  await srv.stop();
  process.off('unhandledRejection', onUnhandled);
});

test('an oversize body is a 413 on every route, for a user with only `login` and for the token, and the server stays up', async () => {
  const big = JSON.stringify({ password: 'x'.repeat(200_000) });
  const answers = [
    await call('PUT', '/api/v1/account/password', { auth: basic, body: big }),
    await call('POST', '/api/v1/users', { body: big }),
    await call('PATCH', '/api/v1/users/alice', { body: big }),
    await call('POST', '/api/v1/holds', { body: big }),
    await call('POST', '/api/v1/jobs', { body: big }),
    await call('PUT', '/api/v1/account/password', { auth: basic, body: big, chunked: true }),
    await call('POST', '/api/v1/users', { body: big, chunked: true }),
  ];
  for (const [i, r] of answers.entries()) {
    assert.ok(r.status === 413 || r.status === 0, `request ${i}: ${r.status} ${r.body}`);
    if (r.status === 413) assert.match(String(json(r).error), /exceeds 65536 bytes/);
  }
  assert.ok(answers.filter((r) => r.status === 413).length >= 5, 'a client that sends its body gets the 413');
  await alive();
  assert.deepEqual(unhandled, []);
});

test('invalid JSON and bodies of the wrong kind are a 400 with a JSON error', async () => {
  const bodies: Array<[string, string | Buffer]> = [
    ['application/json', '{"name": "x", '],
    ['application/json', '[1, 2, 3]'],
    ['application/json', 'null'],
    ['application/json', '"just a string"'],
    ['application/x-www-form-urlencoded', 'name=x&addresses=y'],
    ['application/octet-stream', Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80])],
    ['application/json', '['.repeat(30_000)],
  ];
  for (const [type, body] of bodies) {
    for (const [method, path, auth] of [['POST', '/api/v1/users'], ['PATCH', '/api/v1/users/alice'], ['PUT', '/api/v1/account/password', basic], ['POST', '/api/v1/holds'], ['POST', '/api/v1/jobs']] as const) {
      const r = await call(method, path, { body, type, ...(auth ? { auth } : {}) });
      assert.equal(r.status, 400, `${method} ${path} with ${type} ${String(body).slice(0, 20)}: ${r.body}`);
      assert.equal(typeof json(r).error, 'string');
    }
  }
  await alive();
  assert.deepEqual(unhandled, []);
});

test('a client that goes away mid-body, or sends a target that is no URL, does not stop the server', async () => {
  const head = (path: string, auth: string, length: number): string =>
    `PUT ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
  await raw(head('/api/v1/account/password', basic, 5000) + '{"password": "' + 'y'.repeat(100), true);
  await raw(head('/api/v1/users/alice', `Bearer ${token}`, 5000).replace('PUT', 'PATCH') + '{"addAddresses": [', true);
  await raw(`POST /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\n\r\n4000\r\n${'z'.repeat(1000)}`, true);
  await raw(head('/api/v1/users', `Bearer ${token}`, 200_000).replace('PUT', 'POST') + 'x'.repeat(70_000), true);
  const bad = await raw('GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(bad, /^HTTP\/1\.1 400 /);
  await new Promise((resolve) => setTimeout(resolve, 200));
  await alive();
  assert.deepEqual(unhandled, []);
  assert.ok(!srv.logs.some((l) => l.msg === 'Admin request handling failed'), 'every failure was handled by the request itself');
});

test('a route that throws an odd value is a 500 with a JSON error; one that fails after answering ends its connection', async () => {
  const r = await call('GET', '/api/v1/test/throw-string');
  assert.equal(r.status, 500);
  assert.equal(json(r).error, 'not an Error');
  const half = await call('GET', '/api/v1/test/throw-after-headers');
  assert.ok(half.status === 200 || half.status === 0);
  const ended = await call('GET', '/api/v1/test/throw-after-end');
  assert.equal(ended.status, 200);
  await alive();
  assert.deepEqual(unhandled, []);
  assert.ok(srv.logs.some((l) => l.msg === 'Admin request failed' && l.err === 'failed half way'));
});
