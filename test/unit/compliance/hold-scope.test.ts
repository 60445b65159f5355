// Legal-hold scopes: the header search syntax (every malformed expression), scope validation, and which
// messages a hold covers (users, participants incl. envelopes, date ranges on either field, queries).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPosternError } from '../../../core/errors.ts';
import { holdCovers, parseHoldQuery, participantsOf, validateHoldScope, validateNewHold } from '../../../core/compliance/hold-scope.ts';
import type { MessageRecord } from '../../../core/storage/types.ts';

const invalid = (fn: () => unknown): void => assert.throws(fn, (e) => isPosternError(e, 'INVALID_INPUT'));
const message: MessageRecord = {
  id: 'm1', blobId: 'b', size: 10, archivedAt: '2024-06-01T00:00:00.000Z', flags: [],
  date: '2024-05-01T09:00:00.000Z', from: '"Boss" <Boss@Example.com>', to: 'alice@example.com, "Bob" <bob@example.com>', cc: '',
  subject: 'Contract 42 draft', messageIdHeader: '<abc@example.com>',
  captures: [{ id: 'c', listener: 'smtp', receivedAt: '2024-06-01T00:00:00.000Z', mailFrom: 'bounce@lists.example', rcptTo: ['Hidden@Example.com'], client: '', helo: '' }],
};

test('parseHoldQuery reads field:value and quoted terms, case-insensitively', () => {
  assert.deepEqual(parseHoldQuery('from:boss@ subject:"Contract 42"  draft'), [
    { field: 'from', value: 'boss@' }, { field: 'subject', value: 'contract 42' }, { field: null, value: 'draft' },
  ]);
  assert.deepEqual(parseHoldQuery('Message-ID:<abc@'), [{ field: 'message-id', value: '<abc@' }]);
  invalid(() => parseHoldQuery(''));
  invalid(() => parseHoldQuery('   '));
  invalid(() => parseHoldQuery('body:secret'));
  invalid(() => parseHoldQuery('subject:"unterminated'));
  invalid(() => parseHoldQuery('subject:""'));
  invalid(() => parseHoldQuery('x'.repeat(1001)));
  invalid(() => parseHoldQuery(Array.from({ length: 33 }, (_, i) => `t${i}`).join(' ')));
});

test('validateHoldScope normalises and rejects empty or malformed scopes', () => {
  assert.deepEqual(validateHoldScope({ addresses: ['Boss@Example.com', 'boss@example.com'], users: ['alice', 'alice'] }), { addresses: ['boss@example.com'], users: ['alice'] });
  assert.deepEqual(validateHoldScope({ dateRange: { field: 'archivedAt', from: '2024-01-01' } }), { dateRange: { field: 'archivedAt', from: '2024-01-01T00:00:00.000Z' } });
  // A date alone as the end covers that whole day; a time is taken as given.
  assert.deepEqual(validateHoldScope({ dateRange: { field: 'date', from: '2024-01-01', to: '2024-01-01' } }), { dateRange: { field: 'date', from: '2024-01-01T00:00:00.000Z', to: '2024-01-01T23:59:59.999Z' } });
  assert.deepEqual(validateHoldScope({ dateRange: { field: 'date', to: '2024-01-01T12:00:00Z' } }), { dateRange: { field: 'date', to: '2024-01-01T12:00:00.000Z' } });
  invalid(() => validateHoldScope({}));
  invalid(() => validateHoldScope({ users: [] }));
  invalid(() => validateHoldScope({ users: ['Bad User'] }));
  invalid(() => validateHoldScope({ addresses: ['nobody'] }));
  invalid(() => validateHoldScope({ dateRange: { field: 'date' } }));
  invalid(() => validateHoldScope({ dateRange: { field: 'received' as 'date', from: '2024-01-01' } }));
  invalid(() => validateHoldScope({ dateRange: { field: 'date', from: 'last week' } }));
  invalid(() => validateHoldScope({ dateRange: { field: 'date', from: '2024-02-01', to: '2024-01-01' } }));
  invalid(() => validateHoldScope({ query: 'nofield:x' }));
  invalid(() => validateNewHold({ name: 'has space', scope: { users: ['alice'] }, createdBy: 'x' }));
  invalid(() => validateNewHold({ name: 'ok', description: 'd'.repeat(2001), scope: { users: ['alice'] }, createdBy: 'x' }));
});

