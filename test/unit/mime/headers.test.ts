import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import libmime from 'libmime';
import {
  parseHeaderBlock,
  headerValues,
  summarize,
  extractAddresses,
  parseDate,
  type HeaderBlock,
} from '../../../core/mime/headers.ts';

const MiB = 1024 * 1024;

function parse(text: string, maxBytes?: number): HeaderBlock {
  const raw = Buffer.from(text, 'utf8');
  return maxBytes === undefined ? parseHeaderBlock(raw) : parseHeaderBlock(raw, maxBytes);
}

test('parses a CRLF header block with names in original case and body offset', () => {
  const text = 'From: a@example.com\r\nTO: b@example.com\r\nSubject: Hi\r\n\r\nbody\r\n';
  const block = parse(text);
  assert.deepEqual(block, {
    fields: [
      { name: 'From', value: 'a@example.com' },
      { name: 'TO', value: 'b@example.com' },
      { name: 'Subject', value: 'Hi' },
    ],
    headerBytes: text.indexOf('body'),
    complete: true,
  });
});

test('unfolds folded headers (CRLF + SP / HT) and removes only one leading space', () => {
  const block = parse(
    'Subject: one\r\n two\r\n\tthree  \r\n' +
      'X-Empty-First:\r\n   continued\r\n' +
      'X-Spaces:   three spaces\r\n' +
      'X-Tab:\tafter tab\r\n' +
      'X-None:no-space\r\n\r\n',
  );
  assert.deepEqual(block.fields, [
    { name: 'Subject', value: 'one two\tthree' },
    { name: 'X-Empty-First', value: '  continued' },
    { name: 'X-Spaces', value: '  three spaces' },
    { name: 'X-Tab', value: 'after tab' },
    { name: 'X-None', value: 'no-space' },
  ]);
  assert.equal(block.complete, true);
});

test('handles bare LF line endings and a \\n\\n blank line', () => {
  const text = 'From: a@x.org\nSubject: folded\n  line\n\nbody';
  const block = parse(text);
  assert.deepEqual(block.fields, [
    { name: 'From', value: 'a@x.org' },
    { name: 'Subject', value: 'folded  line' },
  ]);
  assert.equal(block.headerBytes, text.length - 4);
  assert.equal(block.complete, true);
});

test('handles mixed line endings and mixed blank lines', () => {
  const a = 'A: 1\r\nB: 2\n\nbody';
  assert.deepEqual(parse(a), {
    fields: [
      { name: 'A', value: '1' },
      { name: 'B', value: '2' },
    ],
    headerBytes: 12, // 'A: 1\r\n' (6) + 'B: 2\n' (5) + '\n' (1)
    complete: true,
  });
  const b = 'A: 1\n\r\nbody';
  assert.deepEqual(parse(b), { fields: [{ name: 'A', value: '1' }], headerBytes: 7, complete: true });
  const c = 'A: 1\r\n\nbody';
  assert.deepEqual(parse(c), { fields: [{ name: 'A', value: '1' }], headerBytes: 7, complete: true });
});

test('a header block without a blank line is incomplete and keeps the last unterminated field', () => {
  const text = 'From: a@x.org\r\nSubject: no body';
  assert.deepEqual(parse(text), {
    fields: [
      { name: 'From', value: 'a@x.org' },
      { name: 'Subject', value: 'no body' },
    ],
    headerBytes: text.length,
    complete: false,
  });
});

test('empty input and input starting with the blank line', () => {
  assert.deepEqual(parseHeaderBlock(Buffer.alloc(0)), { fields: [], headerBytes: 0, complete: false });
  assert.deepEqual(parse('\r\nbody'), { fields: [], headerBytes: 2, complete: true });
  assert.deepEqual(parse('\nbody'), { fields: [], headerBytes: 1, complete: true });
});

