// parseSection and sectionOf: section grammar (valid and invalid), every section kind against bytes
// Dovecot returned for the same message, <partial> windows, nonexistent parts, bare-LF headers, and a
// blob shorter than its index (the stream fails instead of shortening a literal).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { computeImapData, parseSection, sectionOf, type ImapMessageData } from '../../../../plugins/imap/message/index.ts';

const MSG = Buffer.from([
  'From: a@b.c', 'Subject: mp', 'Content-Type: multipart/mixed; boundary="XX"', '', 'preamble',
  '--XX', '', 'part one', '--XX', 'Content-Type: text/html', '', '<b>x</b>', '', '--XX', 'Content-Type: message/rfc822', '',
  'From: inner@x.y', 'Subject: inner', 'Content-Type: multipart/alternative; boundary=YY', '', '--YY',
  'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: base64', '', 'aGVsbG8=', '--YY--', '', '--XX--', 'epilogue', '',
].join('\r\n'));

const pieces = (b: Buffer, n: number): Buffer[] => Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, (i + 1) * n));

async function get(data: ImapMessageData, bytes: Buffer, section: string, partial?: { start: number; length: number }): Promise<string> {
  const spec = parseSection(section);
  assert.ok(spec, `section "${section}" parses`);
  const { size, stream } = await sectionOf(data, spec, async () => Readable.from(pieces(bytes, 11)), partial);
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  const got = Buffer.concat(parts);
  assert.equal(got.length, size, `size announced up front for "${section}"`);
  return got.toString('latin1');
}

test('parseSection accepts the RFC 3501 section grammar', () => {
  assert.deepEqual(parseSection(''), { part: [], text: 'ALL', fields: [] });
  assert.deepEqual(parseSection('HEADER'), { part: [], text: 'HEADER', fields: [] });
  assert.deepEqual(parseSection('text'), { part: [], text: 'TEXT', fields: [] });
  assert.deepEqual(parseSection('1'), { part: [1], text: 'ALL', fields: [] });
  assert.deepEqual(parseSection('1.2.3'), { part: [1, 2, 3], text: 'ALL', fields: [] });
  assert.deepEqual(parseSection('1.2.MIME'), { part: [1, 2], text: 'MIME', fields: [] });
  assert.deepEqual(parseSection('4.HEADER'), { part: [4], text: 'HEADER', fields: [] });
  assert.deepEqual(parseSection('HEADER.FIELDS (From To)'), { part: [], text: 'HEADER.FIELDS', fields: ['From', 'To'] });
  assert.deepEqual(parseSection('2.header.fields.not (X-A "Received")'), { part: [2], text: 'HEADER.FIELDS.NOT', fields: ['X-A', 'Received'] });
  assert.deepEqual(parseSection('4294967295'), { part: [4294967295], text: 'ALL', fields: [] });
});

test('parseSection refuses everything else', () => {
  for (const bad of [
    'MIME', '0', '1.0', '01', '1.', '.1', '1..2', 'HEADER.', 'HEADERS', '1.BOGUS', 'HEADER.FIELDS', 'HEADER.FIELDS ()',
    'HEADER.FIELDS (From  To)', 'HEADER.FIELDS (Fr:om)', 'HEADER.FIELDS (From', 'HEADER (From)', 'TEXT (From)', '1 ', ' 1',
    '4294967296', 'HEADER.FIELDS ("unterminated)', '1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28.29.30.31.32.33.34.35.36.37.38.39.40.41.42.43.44.45.46.47.48.49.50.51.52.53.54.55.56.57.58.59.60.61.62.63.64.65',
  ]) assert.equal(parseSection(bad), null, `"${bad}" is refused`);
});

