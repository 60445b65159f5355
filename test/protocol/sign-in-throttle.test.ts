// One sign-in throttle for IMAP and the admin API, against live servers: many concurrent connections
// cannot check passwords faster than the configured rate (regression: 12 IMAP connections multiplied
// the rate, the API had no throttle at all: 148 attempts in 10 s); a right password without IMAP access
// is answered exactly like a wrong one (regression: [AUTHORIZATIONFAILED] told the password was right);
// the right password works again once the lockout has passed; throttled API requests get 429 with
// Retry-After; the audit log gets one record per checked attempt and one per throttled burst, not one
// per request; the valid admin token is never throttled.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { tokenPath } from '../../core/admin/token.ts';
import { hashPassword, verifyPassword } from '../../core/smtp/password.ts';
import type { AuditRecord } from '../../core/audit/types.ts';
import { ImapClient, PASSWORD, startImapServer, type ImapTestServer } from './imap-client.ts';

const FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function records(s: TestServer): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of s.running.app.service('audit').list()) out.push(r);
  return out;
}

async function signIns(s: TestServer, via: string, outcome: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`postern_sign_ins_total{via="${via}",outcome="${outcome}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function tryLogin(port: number, user: string, password: string): Promise<{ status: string; ms: number }> {
  const c = await ImapClient.open(port);
  await c.readUnit();
  const started = Date.now();
  const r = await c.cmd(`LOGIN ${user} "${password}"`, 30000);
  const ms = Date.now() - started;
  c.close();
  return { status: r.status, ms };
}

describe('IMAP sign-in throttle', () => {
  let s: ImapTestServer;
  const settings = { burst: 2, addressBurst: 1000, baseDelayMs: 250, maxDelayMs: 250, maxWaitMs: 1000, windowSeconds: 60 };
  before(async () => {
    s = await startImapServer([
      { name: 'alice', addresses: ['alice@example.com'] },
      { name: 'carol', addresses: ['carol@example.com'], imap: false },
      { name: 'dan', addresses: ['dan@example.com'] },
    ], {}, settings);
  });
  after(() => s.stop());

  it('twelve connections guessing at once check no more passwords than the configured rate', async () => {
    const durationMs = 3000;
    const started = Date.now();
    const replies: string[] = [];
    let slowest = 0;
    await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      const c = await ImapClient.open(s.imapPort);
      await c.readUnit();
      while (Date.now() - started < durationMs) {
        const t = Date.now();
        // Guesses alternate between the name and an address of the same account.
        replies.push((await c.cmd(`LOGIN ${i % 2 ? 'alice' : 'ALICE@example.com'} "guess-${i}-${replies.length}"`, 30000)).status);
        slowest = Math.max(slowest, Date.now() - t);
      }
      c.close();
    }));
    const checked = await signIns(s, 'imap', 'failed');
    const bound = settings.burst + (durationMs + settings.maxWaitMs) / settings.baseDelayMs + 1;
    assert.ok(checked <= bound, `${checked} passwords checked in ${durationMs} ms over 12 connections (at most ${bound})`);
    assert.ok(checked >= settings.burst, 'guesses were checked at all');
    assert.ok(await signIns(s, 'imap', 'throttled') > 0, 'the rest were refused unchecked');
    assert.ok(replies.every((r) => r === FAILED), 'every failure looks the same');
    assert.ok(slowest < settings.maxWaitMs + 3000, `each answer is bounded (slowest ${slowest} ms)`);
    const audited = (await records(s)).filter((r) => r.action === 'imap.login' && r.target !== 'carol' && r.target !== 'dan');
    const checkedRecords = audited.filter((r) => (r.details as { reason?: string } | undefined)?.reason !== 'throttled');
    assert.ok(checkedRecords.length <= bound, `one audit record per checked attempt (${checkedRecords.length})`);
    assert.ok(audited.length <= 2 * bound, `throttled attempts are recorded once per burst (${audited.length} records for ${replies.length} attempts)`);
    assert.ok(replies.length > audited.length, 'fewer records than attempts');

    // Once the queued slots have passed, the right password works.
    await sleep(settings.maxWaitMs + 2 * settings.baseDelayMs);
    assert.match((await tryLogin(s.imapPort, 'alice', PASSWORD)).status, /^OK /);
  });

  it('locks an account out while its slots are taken, even for the right password, and lets it in afterwards', async () => {
    const clients = await Promise.all(Array.from({ length: 11 }, async () => {
      const c = await ImapClient.open(s.imapPort);
      await c.readUnit();
      return c;
    }));
    const guesses = clients.slice(0, 10).map((c, i) => c.cmd(`LOGIN dan "guess-${i}"`, 30000));
    await sleep(150);
    const right = await (clients[10] as ImapClient).cmd(`LOGIN dan "${PASSWORD}"`, 30000);
    assert.equal(right.status, FAILED, 'throttled: refused unchecked');
    assert.ok((await Promise.all(guesses)).every((r) => r.status === FAILED));
    for (const c of clients) c.close();
    await sleep(settings.maxWaitMs + 2 * settings.baseDelayMs);
    assert.match((await tryLogin(s.imapPort, 'dan', PASSWORD)).status, /^OK /, 'the right password after the lockout');
  });

  it('a right password without IMAP access is answered and throttled exactly like a wrong one', async () => {
    await sleep(settings.maxWaitMs);
    const right = await tryLogin(s.imapPort, 'carol', PASSWORD);
    const wrong = await tryLogin(s.imapPort, 'dan', 'not the password');
    const unknown = await tryLogin(s.imapPort, 'nobody', PASSWORD);
    assert.equal(right.status, FAILED);
    assert.equal(wrong.status, FAILED);
    assert.equal(unknown.status, FAILED);
    // Each costs a full password check: no shortcut answers one kind of failure sooner.
    const hash = await hashPassword('reference');
    const t = Date.now();
    await verifyPassword('x', hash);
    const check = Date.now() - t;
    for (const r of [right, wrong, unknown]) assert.ok(r.ms >= check * 0.3, `${r.ms} ms for a reply, ${check} ms for one password check`);
    // The right password without access counts as a failure: carol's burst runs out like dan's.
    const carol: string[] = [];
    const dan: string[] = [];
    for (let i = 0; i < 3; i++) {
      carol.push((await tryLogin(s.imapPort, 'carol', PASSWORD)).status);
      dan.push((await tryLogin(s.imapPort, 'dan', 'not the password')).status);
    }
    assert.deepEqual(carol, dan);
    const counted = await signIns(s, 'imap', 'failed');
    assert.ok(counted > 0);
    assert.match((await tryLogin(s.imapPort, 'dan', PASSWORD)).status, /^OK /, 'a success is not hindered by the other accounts');
  });
});

describe('admin API sign-in throttle', () => {
  let s: TestServer;
  let token: string;
  const settings = { burst: 3, addressBurst: 5, baseDelayMs: 300, maxDelayMs: 300, maxWaitMs: 600, windowSeconds: 60 };

  function call(auth: string, from: string, path = '/api/v1/users/alice'): Promise<{ status: number; retryAfter: string | undefined }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: s.adminPort, path, localAddress: from, agent: false, headers: { authorization: auth } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
      });
      req.on('error', reject);
      req.end();
    });
  }
  const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  before(async () => {
    s = await startTestServer((c) => Object.assign(c.signIn, settings));
    token = readFileSync(tokenPath(s.dataDir), 'utf8').trim();
    await s.archive.addUser({ name: 'alice', addresses: ['alice@example.com'], passwordHash: await hashPassword(PASSWORD), privileges: ['login'] });
  });
  after(() => s.stop());

  it('Basic guesses from twenty addresses at once: a few are checked, the rest get 429 with Retry-After; the right password works after it', async () => {
    const guesses = Promise.all(Array.from({ length: 20 }, (_, i) => call(basic('alice', `guess-${i}`), `127.0.0.${10 + i}`)));
    await sleep(100);
    const locked = await call(basic('alice', PASSWORD), '127.0.0.99');
    const results = await guesses;
    const checked = results.filter((r) => r.status === 401).length;
    const throttled = results.filter((r) => r.status === 429);
    assert.equal(checked + throttled.length, 20, JSON.stringify(results));
    assert.ok(checked <= settings.burst + settings.maxWaitMs / settings.baseDelayMs + 1, `${checked} checked`);
    assert.ok(throttled.length >= 10, `${throttled.length} throttled`);
    assert.ok(throttled.every((r) => Number(r.retryAfter) >= 1), 'Retry-After on every 429');
    assert.equal(await signIns(s, 'api', 'failed'), checked);

    assert.equal(locked.status, 429, 'locked out for now, even with the right password');
    await sleep(Number(locked.retryAfter) * 1000 + 100);
    assert.equal((await call(basic('alice', PASSWORD), '127.0.0.99')).status, 200, 'the right password after the lockout');

    const logins = (await records(s)).filter((r) => r.category === 'login');
    assert.equal(logins.filter((r) => r.action === 'api.token').length, 0, 'a failed Basic sign-in is one record, not two');
    const failures = logins.filter((r) => r.action === 'api.login' && r.outcome === 'failure');
    assert.ok(failures.length <= checked + 3, `${failures.length} failure records for 21 refused requests`);
    assert.equal(logins.filter((r) => r.action === 'api.login' && r.outcome === 'success').length, 1);
  });

  it('a flood of wrong tokens is throttled per address with bounded audit records; the right token never is', async () => {
    const from = '127.0.0.200';
    const before = (await records(s)).length;
    const results = await Promise.all(Array.from({ length: 40 }, () => call('Bearer wrong-token', from, '/api/v1/status')));
    const refused = results.filter((r) => r.status === 401).length;
    assert.ok(refused <= settings.addressBurst + settings.maxWaitMs / settings.baseDelayMs + 1, `${refused} answered 401`);
    assert.equal(results.filter((r) => r.status === 429).length, 40 - refused);
    const added = (await records(s)).slice(before);
    assert.ok(added.length <= refused + 2, `${added.length} audit records for 40 requests`);
    assert.equal((await call(`Bearer ${token}`, from, '/api/v1/status')).status, 200, 'the valid token from the same address');
  });
});
