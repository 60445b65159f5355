// Web access sign-in, sessions and request protection against a live server over HTTP: sign-in by name
// and by address, the same refusal for a wrong password, an unknown user and a user without web access,
// web access by flag, group and privilege, the shared sign-in throttle (429 with Retry-After) and the
// audit records of web logins, cookie flags, CSRF on every POST (sign-in included) and foreign Origins
// refused, every route of the route table guarded (no session, no CSRF token) and sending the security
// headers, sign-out, a cookie of an ended session, access switched
// off through the admin API (postern user web) ending sessions, HTTPS with Secure/__Host- cookies, and
// a non-loopback host refused at boot without TLS.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolvePlugins } from '../../core/app/app.ts';
import type { AuditRecord } from '../../core/audit/types.ts';
import { mail, PASSWORD, startWebServer, type WebTestServer } from './web-client.ts';

async function auditRecords(s: WebTestServer): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of s.running.app.service('audit').list()) out.push(r);
  return out;
}

function assertSecurityHeaders(headers: Headers): void {
  const csp = headers.get('content-security-policy') ?? '';
  for (const part of ["default-src 'none'", "style-src 'self'", "img-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) assert.ok(csp.includes(part), `CSP has ${part}: ${csp}`);
  assert.ok(!csp.includes('unsafe-inline') && !csp.includes('script-src'), csp);
  assert.equal(headers.get('x-content-type-options'), 'nosniff');
  assert.equal(headers.get('referrer-policy'), 'no-referrer');
  assert.equal(headers.get('x-frame-options'), 'DENY');
}

describe('web access: sign-in, sessions, CSRF and headers', () => {
  let s: WebTestServer;
  let token: string;
  const admin = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`http://127.0.0.1:${s.adminPort}/api/v1/${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });

  before(async () => {
    s = await startWebServer([
      { name: 'alice', addresses: ['alice@example.com'] },
      { name: 'nora', addresses: ['nora@example.com'], web: false },
      { name: 'gina', addresses: ['gina@example.com'], web: false, groups: ['legal'] },
      { name: 'carl', addresses: ['carl@example.com'], web: false, privileges: ['compliance'] },
      { name: 'auditor-1', addresses: ['audit@example.com'], web: false, privileges: ['auditor'] },
      { name: 'tess', addresses: ['tess@example.com'] },
      { name: 'tina', addresses: ['tina@example.com'] },
    ], { web: { accessGroups: ['legal'] }, search: false, signIn: { burst: 3, addressBurst: 100, baseDelayMs: 3000, maxDelayMs: 60000, maxWaitMs: 200 } });
    token = readFileSync(join(s.dataDir, 'admin.token'), 'utf8').trim();
    await s.file('alice', 'Inbox', mail({ from: 'bob@example.com', to: 'alice@example.com', subject: 'Hello Alice' }));
  });
  after(async () => {
    await s.stop();
  });

  it('sends a signed-out browser to the sign-in page, with the security headers on every page', async () => {
    const c = s.client();
    const r = await c.get('/folder?user=alice&folder=Inbox');
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/signin?next=%2Ffolder%3Fuser%3Dalice%26folder%3DInbox');
    const form = await c.get('/signin');
    assert.equal(form.status, 200);
    assertSecurityHeaders(form.headers);
    assert.equal(form.headers.get('cache-control'), 'no-store');
    assert.match(form.text, /<label for="user">/);
    assert.doesNotMatch(form.text, /<script/i);
    const css = await c.get('/assets/web.css');
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    assertSecurityHeaders(css.headers);
  });

  it('guards every route of the route table: no session, no CSRF token, security headers on each answer', async () => {
    const table = s.running.app.service('web').routes();
    const own: Record<string, string> = {
      '/archive': '?user=alice', '/folder': '?user=alice&folder=Inbox', '/message': '?user=alice&folder=Inbox&uid=1',
      '/message/html': '?user=alice&folder=Inbox&uid=1', '/message/raw': '?user=alice&folder=Inbox&uid=1',
      '/message/part': '?user=alice&folder=Inbox&uid=1&part=1', '/exports/view': '?id=0123456789abcdef',
      '/exports/file': '?id=0123456789abcdef',
    };
    const anonymous = s.client();
    const alice = s.client();
    assert.equal((await alice.signIn('alice')).status, 303);
    assert.ok(table.session.length >= 16, table.session.join(', '));
    for (const route of table.session) {
      const [method, path = ''] = route.split(' ');
      const target = path + (own[path] ?? '');
      if (method === 'GET') {
        const r = await anonymous.get(target);
        assert.equal(r.status, 303, `${route} without a session`);
        assert.match(r.headers.get('location') ?? '', /^\/signin/, route);
        const mine = await alice.get(target);
        assert.ok(mine.status < 500, `${route}: ${mine.status}`);
        const csp = mine.headers.get('content-security-policy') ?? '';
        assert.ok(csp.startsWith("default-src 'none'") && !/script-src|'unsafe-eval'/.test(csp), `${route}: ${csp}`);
        assert.equal(mine.headers.get('x-content-type-options'), 'nosniff', route);
        assert.equal(mine.headers.get('referrer-policy'), 'no-referrer', route);
        assert.ok(mine.headers.get('x-frame-options'), route);
      } else {
        const r = await anonymous.request('POST', path, { _csrf: 'x' });
        assert.equal(r.status, 401, `${route} without a session`);
        await alice.get('/archives');
        const noToken = await alice.request('POST', path, {});
        assert.equal(noToken.status, 403, `${route} without the CSRF token`);
        assertSecurityHeaders(noToken.headers);
      }
    }
    assert.equal((await alice.get('/archives')).status, 200, 'still signed in: no POST went through');
  });

  it('signs in by name and by address with HttpOnly, SameSite=Strict cookies, and signs out (CSRF checked)', async () => {
    const c = s.client();
    const r = await c.signIn('alice');
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/search');
    const cookie = r.setCookies.find((l) => l.startsWith('postern='));
    assert.ok(cookie, r.setCookies.join('|'));
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Strict/);
    assert.match(cookie, /; Path=\//);
    assert.doesNotMatch(cookie, /Secure/, 'no Secure flag over plain HTTP on loopback');
    assert.match(cookie, /^postern=[A-Za-z0-9_-]{43};/);
    const page = await c.get('/folder?user=alice&folder=Inbox');
    assert.equal(page.status, 200);
    assertSecurityHeaders(page.headers);
    assert.match(page.text, /Hello Alice/);
    // Sign-out without the token is refused and keeps the session.
    const forged = await c.request('POST', '/signout', { _csrf: 'x'.repeat(32) });
    assert.equal(forged.status, 403);
    assert.equal((await c.get('/archives')).status, 200);
    const out = await c.post('/signout');
    assert.equal(out.status, 303);
    assert.equal(out.headers.get('location'), '/signin?signedout=1');
    assert.ok(!c.jar.has('postern'));
    const byAddress = s.client();
    assert.equal((await byAddress.signIn('Alice@Example.com')).status, 303);
    assert.equal((await byAddress.get('/archives')).status, 200);
  });

  it('shows "session ended" for a cookie that names no live session, and after sign-out for the old cookie', async () => {
    const c = s.client();
    await c.signIn('alice');
    const old = c.jar.get('postern') as string;
    await c.get('/archives');
    await c.post('/signout');
    c.jar.set('postern', old);
    const r = await c.get('/archives');
    assert.equal(r.status, 401);
    assert.match(r.text, /Your session has ended/);
    assert.match(r.text, /href="\/signin\?next=%2Farchives"/);
    c.jar.set('postern', 'A'.repeat(43));
    assert.equal((await c.get('/search')).status, 401);
    // A POST with an ended session is not carried out either.
    assert.equal((await c.request('POST', '/exports', { _csrf: 'x', query: 'hello' })).status, 401);
  });

  it('refuses sign-in forms without the pre-session token (login CSRF) and POSTs from another origin', async () => {
    const c = s.client();
    const noCookie = await c.request('POST', '/signin', { user: 'alice', password: PASSWORD, _csrf: 'whatever' });
    assert.equal(noCookie.status, 403);
    await c.get('/signin');
    const badToken = await c.request('POST', '/signin', { user: 'alice', password: PASSWORD, _csrf: 'A'.repeat(43) });
    assert.equal(badToken.status, 403);
    assert.ok(!c.jar.has('postern'));
    await c.signIn('alice');
    await c.get('/search');
    const foreign = await c.post('/signout', {}, { origin: 'http://evil.example' });
    assert.equal(foreign.status, 403);
    const crossSite = await c.post('/signout', {}, { 'sec-fetch-site': 'cross-site' });
    assert.equal(crossSite.status, 403);
    assert.equal((await c.get('/archives')).status, 200, 'still signed in');
    const wrongType = await c.request('POST', '/signout', undefined, { 'content-type': 'text/plain' });
    assert.equal(wrongType.status, 403);
  });

  it('gives web access by flag, group, compliance or auditor privilege, and refuses the rest with one answer', async () => {
    for (const name of ['gina', 'carl', 'auditor-1']) assert.equal((await s.client().signIn(name)).status, 303, name);
    const answers = await Promise.all([
      s.client().signIn('nora'), s.client().signIn('nobody-here'), s.client().signIn('tess', 'wrong password'),
    ]);
    for (const r of answers) {
      assert.equal(r.status, 401);
      assert.match(r.text, /Wrong user name or password, or web access is not switched on for this user/);
    }
    const records = await auditRecords(s);
    const web = records.filter((r) => r.action === 'web.login');
    assert.ok(web.some((r) => r.outcome === 'success' && r.actor === 'gina'));
    assert.ok(web.some((r) => r.outcome === 'failure' && r.target === 'nora' && (r.details as { reason: string }).reason === 'no-web-access'));
    assert.ok(web.some((r) => r.outcome === 'failure' && (r.details as { reason: string }).reason === 'unknown-user'));
    assert.ok(web.some((r) => r.outcome === 'failure' && r.target === 'tess' && (r.details as { reason: string }).reason === 'wrong-password'));
    assert.ok(web.every((r) => !JSON.stringify(r).includes(PASSWORD)));
  });

  it('throttles wrong passwords with the shared sign-in throttle: 429 with Retry-After, even for the right password', async () => {
    const c = s.client();
    await c.get('/signin');
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await c.post('/signin', { user: 'tina', password: `wrong ${i}` })).status);
    assert.deepEqual(statuses, [401, 401, 401, 429]);
    const right = await c.post('/signin', { user: 'tina', password: PASSWORD });
    assert.equal(right.status, 429);
    assert.ok(Number(right.headers.get('retry-after')) >= 1);
    assert.match(right.text, /Too many sign-in attempts/);
    const metrics = await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
    assert.match(metrics, /postern_sign_ins_total\{via="web",outcome="throttled"\} [1-9]/);
    const throttled = (await auditRecords(s)).filter((r) => r.action === 'web.login' && (r.details as { reason?: string } | undefined)?.reason === 'throttled');
    assert.equal(throttled.length, 1, 'one audit record per throttled burst');
  });

  it('switches web access with PUT users/:name/web (postern user web) and ends open sessions when it goes off', async () => {
    const c = s.client();
    assert.equal((await c.signIn('nora')).status, 401);
    const on = await admin('PUT', 'users/nora/web', { enabled: true });
    assert.equal(on.status, 200);
    assert.equal(((await on.json()) as { user: { webAccess: boolean } }).user.webAccess, true);
    assert.equal((await c.signIn('nora')).status, 303);
    assert.equal((await c.get('/archives')).status, 200);
    assert.equal((await admin('PUT', 'users/nora/web', { enabled: false })).status, 200);
    assert.equal((await c.get('/archives')).status, 401);
    assert.equal((await admin('PUT', 'users/nora/web', { enabled: 'yes' })).status, 400);
    assert.equal((await admin('PUT', 'users/nobody/web', { enabled: true })).status, 404);
  });

  it('answers unknown pages with 404 and other methods with 405', async () => {
    const c = s.client();
    await c.signIn('alice');
    assert.equal((await c.get('/nope')).status, 404);
    const del = await fetch(`${s.base}/search`, { method: 'DELETE', headers: { cookie: `postern=${c.jar.get('postern') ?? ''}` } });
    assert.equal(del.status, 405);
  });
});

describe('web access over TLS and its listener settings', () => {
  it('serves HTTPS with the generated certificate, Secure __Host- cookies and HSTS', async () => {
    const s = await startWebServer([{ name: 'alice', addresses: ['alice@example.com'] }], { web: { tls: { enabled: true } }, search: false });
    const previous = process.env['NODE_TLS_REJECT_UNAUTHORIZED'];
    process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = '0';
    try {
      assert.match(s.base, /^https:/);
      const c = s.client();
      const form = await c.get('/signin');
      assert.equal(form.status, 200);
      assert.match(form.headers.get('strict-transport-security') ?? '', /max-age=/);
      assert.ok(form.setCookies.some((l) => /^__Host-postern-pre=.*; Secure/.test(l)), form.setCookies.join('|'));
      const r = await c.post('/signin', { user: 'alice', password: PASSWORD, next: '/archives' });
      assert.equal(r.status, 303);
      assert.equal(r.headers.get('location'), '/archives');
      const cookie = r.setCookies.find((l) => l.startsWith('__Host-postern='));
      assert.ok(cookie);
      assert.match(cookie, /; HttpOnly; SameSite=Strict; Secure/);
      assert.equal((await c.get('/archives')).status, 200);
    } finally {
      if (previous === undefined) delete process.env['NODE_TLS_REJECT_UNAUTHORIZED'];
      else process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = previous;
      await s.stop();
    }
  });

  it('refuses a non-loopback host without TLS with a precise configuration error, and takes the port from POSTERN_WEB_PORT', async () => {
    const where = (p: ReadonlyArray<PropertyKey>): string => `postern.yaml: ${p.map(String).join('.')}`;
    await assert.rejects(resolvePlugins([{ name: 'web', config: { host: '0.0.0.0' } }], where, undefined, {}),
      (err: Error) => /plugins\.0\.config\.host/.test(err.message) && /web host "0\.0\.0\.0" is not loopback; set tls\.enabled: true/.test(err.message));
    await assert.rejects(resolvePlugins([{ name: 'web', config: {} }], where, undefined, { POSTERN_WEB_HOST: '192.0.2.1' }), /POSTERN_WEB_HOST|not loopback/);
    const [ok] = await resolvePlugins([{ name: 'web', config: { host: '0.0.0.0', tls: { enabled: true } } }], where, undefined, { POSTERN_WEB_PORT: '9555' });
    assert.equal((ok?.config as { port: number }).port, 9555);
    await assert.rejects(resolvePlugins([{ name: 'web', config: { tls: { enabled: true, cert: '/x.pem' } } }], where, undefined, {}), /both "cert" and "key"/);
  });
});