test('skips lines without a colon, invalid names, and leading / orphaned continuation lines', () => {
  const block = parse(
    '  leading continuation before any field\r\n' +
      'From sender@example.com Mon Jan  1 10:00:00 2024\r\n' +
      'no colon here\r\n' +
      ' continuation of a skipped line\r\n' +
      ': empty name\r\n' +
      'Bad Name: has a space\r\n' +
      'Subject : obsolete space before colon\r\n' +
      'X-Ok: yes\r\n' +
      ' more\r\n\r\n',
  );
  assert.deepEqual(block.fields, [
    { name: 'Subject', value: 'obsolete space before colon' },
    { name: 'X-Ok', value: 'yes more' },
  ]);
});

test('bare CR inside a line is kept in the raw value and blanked in the summary', () => {
  const block = parse('Subject: a\rb\r\r\nX-Other: c\r\n\r\n');
  assert.deepEqual(block.fields, [
    { name: 'Subject', value: 'a\rb' },
    { name: 'X-Other', value: 'c' },
  ]);
  assert.equal(summarize(block).subject, 'a b');
});

test('NUL bytes: kept in raw values, replaced in summaries, invalidate field names', () => {
  const raw = Buffer.concat([
    Buffer.from('Subject: a'),
    Buffer.from([0]),
    Buffer.from('b\r\nX-Na'),
    Buffer.from([0]),
    Buffer.from('me: dropped\r\nTo: c@d.e\r\n\r\n'),
  ]);
  const block = parseHeaderBlock(raw);
  assert.deepEqual(block.fields, [
    { name: 'Subject', value: 'a\u0000b' },
    { name: 'To', value: 'c@d.e' },
  ]);
  assert.equal(summarize(block).subject, 'a b');
});

test('8-bit latin1 header bytes are decoded as latin1', () => {
  const raw = Buffer.from('Subject: Caf\u00e9 cr\u00e8me\r\nFrom: Ren\u00e9 <r@x.fr>\r\n\r\n', 'latin1');
  const block = parseHeaderBlock(raw);
  assert.deepEqual(block.fields, [
    { name: 'Subject', value: 'Café crème' },
    { name: 'From', value: 'René <r@x.fr>' },
  ]);
  assert.equal(block.headerBytes, raw.length);
});

test('8-bit UTF-8 header bytes are decoded as UTF-8', () => {
  const block = parse('Subject: Grüße 日本 🎉\r\n\r\n');
  assert.deepEqual(block.fields, [{ name: 'Subject', value: 'Grüße 日本 🎉' }]);
  assert.equal(summarize(block).subject, 'Grüße 日本 🎉');
});

test('a block mixing valid UTF-8 and invalid bytes is decoded entirely as latin1', () => {
  const raw = Buffer.concat([
    Buffer.from('Subject: Grüße\r\n', 'utf8'),
    Buffer.from('X-Latin: \u00e9\r\n\r\n', 'latin1'),
  ]);
  assert.deepEqual(parseHeaderBlock(raw).fields, [
    { name: 'Subject', value: 'Gr\u00c3\u00bc\u00c3\u009fe' },
    { name: 'X-Latin', value: '\u00e9' },
  ]);
});

