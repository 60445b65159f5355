// How SEARCH decodes text (plugins/imap/message/search-decode.ts), as Dovecot 2.3 does: RFC 2047 words
// wherever they stand, 8-bit header bytes as UTF-8, charsets through iconv-lite (UTF-7 included, in any
// chunking) and the WHATWG decoders with UTF-8 for unknown names, header lines as Dovecot's parser
// reports them, and the transfer encodings it recognises. Cases checked against Dovecot are the class
// probes of test/interop/search-parity.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { charsetDecoder, compressLwsp, decodeCharset, decodeHeaderValue, headerSearchText, searchHeaderLines, transferEncodingOf } from '../../../../plugins/imap/message/search-decode.ts';

const bin = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

test('header values: encoded words anywhere, whitespace between them dropped, other 8-bit bytes read as UTF-8', () => {
  assert.equal(decodeHeaderValue('=?iso-8859-1?q?caf=E9?= =?utf-8?b?w7xiZXI=?= mid=?utf-8?q?=C3=A9?=word'), 'caféüber midéword');
  assert.equal(decodeHeaderValue('=?utf-7?Q?caf+AOk-_utf7?='), 'café utf7', 'UTF-7 words');
  assert.equal(decodeHeaderValue('=?bogus?q?abc?= x'), 'abc x', 'an unknown charset: the bytes as UTF-8');
  assert.equal(decodeHeaderValue('caf\xe9 ' + bin('über')), 'caf\ufffd über', 'latin1 bytes are no UTF-8');
  assert.equal(decodeHeaderValue('Re: =? hello'), 'Re: =? hello', 'no encoded word');
  assert.equal(decodeHeaderValue('=?utf-8?q?a?=  =?x'), 'a=?x', 'whitespace before a broken word is dropped, as Dovecot does');
  assert.equal(decodeHeaderValue('=?utf-8?q?a_b=3Dc=?='), 'a b=c=', 'an "=" among the last two characters stays');
  assert.equal(decodeHeaderValue('=?utf-8?b?w7xi!ZXI=?='), 'üb', 'base64 up to the first character outside the alphabet');
  assert.equal(decodeHeaderValue('=?utf-8?x?abc?= plain'), '=?utf-8?x?abc?= plain', 'an unknown encoding is text');
});

test('charsets: UTF-7 in any chunking, us-ascii and unknown names as UTF-8, iso-8859-1 as latin1 (not windows-1252), Korean and Japanese', () => {
  const chunked = (bytes: Buffer, charset: string, n: number): string => {
    const d = charsetDecoder(charset);
    let out = '';
    for (let i = 0; i < bytes.length; i += n) out += d.write(bytes.subarray(i, i + n));
    return out + d.end();
  };
  const utf7 = Buffer.from('Hi Mom -+Jjo--! r+AOk-sum+AOk-\r\nnext +AOk-\r\n');
  for (const n of [1, 2, 3, 5, 7, 1000]) assert.equal(chunked(utf7, 'UTF-7', n), 'Hi Mom -☺-! résumé\r\nnext é\r\n', `chunks of ${n}`);
  assert.equal(decodeCharset(Buffer.from('r+AOk-sum+AOk-'), 'unicode-1-1-utf-7'), 'résumé');
  assert.equal(decodeCharset(Buffer.from('caf\xe9 \xc3\xa9t\xc3\xa9', 'latin1'), 'us-ascii'), 'caf\ufffd été');
  assert.equal(decodeCharset(Buffer.from('na\xefve \xc3\xbcber', 'latin1'), 'x-unknown'), 'na\ufffdve über');
  assert.equal(decodeCharset(Buffer.from('\x93q\x94 r\xe9gime', 'latin1'), 'iso-8859-1'), '\u0093q\u0094 régime');
  assert.equal(decodeCharset(Buffer.from('\xc7\xd1\xb1\xb9\xbe\xee', 'latin1'), 'ks_c_5601-1987'), '한국어');
  assert.equal(decodeCharset(Buffer.from('\x1b$BF|K\\8l\x1b(B', 'latin1'), 'ISO-2022-JP'), '日本語');
  assert.equal(decodeCharset(Buffer.from('aGk='), 'base64'), 'aGk=', 'a codec that is no charset: UTF-8');
});

test('header lines as Dovecot reports them: folds joined (a tab read as a space), lines without a colon kept, the middle kept', () => {
  const lines = searchHeaderLines(Buffer.from('Subject:  two\r\n\tfold\r\n more\r\nno colon here\r\nX-A :b\r\n\r\nBody: no\r\n', 'latin1'));
  assert.deepEqual(lines, [
    { name: 'Subject', middle: ': ', value: ' two fold more' },
    { name: '', middle: '', value: 'no colon here' },
    { name: 'X-A', middle: ' :', value: 'b' },
  ]);
  assert.equal(headerSearchText(Buffer.from('Subject: =?utf-8?q?caf=C3=A9?=\r\nlost line\r\n\r\n')), 'Subject: café\nlost line');
  assert.equal(compressLwsp('  two  spaces\tand \t x '), 'two spaces and x ');
});

test('transfer encodings Dovecot recognises; anything else is no text', () => {
  const cases: Array<[string | null, string | null]> = [
    [null, 'identity'], ['7bit', 'identity'], ['8BIT', 'identity'], ['binary', 'identity'], [' Base64 (comment)', 'base64'], ['quoted-printable', 'quoted-printable'],
    ['7bit; x=1', 'identity'], ['8-bit', null], ['quoted/printable', null], ['x-uuencode', null], ['base64 binary', null], ['', null],
  ];
  for (const [value, want] of cases) assert.equal(transferEncodingOf(value), want, String(value));
});
