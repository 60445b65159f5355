// Fuzz target for the search plugin's text extraction (plugins/search/extract.ts, with pdf.js for PDF
// attachments): whatever the bytes, extraction returns bounded columns and never throws; an unreadable
// PDF is an attachment failure, not an exception. Hangs and runaway memory are the harness's to catch.
import { Readable } from 'node:stream';
import { extract, MAX_TEXT_CHARS } from '../../plugins/search/extract.ts';
import { minimalPdf } from '../helpers/pdf.ts';
import { loadPdfJs } from '../../plugins/search/pdf-text.ts';
import { check, type FuzzGroup } from './target.ts';

const pdf = minimalPdf('Quarterly merger memo');
const multipart = (part: string): string => [
  'From: a@example.org', 'To: b@example.com', 'Subject: =?utf-8?b?w4RyZ2Vy?=', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=b', '',
  '--b', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable', '', 'caf=E9 text', '--b', part, '--b--', '',
].join('\r\n');

const SEEDS = [
  multipart(`Content-Type: application/pdf; name=memo.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n${pdf.toString('base64')}`),
  multipart(`Content-Type: application/pdf; name=raw.pdf\r\n\r\n${pdf.toString('latin1')}`),
  multipart('Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: text/html\r\n\r\n<p>inner <b>html</b></p>'),
  multipart('Content-Type: application/octet-stream; name*=utf-8\'\'r%C3%A9sum%C3%A9.pdf\r\nContent-Disposition: attachment\r\n\r\n%PDF-1.7 garbage'),
  'Subject: plain\r\n\r\nbody only\r\n',
  'no header at all',
];

const TOKENS = [
  '\r\n', '\n', '--b', '--b--', 'Content-Type: ', 'application/pdf', 'multipart/mixed; boundary=b', 'message/rfc822', 'text/plain',
  'Content-Transfer-Encoding: base64', 'quoted-printable', 'name=', 'filename*=', '=?utf-8?q?', '?=', '%PDF-1.4', ' obj', 'endobj', 'stream\n',
  'endstream', '/Length 99999999', '/Type /Page', '/Kids [', 'xref', 'trailer', 'startxref', '<<', '>>', '(', ')', '\\', '\u0000', '\xff',
];

export const group: FuzzGroup = {
  group: 'search-extract',
  targets: [
    {
      name: 'search-extract.message',
      seeds: () => SEEDS.map((s) => Buffer.from(s, 'latin1')),
      dictionary: TOKENS,
      maxLength: 32 * 1024,
      prepare: loadPdfJs,
      async run(input) {
        const x = await extract({ headers: {} as never, size: input.length, options: null, open: () => Readable.from([input]) });
        check(x.head.length <= MAX_TEXT_CHARS && x.body.length <= MAX_TEXT_CHARS, 'text columns are bounded', { head: x.head.length, body: x.body.length });
        for (const c of [x.sender, x.rcpt_to, x.rcpt_cc, x.rcpt_bcc, x.subject, x.rawhdr, x.attachment]) check(typeof c === 'string', 'every column is text', c);
        check(typeof x.complete === 'boolean' && typeof x.hasAttachment === 'boolean', 'flags are booleans', x);
        check(Array.isArray(x.attachmentFailures) && x.attachmentFailures.every((f) => typeof f === 'string' && f.length <= 300), 'attachment failures are short lines', x.attachmentFailures);
      },
    },
  ],
};
