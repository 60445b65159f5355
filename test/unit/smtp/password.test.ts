// Password hashes: scrypt round trip, and the opt-in cache of successful verifications (a correct
// password is verified by scrypt once, then by the remembered HMAC; a wrong one is never helped by the
// cache; a new hash for the same password stands on its own).
// That a check without the option never uses the cache is what test/protocol/sign-in-throttle.test.ts
// sees: a right password without IMAP access answers as slowly as a wrong one.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword } from '../../../core/smtp/password.ts';

describe('password hashes', () => {
  it('verifies the right password and refuses a wrong one, before and after a cached success', async () => {
    const encoded = await hashPassword('Corr3ct-horse');
    assert.equal(await verifyPassword('wrong', encoded), false);
    assert.equal(await verifyPassword('Corr3ct-horse', encoded, { cached: true }), true);
    assert.equal(await verifyPassword('Corr3ct-horse', encoded, { cached: true }), true, 'again, from the cache');
    assert.equal(await verifyPassword('Corr3ct-horsE', encoded, { cached: true }), false, 'the cache matches the exact password only');
    assert.equal(await verifyPassword('', encoded), false);
  });

  it('keeps each stored hash apart: a success for one hash says nothing about another', async () => {
    const a = await hashPassword('first-password');
    const b = await hashPassword('second-password');
    assert.equal(await verifyPassword('first-password', a, { cached: true }), true);
    assert.equal(await verifyPassword('first-password', b, { cached: true }), false);
    assert.equal(await verifyPassword('second-password', b, { cached: true }), true);
    assert.equal(await verifyPassword('second-password', a, { cached: true }), false);
  });

  it('refuses malformed stored hashes', async () => {
    for (const bad of ['', 'scrypt$1$1', 'bcrypt$x$y$z$a$b', 'scrypt$16384$8$1$c2FsdA==$c2hvcnQ=']) {
      assert.equal(await verifyPassword('x', bad), false, bad);
    }
  });
});
