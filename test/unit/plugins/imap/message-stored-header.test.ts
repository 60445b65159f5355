// The top-level header stored with the IMAP data (header FETCH and SEARCH read it instead of the blob):
// exactly the view's first headerSize bytes (bare LF read as CRLF), absent above the size limit, and
// ignored by imapDataOf() when it does not fit the recorded header size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { computeImapData, imapDataOf } from '../../../../plugins/imap/message/index.ts';
import { MAX_STORED_HEADER } from '../../../../plugins/imap/message/types.ts';

const pieces = (b: Buffer, n: number): Buffer[] => Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, (i + 1) * n));

test('the stored header is the view\'s header, CRLF, byte for byte, across chunk boundaries', async () => {
  const raw = Buffer.from('From: a@example.test\nSubject: caf\xe9 =?utf-8?q?x?=\n\tfolded\nTo: b@example.test\n\nbody\n', 'latin1');
  const data = await computeImapData(Readable.from(pieces(raw, 5)));
  const want = 'From: a@example.test\r\nSubject: caf\xe9 =?utf-8?q?x?=\r\n\tfolded\r\nTo: b@example.test\r\n\r\n';
  assert.equal(data.header, want);
  assert.equal(data.headerSize, Buffer.byteLength(want, 'latin1'));
  const again = imapDataOf({ imap: JSON.parse(JSON.stringify(data)) as unknown });
  assert.equal(again?.header, want, 'survives storing as JSON');
});

test('a header above the limit is not stored (read from the blob instead)', async () => {
  const long = `X-Long: ${'a'.repeat(MAX_STORED_HEADER)}\r\nSubject: s\r\n\r\nbody\r\n`;
  const data = await computeImapData(Readable.from([Buffer.from(long, 'latin1')]));
  assert.equal(data.header, undefined);
  assert.ok(data.headerSize > MAX_STORED_HEADER);
});

test('imapDataOf drops a stored header that does not match the header size', async () => {
  const data = await computeImapData(Readable.from([Buffer.from('Subject: s\r\n\r\nbody\r\n', 'latin1')]));
  const bad = imapDataOf({ imap: { ...data, header: 'Subject: forged\r\n\r\n' } });
  assert.ok(bad);
  assert.equal(bad.header, undefined);
  assert.equal(imapDataOf({ imap: { ...data, header: undefined } })?.header, undefined, 'data of earlier versions has none');
});
