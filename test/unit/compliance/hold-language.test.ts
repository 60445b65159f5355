// Legal-hold queries in the search query language: which syntax a query is read in (original hold
// queries keep their meaning), three-valued evaluation on the stored record (terms about the body,
// Bcc, attachments or folders are unknown, and a hold covers unless the query is certainly false),
// and validation with the search language's positioned errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPosternError } from '../../../core/errors.ts';
import { holdCovers, validateHoldScope } from '../../../core/compliance/hold-scope.ts';
import { usesSearchLanguage } from '../../../core/compliance/hold-language.ts';
import type { MessageRecord } from '../../../core/storage/types.ts';

const message: MessageRecord = {
  id: 'm1', blobId: 'b', size: 20_000, archivedAt: '2024-06-01T00:00:00.000Z', flags: [],
  date: '2024-05-01T09:00:00.000Z', from: '"Boss" <Boss@Example.com>', to: 'alice@example.com', cc: '',
  subject: 'Contract 42 draft', messageIdHeader: '<abc@example.com>',
  captures: [{ id: 'c', listener: 'smtp', receivedAt: '2024-06-01T00:00:00.000Z', mailFrom: 'bounce@lists.example', rcptTo: ['Hidden@Example.com'], client: '', helo: '' }],
};
const covers = (query: string, user = 'alice'): boolean => holdCovers({ query }, user, message);

test('original hold queries keep their syntax and meaning; operators and new fields switch to the search language', () => {
  for (const q of ['from:boss@ subject:"contract 42"', '42', 'message-id:abc@', 'participant:hidden@', 'or', 'subject:"a OR b"']) assert.equal(usesSearchLanguage(q), false, q);
  for (const q of ['a OR b', 'NOT a', '-from:x', '(a b)', 'has:attachment', 'after:2024-01-01', 'larger:1M', 'body:x', 'user:alice', 'budg*']) assert.equal(usesSearchLanguage(q), true, q);
  // The original meaning: a bare value matches From, To, Cc or Subject only.
  assert.equal(covers('42'), true);
  assert.equal(covers('nowhere'), false);
});

test('search-language holds decide what the record can tell and keep what it cannot', () => {
  assert.equal(covers('from:boss OR from:carol'), true);
  assert.equal(covers('from:carol OR subject:invoice'), false);
  assert.equal(covers('subject:contract -from:boss'), false);
  assert.equal(covers('after:2024-04-30 before:2024-05-02'), true);
  assert.equal(covers('on:2024-05-02'), false);
  assert.equal(covers('larger:10K smaller:30K'), true);
  assert.equal(covers('larger:1M'), false);
  assert.equal(covers('user:alice subject:contract'), true);
  assert.equal(covers('user:bob subject:contract'), false);
  // Unknown on the record (body, attachments, Bcc, folder): covered, unless another term rules it out.
  assert.equal(covers('body:merger'), true);
  assert.equal(covers('has:attachment'), true);
  assert.equal(covers('NOT body:merger'), true);
  assert.equal(covers('body:merger from:carol'), false);
  assert.equal(covers('(body:merger OR bcc:x) AND on:2024-05-01'), true);
  // A word the record's fields lack might be in the body: kept.
  assert.equal(covers('merger OR acquisition'), true);
  assert.equal(covers('participant:hidden@ OR participant:nobody@'), true);
});

test('a malformed search-language hold query is refused with the position', () => {
  assert.throws(() => validateHoldScope({ query: 'from:a OR' }), (e) => isPosternError(e, 'INVALID_INPUT') && /position \d+/.test((e as Error).message));
  assert.throws(() => validateHoldScope({ query: '(subject:x' }), (e) => isPosternError(e, 'INVALID_INPUT'));
  assert.deepEqual(validateHoldScope({ query: 'from:a OR from:b' }), { query: 'from:a OR from:b' });
});