test('a 2 MiB header block is only scanned up to maxBytes', () => {
  const line = 'X-Pad: ' + 'a'.repeat(1015) + '\r\n'; // 1024 bytes
  assert.equal(line.length, 1024);
  const twoMiB = Buffer.from(line.repeat(2048));
  assert.equal(twoMiB.length, 2 * MiB);

  const withDefault = parseHeaderBlock(twoMiB);
  assert.equal(withDefault.complete, false);
  assert.equal(withDefault.headerBytes, MiB);
  assert.equal(withDefault.fields.length, 1024);

  // a limit in the middle of a line drops that partial line
  const mid = parseHeaderBlock(twoMiB, MiB + 500);
  assert.equal(mid.complete, false);
  assert.equal(mid.headerBytes, MiB + 500);
  assert.equal(mid.fields.length, 1024);
  assert.ok(mid.fields.every((f) => f.name === 'X-Pad' && f.value === 'a'.repeat(1015)));

  // the blank line lies beyond the limit: not found
  const withBody = Buffer.concat([twoMiB, Buffer.from('\r\nbody')]);
  const limited = parseHeaderBlock(withBody, MiB);
  assert.equal(limited.complete, false);
  assert.equal(limited.fields.length, 1024);

  // with a large enough limit the whole block is read
  const full = parseHeaderBlock(withBody, 3 * MiB);
  assert.equal(full.complete, true);
  assert.equal(full.headerBytes, 2 * MiB + 2);
  assert.equal(full.fields.length, 2048);

  // one single 2 MiB line: nothing whole within the limit
  const oneLine = Buffer.from('X-Long: ' + 'b'.repeat(2 * MiB));
  assert.deepEqual(parseHeaderBlock(oneLine, MiB), { fields: [], headerBytes: MiB, complete: false });
});

test('maxBytes boundary: the blank line must end within the limit', () => {
  const text = 'A: 1\r\n\r\nbody';
  assert.deepEqual(parse(text, 8), { fields: [{ name: 'A', value: '1' }], headerBytes: 8, complete: true });
  assert.deepEqual(parse(text, 7), { fields: [{ name: 'A', value: '1' }], headerBytes: 7, complete: false });
  assert.deepEqual(parse(text, 0), { fields: [], headerBytes: 0, complete: false });
});

test('keeps at most 10,000 fields', () => {
  let text = '';
  for (let i = 0; i < 10_050; i++) text += `X-${i}: v${i}\r\n`;
  const block = parse(text + '\r\n');
  assert.equal(block.fields.length, 10_000);
  assert.deepEqual(block.fields[9_999], { name: 'X-9999', value: 'v9999' });
  assert.equal(block.complete, true);
});

test('headerValues is case-insensitive and keeps order', () => {
  const block = parse('Received: one\r\nX: a\r\nRECEIVED: two\r\nreceived: three\r\n\r\n');
  assert.deepEqual(headerValues(block, 'Received'), ['one', 'two', 'three']);
  assert.deepEqual(headerValues(block, 'x'), ['a']);
  assert.deepEqual(headerValues(block, 'missing'), []);
});

test('summarize decodes B and Q encoded-words in from/to/cc/subject', () => {
  const block = parse(
    'From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <jorg@example.de>\r\n' +
      'To: =?iso-8859-1?Q?Ren=E9_Dupont?= <rene@example.fr>\r\n' +
      'Cc: =?utf-8?q?caf=C3=A9?= <c@x.org>\r\n' +
      'Subject: =?UTF-8?B?SGVsbG8g?=\r\n =?UTF-8?B?V8O2cmxk?= and =?iso-8859-1?Q?=A1Hola!?=\r\n' +
      'Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n' +
      'Message-ID: <id-1@example.com>\r\n\r\n',
  );
  assert.deepEqual(summarize(block), {
    date: '2024-01-01T10:00:00.000Z',
    from: 'Jörg Müller <jorg@example.de>',
    to: 'René Dupont <rene@example.fr>',
    cc: 'café <c@x.org>',
    subject: 'Hello Wörld and ¡Hola!',
    messageId: 'id-1@example.com',
  });
});

test('summarize joins repeated To/Cc and takes the first From/Subject; missing fields are empty', () => {
  const block = parse('To: a@x\r\nSubject: first\r\nTo: b@y\r\nSubject: second\r\nCc: c@z\r\nCc: d@w\r\n\r\n');
  assert.deepEqual(summarize(block), {
    date: null,
    from: '',
    to: 'a@x, b@y',
    cc: 'c@z, d@w',
    subject: 'first',
    messageId: null,
  });
  assert.deepEqual(summarize(parseHeaderBlock(Buffer.alloc(0))), {
    date: null,
    from: '',
    to: '',
    cc: '',
    subject: '',
    messageId: null,
  });
});

