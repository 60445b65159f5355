// API session tokens on a live server: made with HTTP Basic (POST /api/v1/sessions), used as a bearer
// token acting as the user with their privileges, audited once at creation and never per request;
// stored hashed (0600) and kept across a restart; ended by DELETE sessions/current or by id, by a new
// password, by losing the login privilege and by removing the user; no session from the admin token or
// from another session; others' sessions invisible; failed creations go through the sign-in throttle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { hashPassword } from '../../core/smtp/password.ts';
import type { AuditRecord } from '../../core/audit/types.ts';
import type { Config } from '../../core/config/schema.ts';

const PASSWORD = 'correct horse battery staple';

async function actions(srv: TestServer, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const r of srv.running.app.service('audit').list() as AsyncIterable<AuditRecord>) if (r.action.startsWith(prefix)) out.push(`${r.action} ${r.actor} ${r.outcome}`);
  return out;
}

test('API sessions: make, use, list, end, and what ends them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-sessions-'));
  // A small address burst and short spacing, so the throttle is reached quickly.
  const configure = (c: Config): void => {
    c.signIn.addressBurst = 10;
    c.signIn.baseDelayMs = 50;
    c.signIn.maxWaitMs = 100;
  };
  let srv = await startTestServer(configure, dir);
  try {
    const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    const hash = await hashPassword(PASSWORD);
    for (const name of ['alice', 'bob']) await srv.archive.addUser({ name, addresses: [`${name}@example.com`], passwordHash: hash, privileges: ['login'] });
    const base = (): string => `http://127.0.0.1:${srv.adminPort}/api/v1`;
    const basic = (user: string, pw = PASSWORD): string => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
    const api = async (method: string, path: string, auth: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
      const res = await fetch(base() + path, { method, headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const login = async (user: string): Promise<{ token: string; id: string; expiresAt: string }> => {
      const r = await api('POST', '/sessions', basic(user), { label: 'test' });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      const s = r.json.session as { id: string; user: string; expiresAt: string };
      assert.equal(s.user, user);
      return { token: r.json.token as string, id: s.id, expiresAt: s.expiresAt };
    };

    const before = Date.now();
    const a = await login('alice');
    assert.match(a.token, /^pst_[A-Za-z0-9_-]{43}$/);
    const ttl = Date.parse(a.expiresAt) - before;
    assert.ok(ttl > 11.9 * 3600_000 && ttl <= 12 * 3600_000 + 5000, `12 hours by default (${ttl} ms)`);
    const bearer = `Bearer ${a.token}`;

    // Acts as alice, with alice's privileges.
    assert.equal((await api('GET', '/users/alice', bearer)).status, 200);
    assert.equal((await api('GET', '/status', bearer)).status, 403, 'not an administrator');
    assert.equal((await api('GET', '/users/bob', bearer)).status, 403);

    // Audited once at creation; the Basic sign-in that made it and the requests with it are not sign-ins on record.
    assert.deepEqual(await actions(srv, 'api.session'), ['api.session.create alice success']);
    assert.deepEqual(await actions(srv, 'api.login'), []);
    assert.deepEqual(await actions(srv, 'api.sessions'), [], 'the creation is not recorded again as an admin request');
    await api('GET', '/users/alice', `${basic('alice')}`);
    assert.deepEqual(await actions(srv, 'api.login'), ['api.login alice success'], 'Basic requests still are');

    // Stored hashed, 0600; the token itself is nowhere on disk.
    const file = join(dir, 'api-sessions.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const stored = readFileSync(file, 'utf8');
    assert.ok(!stored.includes(a.token.slice(4)), 'no token on disk');
    assert.ok(stored.includes(a.id));

    // No session from the admin token, nor from another session; a bad body is refused.
    assert.equal((await api('POST', '/sessions', `Bearer ${token}`, {})).status, 400);
    assert.equal((await api('POST', '/sessions', bearer, {})).status, 403);
    assert.equal((await api('POST', '/sessions', basic('alice'), { label: 'x', extra: 1 })).status, 400);

    // Lists: one's own only; the admin token sees everyone's; never a token or hash.
    const b = await login('bob');
    const mine = await api('GET', '/sessions', bearer);
    assert.deepEqual((mine.json.sessions as Array<{ user: string }>).map((s) => s.user), ['alice']);
    assert.ok(!JSON.stringify(mine.json).includes('hash') && !JSON.stringify(mine.json).includes('pst_'));
    const all = await api('GET', '/sessions', `Bearer ${token}`);
    assert.deepEqual((all.json.sessions as Array<{ user: string }>).map((s) => s.user).sort(), ['alice', 'bob']);

    // Someone else's session is unknown to alice; the admin token ends it.
    assert.equal((await api('DELETE', `/sessions/${b.id}`, bearer)).status, 404);
    assert.equal((await api('GET', '/users/bob', `Bearer ${b.token}`)).status, 200);
    assert.equal((await api('DELETE', `/sessions/${b.id}`, `Bearer ${token}`)).status, 200);
    assert.equal((await api('GET', '/users/bob', `Bearer ${b.token}`)).status, 401);

    // Kept across a restart.
    await srv.stop();
    srv = await startTestServer(configure, dir);
    assert.equal((await api('GET', '/users/alice', bearer)).status, 200, 'the session survives a restart');

    // Logout: DELETE sessions/current ends the session it is signed in with.
    assert.equal((await api('DELETE', '/sessions/current', `Bearer ${token}`)).status, 400, 'the admin token has no current session');
    const out = await api('DELETE', '/sessions/current', bearer);
    assert.equal(out.status, 200);
    assert.equal(out.json.removed, a.id);
    const after = await api('GET', '/users/alice', bearer);
    assert.equal(after.status, 401);
    assert.equal(after.json.error, 'Missing or wrong bearer token');

    // A new password ends every session of the user.
    const c = await login('alice');
    assert.equal((await api('PUT', '/account/password', `Bearer ${token}`, { user: 'alice', password: 'another long password' })).status, 200);
    assert.equal((await api('GET', '/users/alice', `Bearer ${c.token}`)).status, 401);
    // So does losing the login privilege, and removal from the directory.
    const d = await login('bob');
    assert.equal((await api('PATCH', '/privileges/bob', `Bearer ${token}`, { remove: ['login'] })).status, 200);
    assert.equal((await api('GET', '/users/bob', `Bearer ${d.token}`)).status, 401);
    assert.equal((await api('PATCH', '/privileges/bob', `Bearer ${token}`, { add: ['login'] })).status, 200);
    assert.equal((await api('GET', '/users/bob', `Bearer ${d.token}`)).status, 401, 'ended for good, not suspended');
    const e = await login('bob');
    assert.equal((await api('DELETE', '/users/bob', `Bearer ${token}`)).status, 200);
    assert.equal((await api('GET', '/sessions', `Bearer ${e.token}`)).status, 401);

    // A wrong password or a wrong session token fails like any sign-in and is throttled with them.
    const wrong = await api('POST', '/sessions', basic('alice', 'not the password'), {});
    assert.equal(wrong.status, 401);
    let status = 0;
    for (let i = 0; i < 30 && status !== 429; i++) status = (await api('GET', '/sessions', `Bearer pst_${'x'.repeat(43)}`)).status;
    assert.equal(status, 429, 'wrong session tokens are throttled');
    assert.deepEqual(await actions(srv, 'api.session.create'), ['api.session.create alice success', 'api.session.create bob success', 'api.session.create alice success', 'api.session.create bob success', 'api.session.create bob success']);
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
