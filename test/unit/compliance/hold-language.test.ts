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
  for (const q of ['a OR b', 'NOT a', '-from:x', '(a b)', 'after:2024-01-01', 'larger:1M', 'user:alice', 'budg*']) assert.equal(usesSearchLanguage(q), true, q);
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
  assert.equal(covers('merger OR acquisition'), false);
  assert.equal(covers('merger OR contract'), true);
  assert.equal(covers('participant:hidden@ OR participant:nobody@'), true);
  // No readable Date: covered by any date term, also under NOT.
  assert.equal(holdCovers({ query: 'NOT after:2024-01-01 OR larger:1G' }, 'alice', { ...message, date: null }), true);
});

test('a malformed search-language hold query is refused with the position', () => {
  assert.throws(() => validateHoldScope({ query: 'from:a OR' }), (e) => isPosternError(e, 'INVALID_INPUT') && /position \d+/.test((e as Error).message));
  assert.throws(() => validateHoldScope({ query: '(subject:x' }), (e) => isPosternError(e, 'INVALID_INPUT'));
  assert.deepEqual(validateHoldScope({ query: 'from:a OR from:b' }), { query: 'from:a OR from:b' });
  // Terms the stored record cannot decide are refused, in either syntax.
  for (const q of ['body:x', 'attachment:x OR from:a', 'has:attachment', '-bcc:x from:a', 'folder:Inbox OR x']) {
    assert.throws(() => validateHoldScope({ query: q }), (e) => isPosternError(e, 'INVALID_INPUT') && /field "(body|attachment|has|bcc|folder)" is unknown/.test((e as Error).message), q);
  }
});
