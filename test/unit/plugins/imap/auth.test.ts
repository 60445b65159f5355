// Login throttling (per user and per address, doubling, capped, forgetting, bounded) and SASL PLAIN decoding.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LoginThrottle, decodePlain } from '../../../../plugins/imap/auth.ts';

describe('IMAP login throttle', () => {
  it('doubles the delay per failure for the user and for the address, up to the cap', () => {
    let now = 0;
    const t = new LoginThrottle({ baseDelayMs: 100, maxDelayMs: 1000, windowSeconds: 60, maxTracked: 100 }, () => now);
    assert.equal(t.delayMs('alice', '10.0.0.1'), 0);
    t.failed('alice', '10.0.0.1');
    assert.equal(t.delayMs('alice', '10.0.0.1'), 100);
    t.failed('alice', '10.0.0.1');
    t.failed('alice', '10.0.0.1');
    assert.equal(t.delayMs('alice', '10.0.0.9'), 400, 'the user is throttled from any address');
    assert.equal(t.delayMs('bob', '10.0.0.1'), 400, 'the address is throttled for any user');
    assert.equal(t.delayMs('bob', '10.0.0.9'), 0);
    for (let i = 0; i < 10; i++) t.failed('alice', '10.0.0.1');
    assert.equal(t.delayMs('alice', '10.0.0.1'), 1000);
    t.succeeded('alice');
    assert.equal(t.delayMs('alice', '10.0.0.9'), 0);
    assert.equal(t.delayMs('bob', '10.0.0.1'), 1000, 'a success does not clear the address');
    now += 61_000;
    assert.equal(t.delayMs('bob', '10.0.0.1'), 0, 'failures are forgotten after the window');
  });

  it('keeps a bounded table', () => {
    const t = new LoginThrottle({ baseDelayMs: 100, maxDelayMs: 1000, windowSeconds: 60, maxTracked: 10 });
    for (let i = 0; i < 100; i++) t.failed(`user${i}`, `10.0.0.${i}`);
    assert.ok(t.size <= 10);
  });
});

describe('SASL PLAIN', () => {
  const enc = (s: string): string => Buffer.from(s).toString('base64');
  it('decodes authzid, login and password', () => {
    assert.deepEqual(decodePlain(enc('\u0000alice\u0000pw')), { authzid: '', login: 'alice', password: 'pw' });
    assert.deepEqual(decodePlain(enc('alice\u0000alice\u0000p\u00e4ss')), { authzid: 'alice', login: 'alice', password: 'p\u00e4ss' });
  });
  it('rejects malformed responses', () => {
    for (const bad of ['!!', enc('alice\u0000pw'), enc('\u0000\u0000pw'), enc('\u0000alice\u0000'), enc('a\u0000b\u0000c\u0000d')]) assert.equal(decodePlain(bad), null, bad);
  });
});
