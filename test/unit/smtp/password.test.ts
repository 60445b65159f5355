// Password hashes: scrypt round trip, and the cache of successful verifications (a correct password
// is verified by scrypt once, then by the remembered HMAC; a wrong one is never helped by the cache;
// a new hash for the same password stands on its own).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword } from '../../../core/smtp/password.ts';

describe('password hashes', () => {
  it('verifies the right password and refuses a wrong one, before and after a cached success', async () => {
    const encoded = await hashPassword('Corr3ct-horse');
    assert.equal(await verifyPassword('wrong', encoded), false);
    assert.equal(await verifyPassword('Corr3ct-horse', encoded), true);
    assert.equal(await verifyPassword('Corr3ct-horse', encoded), true, 'again, from the cache');
    assert.equal(await verifyPassword('Corr3ct-horsE', encoded), false, 'the cache matches the exact password only');
    assert.equal(await verifyPassword('', encoded), false);
  });

  it('keeps each stored hash apart: a success for one hash says nothing about another', async () => {
    const a = await hashPassword('first-password');
    const b = await hashPassword('second-password');
    assert.equal(await verifyPassword('first-password', a), true);
    assert.equal(await verifyPassword('first-password', b), false);
    assert.equal(await verifyPassword('second-password', b), true);
    assert.equal(await verifyPassword('second-password', a), false);
  });

  it('refuses malformed stored hashes', async () => {
    for (const bad of ['', 'scrypt$1$1', 'bcrypt$x$y$z$a$b', 'scrypt$16384$8$1$c2FsdA==$c2hvcnQ=']) {
      assert.equal(await verifyPassword('x', bad), false, bad);
    }
  });
});
