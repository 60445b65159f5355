// Retention rules: durations, policy validation (every bad input), matching, and "longest minimum wins".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPosternError } from '../../../core/errors.ts';
import { FOREVER, addDuration, computeRetention, extendOnly, isoInstant, policyMatches, validatePolicy, type RetentionSubject } from '../../../core/compliance/retention-rules.ts';
import type { RetentionPolicy } from '../../../core/compliance/types.ts';

const at = new Date('2024-01-31T12:00:00.000Z');
const invalid = (fn: () => unknown): void => assert.throws(fn, (e) => isPosternError(e, 'INVALID_INPUT'));
const policy = (name: string, minimum: string, maximum?: string, match: RetentionPolicy['match'] = {}): RetentionPolicy =>
  ({ name, match, minimum, source: 'archive', ...(maximum ? { maximum } : {}) });
const subject: RetentionSubject = {
  user: 'alice', groups: ['legal'], ownAddresses: ['alice@example.com'], participants: ['partner@client.example', 'alice@example.com'], folder: 'Inbox', direction: 'received',
};

test('durations add calendar units in UTC; forever is the far end', () => {
  assert.equal(addDuration(at, '30d').toISOString(), '2024-03-01T12:00:00.000Z');
  assert.equal(addDuration(at, '2w').toISOString(), '2024-02-14T12:00:00.000Z');
  assert.equal(addDuration(at, '1m').toISOString(), '2024-03-02T12:00:00.000Z'); // Jan 31 + 1 month rolls over like Date does
  assert.equal(addDuration(at, '7y').toISOString(), '2031-01-31T12:00:00.000Z');
  assert.equal(addDuration(at, '0d').toISOString(), at.toISOString());
  assert.equal(addDuration(at, 'forever').toISOString(), FOREVER);
  assert.equal(addDuration(at, '9999y').toISOString(), FOREVER, 'clamped so ISO strings still sort');
  for (const bad of ['', '7', 'y', '7 y', '7Y', '-1d', '1.5y', '10000d', '1h', 'never']) invalid(() => addDuration(at, bad));
});

test('validatePolicy accepts and normalises a good rule and rejects each bad field', () => {
  const ok = validatePolicy(policy('Legal-7y', '7y', '10y', { addresses: ['Boss@Example.COM'], domains: ['@Client.Example'], groups: ['Legal'], direction: 'sent' }));
  assert.deepEqual(ok.match, { addresses: ['boss@example.com'], domains: ['client.example'], groups: ['legal'], direction: 'sent' });
  invalid(() => validatePolicy(policy('bad name', '1y')));
  invalid(() => validatePolicy(policy('', '1y')));
  invalid(() => validatePolicy(policy('x', 'soon')));
  invalid(() => validatePolicy(policy('x', '1y', 'forever')));
  invalid(() => validatePolicy(policy('x', '2y', '1y')));
  invalid(() => validatePolicy(policy('x', '1y', '6m')));
  invalid(() => validatePolicy(policy('x', '1y', undefined, { users: [] })));
  invalid(() => validatePolicy(policy('x', '1y', undefined, { users: ['Not A User'] })));
  invalid(() => validatePolicy(policy('x', '1y', undefined, { addresses: ['no-at-sign'] })));
  invalid(() => validatePolicy(policy('x', '1y', undefined, { folders: [''] })));
  invalid(() => validatePolicy(policy('x', '1y', undefined, { direction: 'sideways' as 'sent' })));
});

test('policyMatches requires every given criterion; lists match any member', () => {
  assert.equal(policyMatches({}, subject), true);
  assert.equal(policyMatches({ users: ['bob', 'alice'] }, subject), true);
  assert.equal(policyMatches({ users: ['bob'] }, subject), false);
  assert.equal(policyMatches({ groups: ['legal'], folders: ['Inbox'] }, subject), true);
  assert.equal(policyMatches({ groups: ['legal'], folders: ['Sent'] }, subject), false);
  assert.equal(policyMatches({ direction: 'sent' }, subject), false);
  assert.equal(policyMatches({ addresses: ['partner@client.example'] }, subject), true, 'a participant');
  assert.equal(policyMatches({ domains: ['client.example'] }, subject), true);
  assert.equal(policyMatches({ domains: ['example.org'] }, subject), false);
});

