// SASL PLAIN decoding (login throttling is core/auth/sign-in-throttle.ts, tested in test/unit/auth/).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodePlain } from '../../../../plugins/imap/auth.ts';

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
