// The export manifest builder: one JSON line per message with its provenance, eml file names that are
// safe and reversible whatever the folder is called, SHA256SUMS lines as sha256sum writes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  describeSelection, emlPath, manifestLine, manifestMessage, pathSegment, sumsLine, type ManifestMessage,
} from '../../../core/export/manifest.ts';
import type { MessageRecord } from '../../../core/storage/types.ts';

const MESSAGE: MessageRecord = {
  id: 'm1', blobId: 'a'.repeat(64), size: 123, archivedAt: '2026-01-02T03:04:05.000Z',
  date: '2026-01-01T00:00:00.000Z', from: 'Alice <alice@example.com>', to: 'bob@example.com', cc: '', subject: 'Line\nbreak "quoted"', messageIdHeader: '<m1@example.com>',
  flags: ['journal-malformed: test'],
  captures: [
    { id: 'c1', listener: 'smtp', receivedAt: '2026-01-02T03:04:04.000Z', mailFrom: 'alice@example.com', rcptTo: ['bob@example.com'], client: '127.0.0.1', helo: 'mx.example.com' },
    {
      id: 'c2', listener: 'relay', receivedAt: '2026-01-02T03:05:00.000Z', mailFrom: 'journal@example.com', rcptTo: ['archive@example.com'], client: '10.0.0.1', helo: 'exchange',
      journal: {
        kind: 'exchange', style: 'envelope', role: 'report', sender: 'alice@example.com', onBehalfOf: null,
        recipients: [{ address: 'carol@example.com', field: 'bcc', expandedFrom: 'team@example.com', forwardedFrom: null }],
        wrapperMessageId: '<wrap@example.com>', ndrWrapped: false, problems: [],
      },
    },
  ],
  attributes: { imap: { big: 'not in the manifest' } },
};

test('a message line carries the coordinates, the SHA-256 and size of the bytes, the summary and every capture with its journal provenance', () => {
  const line = manifestMessage({ user: 'bob', folder: 'Inbox', uid: 7, internalDate: '2026-01-02T03:04:05.000Z' }, MESSAGE, { sha256: 'a'.repeat(64), size: 123, file: 'bob/Inbox/7.eml', offset: null });
  const parsed = JSON.parse(manifestLine(line)) as ManifestMessage;
  assert.deepEqual(parsed, {
    type: 'message', user: 'bob', folder: 'Inbox', uid: 7, sha256: 'a'.repeat(64), size: 123,
    date: '2026-01-01T00:00:00.000Z', from: 'Alice <alice@example.com>', to: 'bob@example.com', cc: '', subject: 'Line\nbreak "quoted"', messageId: '<m1@example.com>',
    archivedAt: '2026-01-02T03:04:05.000Z', file: 'bob/Inbox/7.eml', offset: null, flags: ['journal-malformed: test'],
    captures: [
      { id: 'c1', listener: 'smtp', receivedAt: '2026-01-02T03:04:04.000Z', mailFrom: 'alice@example.com', rcptTo: ['bob@example.com'], client: '127.0.0.1', helo: 'mx.example.com', journal: null },
      {
        id: 'c2', listener: 'relay', receivedAt: '2026-01-02T03:05:00.000Z', mailFrom: 'journal@example.com', rcptTo: ['archive@example.com'], client: '10.0.0.1', helo: 'exchange',
        journal: MESSAGE.captures[1]?.journal ?? null,
      },
    ],
  });
  const text = manifestLine(line);
  assert.equal(text.indexOf('\n'), text.length - 1, 'one line, however the values look');
  assert.ok(!text.includes('not in the manifest'), 'plugin attributes are not exported');
});

test('eml paths: USER/FOLDER/UID.eml with folder levels as directories and unsafe characters escaped', () => {
  assert.equal(emlPath('alice', 'Inbox', 3), 'alice/Inbox/3.eml');
  assert.equal(emlPath('alice', 'Work/Projects', 12), 'alice/Work/Projects/12.eml');
  assert.equal(emlPath('alice', 'Über Maße', 1), 'alice/Über Maße/1.eml');
  assert.equal(emlPath('alice', 'a:b*c?"<>|\\%', 1), 'alice/a%3Ab%2Ac%3F%22%3C%3E%7C%5C%25/1.eml');
  assert.equal(emlPath('alice', '../..', 1), 'alice/%2E./%2E./1.eml');
  assert.equal(emlPath('alice', '.hidden/x', 1), 'alice/%2Ehidden/x/1.eml');
  assert.equal(emlPath('alice', 'Inbox/12.eml', 1), 'alice/Inbox/12%2Eeml/1.eml', 'a folder never clashes with a message file');
  assert.equal(emlPath('manifest.jsonl', 'Inbox', 1), 'manifest%2Ejsonl/Inbox/1.eml', 'nor a user with the manifest');
  assert.equal(emlPath('_unrouted', 'Tab\there', 1), '_unrouted/Tab%09here/1.eml');
});

test('path segments are reversible and never ".", "..", empty, hidden or with a separator', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 20 }), (name) => {
    const seg = pathSegment(name);
    assert.ok(seg !== '' && seg !== '.' && seg !== '..' && !seg.startsWith('.'));
    assert.ok(!/[/\\\u0000-\u001f:*?"<>|]/.test(seg), seg);
    if (name !== '' && !/^\d+\.eml$/.test(name)) assert.equal(decodeURIComponent(seg), name);
  }), { numRuns: 500 });
});

test('SHA256SUMS lines are what sha256sum writes; names that would need escaping are refused', () => {
  assert.equal(sumsLine('f'.repeat(64), 'alice/Inbox/1.eml'), `${'f'.repeat(64)}  alice/Inbox/1.eml\n`);
  assert.throws(() => sumsLine('f'.repeat(64), 'a\nb'));
  assert.throws(() => sumsLine('f'.repeat(64), 'a\\b'));
});

test('selections read as one short text', () => {
  assert.equal(describeSelection({ user: 'alice' }), 'user alice');
  assert.equal(describeSelection({ user: 'alice', folder: 'Inbox' }), 'user alice folder Inbox');
  assert.equal(describeSelection({ hold: 'case-1' }), 'hold case-1');
  assert.equal(describeSelection({ messages: [{ user: 'alice', folder: 'Inbox', uid: 3 }] }), '1 picked message (alice/Inbox/3)');
  assert.equal(describeSelection({ messages: [1, 2, 3, 4].map((uid) => ({ user: 'bob', folder: 'A/B', uid })) }), '4 picked messages (bob/A/B/1, bob/A/B/2, bob/A/B/3, …)');
  assert.equal(describeSelection({ query: 'from:"a b"' }), 'query "from:\\"a b\\""');
});