test('participants include summary headers and every capture envelope, case-folded', () => {
  assert.deepEqual(participantsOf(message).sort(), ['alice@example.com', 'bob@example.com', 'boss@example.com', 'bounce@lists.example', 'hidden@example.com']);
});

test('holdCovers ANDs the criteria of a scope', () => {
  assert.equal(holdCovers({ users: ['alice'] }, 'alice', message), true);
  assert.equal(holdCovers({ users: ['alice'] }, 'bob', message), false);
  assert.equal(holdCovers({ addresses: ['hidden@example.com'] }, 'bob', message), true, 'an envelope-only (Bcc) recipient');
  assert.equal(holdCovers({ addresses: ['carol@example.com'] }, 'bob', message), false);
  assert.equal(holdCovers({ dateRange: { field: 'date', from: '2024-05-01T00:00:00Z', to: '2024-05-02T00:00:00Z' } }, 'a', message), true);
  assert.equal(holdCovers({ dateRange: { field: 'archivedAt', from: '2024-05-01T00:00:00Z', to: '2024-05-02T00:00:00Z' } }, 'a', message), false);
  assert.equal(holdCovers({ dateRange: { field: 'date', from: '2024-05-01T00:00:00Z' } }, 'a', { ...message, date: null }), true, 'no Date header: kept');
  assert.equal(holdCovers({ query: 'subject:contract from:boss@' }, 'a', message), true);
  assert.equal(holdCovers({ query: 'subject:contract from:carol' }, 'a', message), false);
  assert.equal(holdCovers({ query: 'participant:hidden@' }, 'a', message), true);
  assert.equal(holdCovers({ query: '42' }, 'a', message), true);
  assert.equal(holdCovers({ query: 'message-id:abc@' }, 'a', message), true);
  assert.equal(holdCovers({ users: ['alice'], query: 'subject:invoice' }, 'alice', message), false);
});

test('an address scope covers sub-addresses as the router files them (dave@ holds dave+legal@), not the reverse', () => {
  const toDave: MessageRecord = { ...message, to: 'Dave <dave+legal@example.com>', captures: [{ ...message.captures[0]!, rcptTo: ['Dave+Legal@Example.com'] }] };
  assert.equal(holdCovers({ addresses: ['dave@example.com'] }, 'dave', toDave), true);
  assert.equal(holdCovers({ addresses: ['dave+legal@example.com'] }, 'dave', toDave), true);
  assert.equal(holdCovers({ addresses: ['dave+other@example.com'] }, 'dave', toDave), false);
  assert.equal(holdCovers({ addresses: ['dave@example.com'] }, 'dave', toDave, { localPartCase: 'insensitive', subaddressSeparator: '' }), false, 'sub-addressing off');
  assert.equal(holdCovers({ addresses: ['dave@example.com'] }, 'dave', { ...toDave, to: '', captures: [{ ...message.captures[0]!, rcptTo: ['dave-legal@example.com'] }] }, { localPartCase: 'insensitive', subaddressSeparator: '-' }), true);
  assert.equal(holdCovers({ addresses: ['dave@example.com'] }, 'dave', { ...toDave, to: '', captures: [{ ...message.captures[0]!, rcptTo: ['dave+legal@example.com'] }] }, { localPartCase: 'insensitive', subaddressSeparator: '-' }), false);
  assert.equal(holdCovers({ query: 'participant:dave@example.com' }, 'dave', toDave), true);
  assert.equal(holdCovers({ addresses: ['dave@example.com'] }, 'dave', { ...message, captures: [], to: '"Dave, Legal" <dave+legal@example.com>' }), true, 'a header address with a quoted display name');
});

test('whitespace in header values and query phrases compares collapsed: tabs and folds equal one space', () => {
  for (const subject of ['Contract\t42 draft', 'Contract  42', 'Contract\r\n 42', 'contract \t 42']) {
    assert.equal(holdCovers({ query: 'subject:"contract 42"' }, 'a', { ...message, subject }), true, JSON.stringify(subject));
  }
  assert.equal(holdCovers({ query: 'subject:"contract   42"' }, 'a', message), true, 'spaces in the phrase collapse too');
  assert.equal(holdCovers({ query: 'subject:"contract\t42"' }, 'a', message), true);
  assert.equal(holdCovers({ query: 'subject:"contract 42"' }, 'a', { ...message, subject: 'Contract42' }), false);
  invalid(() => parseHoldQuery('subject:"   "'));
});