test('every section kind equals what Dovecot returns for the same message', async () => {
  const data = await computeImapData(Readable.from([MSG]));
  // Pinned from Dovecot 2.3 (PREAUTH imap over a throwaway Maildir holding MSG), BODY.PEEK[...] of each.
  const expected: Array<[string, string, { start: number; length: number }?]> = [
    ['1', 'part one'],
    ['1.MIME', '\r\n'],
    ['2', '<b>x</b>\r\n'],
    ['3', 'From: inner@x.y\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--YY--\r\n'],
    ['3.MIME', 'Content-Type: message/rfc822\r\n\r\n'],
    ['3.HEADER', 'From: inner@x.y\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n'],
    ['3.TEXT', '--YY\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--YY--\r\n'],
    ['3.1', 'aGVsbG8='],
    ['3.1.MIME', 'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n'],
    ['3.1.1', 'aGVsbG8='],
    ['3.1.1.MIME', 'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n'],
    ['1.1', 'part one'],
    ['3.2', ''],
    ['4', ''],
    ['1.HEADER', ''],
    ['HEADER.FIELDS (From Subject)', 'From: a@b.c\r\nSubject: mp\r\n\r\n'],
    ['HEADER.FIELDS (NoSuch)', '\r\n'],
    ['3.HEADER.FIELDS.NOT (Subject)', 'From: inner@x.y\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n'],
    ['', ' a@b.c\r\nSu', { start: 5, length: 10 }],
    ['TEXT', '', { start: 390, length: 20 }],
  ];
  for (const [section, want, partial] of expected) assert.equal(await get(data, MSG, section, partial), want, `BODY[${section}]`);
  assert.equal(await get(data, MSG, ''), MSG.toString('latin1'));
  assert.equal(await get(data, MSG, 'HEADER'), MSG.subarray(0, data.headerSize).toString('latin1'));
  assert.equal(await get(data, MSG, 'TEXT'), MSG.subarray(data.headerSize).toString('latin1'));
});

test('partial windows are byte exact at every start and length, including past the end', async () => {
  const data = await computeImapData(Readable.from([MSG]));
  const whole = MSG.toString('latin1');
  for (const start of [0, 1, 10, 57, MSG.length - 1, MSG.length, MSG.length + 10]) {
    for (const length of [0, 1, 3, 100, 100000]) {
      assert.equal(await get(data, MSG, '', { start, length }), whole.slice(start, start + length), `<${start}.${length}>`);
    }
  }
  const h = 'From: a@b.c\r\nSubject: mp\r\n\r\n';
  assert.equal(await get(data, MSG, 'HEADER.FIELDS (SUBJECT FROM)', { start: 6, length: 10 }), h.slice(6, 16));
  const text3 = await get(data, MSG, '3.TEXT');
  assert.equal(await get(data, MSG, '3.TEXT', { start: 100, length: 50 }), text3.slice(100));
  assert.equal(text3.length, 107);
});

test('header fields match case-insensitively and keep folded continuation lines in original order', async () => {
  const raw = Buffer.from('Received: one\r\nSUBJECT: folded\r\n  continued\r\nX-a: 1\r\nsubject: second\r\nFrom:  x@y\r\n\r\nbody');
  const data = await computeImapData(Readable.from([raw]));
  assert.equal(await get(data, raw, 'HEADER.FIELDS (subject FROM)'), 'SUBJECT: folded\r\n  continued\r\nsubject: second\r\nFrom:  x@y\r\n\r\n');
  assert.equal(await get(data, raw, 'HEADER.FIELDS.NOT (Subject from)'), 'Received: one\r\nX-a: 1\r\n\r\n');
});