test('malformed encoded-words are left as written', () => {
  const block = parse(
    'Subject: =?UTF-8?Q?unterminated\r\n' +
      'From: =?UTF-8?X?bad-encoding?= <a@b.c>\r\n' +
      'To: =??Q?no-charset?=\r\n\r\n',
  );
  const s = summarize(block);
  assert.equal(s.subject, '=?UTF-8?Q?unterminated');
  assert.equal(s.from, '=?UTF-8?X?bad-encoding?= <a@b.c>');
  assert.equal(s.to, '=??Q?no-charset?=');
});

test('when libmime throws, the raw value is kept', (t) => {
  t.mock.method(libmime, 'decodeWords', () => {
    throw new Error('boom');
  });
  const block = parse('Subject: =?UTF-8?B?SGVsbG8=?=\x01x\r\n\r\n');
  assert.equal(summarize(block).subject, '=?UTF-8?B?SGVsbG8=?= x');
});

test('summaries replace control characters except tab and cap at 998 characters', () => {
  const block = parse(`Subject: a\tb\x01c\x7fd\u0085e\x1bf\r\nFrom: ${'x'.repeat(997)}🎉🎉\r\nTo: ${'y'.repeat(5000)}\r\n\r\n`);
  const s = summarize(block);
  assert.equal(s.subject, 'a\tb c d e f');
  // the cap counts code points and never splits a surrogate pair
  assert.equal(s.from, 'x'.repeat(997) + '🎉');
  assert.equal(s.to, 'y'.repeat(998));
  // encoded control characters are blanked after decoding
  const encoded = parse('Subject: =?UTF-8?Q?a=0D=0Ab=00c?=\r\n\r\n');
  assert.equal(summarize(encoded).subject, 'a  b c');
});

test('Message-ID extraction', () => {
  const id = (v: string): string | null => summarize(parse(`Message-ID: ${v}\r\n\r\n`)).messageId;
  assert.equal(id('<abc.123@example.com>'), 'abc.123@example.com');
  assert.equal(id('(comment) <first@x> <second@y>'), 'first@x');
  assert.equal(id('  bare-id@example.com  '), 'bare-id@example.com');
  assert.equal(id('not an id'), null);
  assert.equal(id('<>'), null);
  assert.equal(id(''), null);
  assert.equal(summarize(parse('message-id:<lower@x>\r\n\r\n')).messageId, 'lower@x');
});

