// The search extractor on single messages: header columns as IMAP SEARCH compares them, attachment
// names (RFC 2231 and RFC 2047 decoded) and types, the text of a PDF attachment, and a broken PDF
// recorded as an attachment failure while the rest of the message is indexed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { extract } from '../../../../plugins/search/extract.ts';
import { minimalPdf } from '../../../helpers/pdf.ts';

const run = (raw: string | Buffer): ReturnType<typeof extract> => {
  const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.replace(/\r?\n/g, '\r\n'), 'utf8');
  return extract({ headers: {} as never, size: bytes.length, options: null, open: () => Readable.from([bytes]) });
};

const withAttachment = (part: string): string => [
  'From: "Zoë" <zoe@example.org>', 'To: Ann <ann@example.com>', 'Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=', 'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary=b', '', '--b', 'Content-Type: text/plain; charset=utf-8', '', 'Body words here.', '--b', part, '--b--', '',
].join('\n');

test('header columns hold the decoded values; body and attachment columns hold the words of a text attachment', async () => {
  const x = await run(withAttachment('Content-Type: text/plain; name=notes.txt\nContent-Disposition: attachment\n\nattached text'));
  assert.match(x.subject, /grüße/);
  assert.match(x.sender, /zoë/);
  assert.match(x.rcpt_to, /ann@example\.com/);
  assert.match(x.body, /body words here\./);
  assert.match(x.body, /attached text/, 'text parts are searchable text');
  assert.match(x.attachment, /notes\.txt/);
  assert.match(x.attachment, /attached text/, 'a text attachment\'s words are found by attachment:');
  assert.equal(x.complete, true);
  assert.deepEqual(x.attachmentFailures, []);
});

test('attachment names are decoded and typed, and a PDF attachment\'s text is indexed', async () => {
  const pdf = minimalPdf('Quarterly merger memo').toString('base64').replace(/.{76}/g, '$&\n');
  const x = await run(withAttachment(`Content-Type: application/pdf; name="=?utf-8?q?Bericht_M=C3=A4rz.pdf?="\nContent-Disposition: attachment; filename*=utf-8''Bericht%20M%C3%A4rz.pdf\nContent-Transfer-Encoding: base64\n\n${pdf}`));
  assert.equal(x.hasAttachment, true);
  assert.match(x.attachment, /bericht märz\.pdf/);
  assert.match(x.attachment, /application\/pdf/);
  assert.match(x.attachment, /quarterly merger memo/);
  assert.deepEqual(x.attachmentFailures, []);
});

test('a PDF that cannot be read is recorded; the message is still indexed', async () => {
  const x = await run(withAttachment('Content-Type: application/pdf; name=broken.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQKZ2FyYmFnZQ=='));
  assert.equal(x.attachmentFailures.length, 1);
  assert.match(x.attachmentFailures[0] ?? '', /^broken\.pdf: /);
  assert.match(x.body, /body words here/);
  assert.match(x.attachment, /broken\.pdf/);
});