test('bare-LF messages are served with CRLF (as Dovecot); a header ending without a blank line still gets one', async () => {
  const raw = Buffer.from('From: a@b.c\nSubject: lf\n\nline one\nline two\n');
  const data = await computeImapData(Readable.from([raw]));
  assert.equal(data.size, raw.length + 5);
  assert.equal(data.headerSize, 28);
  assert.equal(await get(data, raw, ''), 'From: a@b.c\r\nSubject: lf\r\n\r\nline one\r\nline two\r\n');
  assert.equal(await get(data, raw, 'HEADER'), 'From: a@b.c\r\nSubject: lf\r\n\r\n');
  assert.equal(await get(data, raw, 'TEXT'), 'line one\r\nline two\r\n');
  assert.equal(await get(data, raw, '1'), 'line one\r\nline two\r\n');
  assert.equal(await get(data, raw, 'HEADER.FIELDS (Subject)'), 'Subject: lf\r\n\r\n');
  // Partial offsets count view bytes: <8.6> of the text starts after the first CRLF.
  assert.equal(await get(data, raw, 'TEXT', { start: 8, length: 6 }), '\r\nline');
  const cut = Buffer.from('From: a@b.c\r\nSubject: no end');
  const cutData = await computeImapData(Readable.from([cut]));
  assert.equal(await get(cutData, cut, 'HEADER.FIELDS (Subject)'), 'Subject: no end\r\n\r\n');
});

test('a blob shorter than its part index fails the stream rather than shortening the literal', async () => {
  const data = await computeImapData(Readable.from([MSG]));
  const spec = parseSection('TEXT');
  assert.ok(spec);
  const { size, stream } = await sectionOf(data, spec, async () => Readable.from([MSG.subarray(0, 100)]));
  assert.equal(size, MSG.length - data.headerSize);
  await assert.rejects(async () => { for await (const _ of stream) { /* drain */ } }, /shorter/);
});

test('sectionOf on data whose part index is invalid answers an empty section', async () => {
  const data = await computeImapData(Readable.from([MSG]));
  const spec = parseSection('1');
  assert.ok(spec);
  const { size } = await sectionOf({ ...data, parts: { nonsense: true } }, spec, async () => Readable.from([MSG]));
  assert.equal(size, 0);
});

test('the section stream reads lazily with backpressure and stops reading once the window is served', async () => {
  const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(8 * 1024 * 1024, 0x61)]);
  const data = await computeImapData(Readable.from(pieces(big, 65536)));
  let pulled = 0;
  const open = async (): Promise<Readable> => Readable.from((function* () {
    for (const p of pieces(big, 65536)) { pulled += p.length; yield p; }
  })());
  const spec = parseSection('TEXT');
  assert.ok(spec);
  const { stream } = await sectionOf(data, spec, open, { start: 0, length: 1000 });
  let got = 0;
  for await (const c of stream) got += (c as Buffer).length;
  assert.equal(got, 1000);
  assert.ok(pulled < 1024 * 1024, `read ${pulled} bytes of the blob for a 1000-byte window`);
});

test('part numbering of single-part messages and of encapsulated single-part messages follows Dovecot', async () => {
  // Pinned from Dovecot 2.3 for exactly these two messages (BODY.PEEK[...] of each section).
  const single = Buffer.from('Subject: single\r\nContent-Type: text/plain\r\n\r\nbody\r\n');
  const s = await computeImapData(Readable.from([single]));
  for (const [section, want] of [['1', 'body\r\n'], ['1.MIME', 'Subject: single\r\nContent-Type: text/plain\r\n\r\n'], ['1.1', ''], ['2', ''], ['2.1', ''], ['1.TEXT', '']]) {
    assert.equal(await get(s, single, section as string), want, `BODY[${section}] of a single-part message`);
  }
  const nested = Buffer.from('Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\none\r\n--q\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner body\r\n--q--\r\n');
  const n = await computeImapData(Readable.from([nested]));
  for (const [section, want] of [['1', 'one'], ['1.MIME', '\r\n'], ['1.1', 'one'], ['2.1', 'inner body'], ['2.1.1', ''], ['2.1.MIME', 'Subject: in\r\n\r\n'], ['2.2', '']]) {
    assert.equal(await get(n, nested, section as string), want, `BODY[${section}] with an encapsulated single-part message`);
  }
});