test('dates in current, obsolete and common forms', () => {
  const cases: Array<[string, string | null]> = [
    ['Mon, 01 Jan 2024 10:00:00 +0000', '2024-01-01T10:00:00.000Z'],
    ['Mon, 1 Jan 2024 10:00:00 +0000 (UTC)', '2024-01-01T10:00:00.000Z'],
    ['1 Jan 2024 10:00:00 -0500', '2024-01-01T15:00:00.000Z'],
    ['Thu, 13 Feb 1969 23:32:54 -0330', '1969-02-14T03:02:54.000Z'],
    ['Fri, 21 Nov 1997 09:55:06 -0600', '1997-11-21T15:55:06.000Z'],
    ['Tue, 1 Jul 2003 10:52:37 +0200', '2003-07-01T08:52:37.000Z'],
    ['1 Jan 24 10:00 GMT', '2024-01-01T10:00:00.000Z'],
    ['Sun, 1 Jan 99 10:00:00 UT', '1999-01-01T10:00:00.000Z'],
    ['1 Jan 103 10:00:00 +0000', '2003-01-01T10:00:00.000Z'],
    ['Wed, 2 Jul 2008 13:00:00 EST', '2008-07-02T18:00:00.000Z'],
    ['Wed, 2 Jul 2008 13:00:00 EDT', '2008-07-02T17:00:00.000Z'],
    ['2 Jul 2008 13:00 CST', '2008-07-02T19:00:00.000Z'],
    ['2 Jul 2008 13:00 CDT', '2008-07-02T18:00:00.000Z'],
    ['2 Jul 2008 13:00 MST', '2008-07-02T20:00:00.000Z'],
    ['2 Jul 2008 13:00 MDT', '2008-07-02T19:00:00.000Z'],
    ['2 Jul 2008 13:00 PST', '2008-07-02T21:00:00.000Z'],
    ['2 Jul 2008 13:00 PDT', '2008-07-02T20:00:00.000Z'],
    ['2 Jul 2008 13:00:00 A', '2008-07-02T13:00:00.000Z'],
    ['2 Jul 2008 13:00:00 Z', '2008-07-02T13:00:00.000Z'],
    ['Wed , 2 Jul 2008 13:00:00 (comment (nested)) +0100 (CET)', '2008-07-02T12:00:00.000Z'],
    ['Wed 2 Jul 2008 13:00:00 +0100', '2008-07-02T12:00:00.000Z'],
    ['Tue Jan  2 03:04:05 2024', '2024-01-02T03:04:05.000Z'],
    ['02-Jan-2024 03:04:05 +0000', '2024-01-02T03:04:05.000Z'],
    ['31 Dec 2016 23:59:60 +0000', '2016-12-31T23:59:59.000Z'],
    ['2024-03-01T12:00:00+02:00', '2024-03-01T10:00:00.000Z'],
    ['29 Feb 2024 00:00:00 +0000', '2024-02-29T00:00:00.000Z'],
    ['29 Feb 2023 00:00:00 +0000', null],
    ['31 Apr 2024 10:00 +0000', null],
    ['1 Jan 2024 25:00 +0000', null],
    ['1 Jan 2024', null],
    ['Mon, 1 Foo 2024 10:00 +0000', null],
    ['not a date', null],
    ['', null],
  ];
  for (const [input, expected] of cases) {
    assert.equal(parseDate(input), expected, input);
  }
  assert.equal(summarize(parse('Date: garbage\r\n\r\n')).date, null);
  assert.equal(
    summarize(parse('Date: Fri, 21 Nov 1997\r\n 09:55:06 -0600\r\n\r\n')).date,
    '1997-11-21T15:55:06.000Z',
  );
});

test('extractAddresses: display names, comments, angle brackets, lowercase domain', () => {
  assert.deepEqual(extractAddresses('"Doe, John" <John.Doe@Example.COM>'), ['John.Doe@example.com']);
  assert.deepEqual(extractAddresses('John (the man) <j@X.org> (trailing comment)'), ['j@x.org']);
  assert.deepEqual(extractAddresses('j@X.org (John Doe), k(c)@(c)Y.net'), ['j@x.org', 'k@y.net']);
  assert.deepEqual(extractAddresses('John Smith john@x.com'), ['john@x.com']);
  assert.deepEqual(extractAddresses('j . d @ x . com'), ['j.d@x.com']);
  assert.deepEqual(extractAddresses('Jörg <Jörg@Bücher.DE>'), ['Jörg@bücher.de']);
});

test('extractAddresses: group syntax', () => {
  assert.deepEqual(extractAddresses('Team: a@X.com, "B c" <b@y.com>;, solo@z.org'), ['a@x.com', 'b@y.com', 'solo@z.org']);
  assert.deepEqual(extractAddresses('undisclosed-recipients:;'), []);
  assert.deepEqual(extractAddresses('grp: a@x, b@y;'), ['a@x', 'b@y']);
  assert.deepEqual(extractAddresses('grp:a@x,b@y;'), ['a@x', 'b@y']);
  assert.deepEqual(extractAddresses('@relay.example:u@H.example'), ['u@h.example']);
});