test('the longest minimum wins; the longest maximum too; any rule without a maximum means no purge', () => {
  const rules = [policy('a', '1y', '2y'), policy('b', '3y', '4y', { groups: ['legal'] }), policy('c', '10y', undefined, { users: ['bob'] })];
  assert.deepEqual(computeRetention(rules, subject, at), { retainUntil: '2027-01-31T12:00:00.000Z', purgeAfter: '2028-01-31T12:00:00.000Z' });
  assert.deepEqual(computeRetention(rules, { ...subject, user: 'bob', groups: [] }, at), { retainUntil: '2034-01-31T12:00:00.000Z', purgeAfter: null });
  assert.deepEqual(computeRetention([], subject, at), { retainUntil: null, purgeAfter: null });
  // An explicit value from the commit counts as one more rule, and purgeAfter never precedes retainUntil.
  assert.deepEqual(computeRetention(rules, subject, at, { retainUntil: '2030-01-01T00:00:00.000Z' }), { retainUntil: '2030-01-01T00:00:00.000Z', purgeAfter: '2030-01-01T00:00:00.000Z' });
  assert.deepEqual(computeRetention([], subject, at, { purgeAfter: '2020-01-01T00:00:00.000Z' }), { retainUntil: null, purgeAfter: '2020-01-01T00:00:00.000Z' });
});

test('isoInstant normalises dates and rejects anything else', () => {
  assert.equal(isoInstant('2024-05-01', 'x'), '2024-05-01T00:00:00.000Z');
  assert.equal(isoInstant('2024-05-01T10:00:00+02:00', 'x'), '2024-05-01T08:00:00.000Z');
  for (const bad of ['', 'yesterday', '05/01/2024', '2024-13-45', '1714550400']) invalid(() => isoInstant(bad, 'x'));
});

test('extendOnly: a later capture moves retainUntil and purgeAfter only later; never-purged stays never purged', () => {
  const A = '2030-01-01T00:00:00.000Z';
  const B = '2040-01-01T00:00:00.000Z';
  const C = '2050-01-01T00:00:00.000Z';
  assert.deepEqual(extendOnly({ retainUntil: A, purgeAfter: B }, { retainUntil: B, purgeAfter: C }), { retainUntil: B, purgeAfter: C });
  assert.deepEqual(extendOnly({ retainUntil: B, purgeAfter: C }, { retainUntil: A, purgeAfter: B }), { retainUntil: B, purgeAfter: C }, 'never shortened');
  assert.deepEqual(extendOnly({ retainUntil: A, purgeAfter: null }, { retainUntil: A, purgeAfter: B }), { retainUntil: A, purgeAfter: null }, 'no purge date is added');
  assert.deepEqual(extendOnly(null, { retainUntil: B, purgeAfter: C }), { retainUntil: B, purgeAfter: null }, 'no record: never purged before, never purged now');
  assert.deepEqual(extendOnly({ retainUntil: A, purgeAfter: B }, { retainUntil: A, purgeAfter: null }), { retainUntil: A, purgeAfter: null }, 'no maximum lifts the purge date');
  assert.deepEqual(extendOnly({ retainUntil: null, purgeAfter: B }, { retainUntil: null, purgeAfter: A }), { retainUntil: null, purgeAfter: B });
  assert.deepEqual(extendOnly({ retainUntil: A, purgeAfter: B }, { retainUntil: C, purgeAfter: null }), { retainUntil: C, purgeAfter: null });
  assert.deepEqual(extendOnly({ retainUntil: A, purgeAfter: A }, { retainUntil: C, purgeAfter: B }), { retainUntil: C, purgeAfter: C }, 'purge never before retainUntil');
});