test('extractAddresses: SMTP paths, quoted local parts and domain literals', () => {
  assert.deepEqual(extractAddresses('<User@Host.Example>'), ['User@host.example']);
  assert.deepEqual(extractAddresses('<@relay.example,@r2.example:User@Host.Example>'), ['User@host.example']);
  assert.deepEqual(extractAddresses('<a@b.com> SIZE=1000 BODY=8BITMIME'), ['a@b.com']);
  assert.deepEqual(extractAddresses('<>'), []);
  assert.deepEqual(extractAddresses('"john.doe"@x.com, "a b"@X.com, "q\\"t"@x, u@[192.0.2.1]'), [
    'john.doe@x.com',
    '"a b"@x.com',
    '"q\\"t"@x',
    'u@[192.0.2.1]',
  ]);
});

test('extractAddresses: ignores invalid tokens and returns unique addresses in order', () => {
  assert.deepEqual(extractAddresses('bad, @x.com, y@, x@@y, a..b@c, a@b..c, .a@b, ok@ok.org'), ['ok@ok.org']);
  assert.deepEqual(extractAddresses('a@x.com, A@x.com, a@X.COM, <a@x.com>'), ['a@x.com', 'A@x.com']);
  assert.deepEqual(extractAddresses('a\u0000b@x.com, c@d.e'), ['c@d.e']);
  assert.deepEqual(extractAddresses(''), []);
  assert.deepEqual(extractAddresses('"unterminated@x.com'), []);
  assert.deepEqual(extractAddresses('<unterminated@X.com'), ['unterminated@x.com']);
  assert.deepEqual(extractAddresses('(unterminated comment a@b.c'), []);
});

test('never throws on random bytes or odd arguments', () => {
  let seed = 0x2f6e2b1;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const alphabet = Buffer.from('\r\n\t :;,<>()"\\@.[]=?aZ0\u0000', 'latin1');
  for (let i = 0; i < 400; i++) {
    const len = next() % 300;
    const bytes = Buffer.alloc(len);
    for (let j = 0; j < len; j++) {
      const r = next();
      bytes[j] = r % 3 === 0 ? r % 256 : (alphabet[r % alphabet.length] ?? 0);
    }
    const block = parseHeaderBlock(bytes, next() % 400);
    assert.ok(block.headerBytes >= 0 && block.headerBytes <= len);
    const s = summarize(block);
    assert.equal(typeof s.subject, 'string');
    assert.ok(Array.isArray(extractAddresses(bytes.toString('latin1'))));
    parseDate(bytes.toString('latin1'));
  }
  const loose = parseHeaderBlock as unknown as (raw: unknown, max?: unknown) => HeaderBlock;
  assert.deepEqual(loose(undefined), { fields: [], headerBytes: 0, complete: false });
  assert.deepEqual(loose(new Uint8Array(Buffer.from('A: 1\n\n'))), {
    fields: [{ name: 'A', value: '1' }],
    headerBytes: 6,
    complete: true,
  });
  assert.deepEqual(loose(Buffer.from('A: 1\n\n'), Number.NaN).complete, true);
  assert.deepEqual(loose(Buffer.from('A: 1\n\n'), -5), { fields: [], headerBytes: 0, complete: false });
  assert.deepEqual(summarize({} as HeaderBlock), { date: null, from: '', to: '', cc: '', subject: '', messageId: null });
  assert.deepEqual((extractAddresses as unknown as (v: unknown) => string[])(null), []);
});

test('long whitespace runs are parsed exactly', () => {
  const spaces = ' '.repeat(500_000);
  const block = parse(`Subject:${spaces}x${spaces}\r\nX${spaces}: y\r\n\r\n`);
  assert.equal(block.fields.length, 1);
  assert.equal(block.fields[0]?.value, `${' '.repeat(499_999)}x`);
  assert.deepEqual(extractAddresses(`${spaces}a@b.c${spaces}`), ['a@b.c']);
});
