// SEARCH evaluation: headerMatches on RFC 2047-decoded values, textMatches on bodies with their transfer
// encodings and charsets decoded, across chunk boundaries, inside message/rfc822 parts, skipping
// non-text attachments; plus the incremental transfer decoders in core/mime/transfer-decoding.ts.
// What BODY and TEXT read is Dovecot 2.3's (each case here was checked against it: the class probes of
// test/interop/search-parity.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { computeImapData, headerMatches, textMatches, type PartIndex } from '../../../../plugins/imap/message/index.ts';
import { transferDecoder } from '../../../../core/mime/transfer-decoding.ts';
import { loadCorpus } from '../../../helpers/corpus.ts';

const pieces = (b: Buffer, n: number): Buffer[] => Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, (i + 1) * n));

async function matches(raw: string | Buffer, where: 'BODY' | 'TEXT', needle: string, chunk = 3): Promise<boolean> {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  const data = await computeImapData(Readable.from([bytes]));
  return textMatches(async () => Readable.from(pieces(bytes, chunk)), data, where, needle);
}

const HEADER = Buffer.from([
  'From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>',
  'To: Alice <alice@example.com>,',
  '  bob@example.org',
  'Subject: =?iso-8859-1?B?R3L832Vu?= aus Berlin',
  'X-Empty:',
  '', '',
].join('\r\n'));

test('headerMatches decodes RFC 2047 words and matches case-insensitively', () => {
  assert.equal(headerMatches(HEADER, 'From', 'jörg müller'), true);
  assert.equal(headerMatches(HEADER, 'from', 'JOERG@EXAMPLE'), true);
  assert.equal(headerMatches(HEADER, 'Subject', 'grüßen aus'), true);
  assert.equal(headerMatches(HEADER, 'subject', 'R3L832Vu'), false, 'only the decoded text matches, as in Dovecot');
  assert.equal(headerMatches(HEADER, 'To', 'bob@example.org'), true, 'folded continuation lines are part of the value');
  assert.equal(headerMatches(HEADER, 'To', 'carol'), false);
  assert.equal(headerMatches(HEADER, 'Cc', 'alice'), false);
});

test('headerMatches with an empty needle tests that the field is present', () => {
  assert.equal(headerMatches(HEADER, 'X-Empty', ''), true);
  assert.equal(headerMatches(HEADER, 'x-empty', ''), true);
  assert.equal(headerMatches(HEADER, 'Cc', ''), false);
});

test('headerMatches survives malformed headers and encoded words', () => {
  const bad = Buffer.from('Subject: =?bogus-charset?Q?abc?= =?utf-8?B?!!!?=\r\nFrom \r\n\x00\xff: x\r\nTo: \xe9l\xe8ve\r\n\r\n', 'latin1');
  assert.equal(headerMatches(bad, 'Subject', 'abc'), true);
  assert.equal(headerMatches(bad, 'To', 'élève'), false, '8-bit header bytes that are no UTF-8 read as U+FFFD, as in Dovecot');
  assert.equal(headerMatches(bad, 'To', 'l'), true);
  assert.equal(headerMatches(Buffer.from('To: \xc3\xa9l\xc3\xa8ve\r\n\r\n', 'latin1'), 'To', 'ÉLÈVE'), true, 'raw UTF-8 header bytes');
  assert.equal(headerMatches(Buffer.alloc(0), 'Subject', ''), false);
});

test('BODY matches quoted-printable and base64 text in its charset, case-insensitively', async () => {
  const raw = [
    'Subject: x', 'Content-Type: multipart/mixed; boundary=b', '', '--b',
    'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable', '',
    'Gr=FC=DFe aus K=F6ln, soft =', 'break here', '--b',
    'Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: base64', '',
    Buffer.from('<p>Привет, мир! Ünïcödé</p>').toString('base64'), '--b',
    'Content-Type: text/plain; charset=windows-1251', 'Content-Transfer-Encoding: 8bit', '',
    '\xcf\xf0\xe8\xe2\xe5\xf2 1251', '--b--', '',
  ].join('\r\n');
  assert.equal(await matches(raw, 'BODY', 'grüße AUS köln'), true);
  assert.equal(await matches(raw, 'BODY', 'soft break here'), true, 'a soft line break joins the words');
  assert.equal(await matches(raw, 'BODY', 'привет, МИР'), true);
  assert.equal(await matches(raw, 'BODY', 'ünïcödé'), true);
  assert.equal(await matches(raw, 'BODY', 'Привет 1251'), true);
  assert.equal(await matches(raw, 'BODY', 'R3L832Vu'), false);
  assert.equal(await matches(raw, 'BODY', 'Subject: x'), false, 'BODY does not search the header');
  assert.equal(await matches(raw, 'TEXT', 'subject: X'), true, 'TEXT does');
  assert.equal(await matches(raw, 'BODY', 'PHA+0J'), false, 'the encoded form does not match');
  for (const size of [1, 2, 5, 64]) assert.equal(await matches(raw, 'BODY', 'grüße aus köln', size), true, `chunks of ${size}`);
});

test('BODY searches the text of an attached message/rfc822, not its header nor binary attachments; TEXT reads its header too', async () => {
  const raw = [
    'Subject: outer', 'Content-Type: multipart/mixed; boundary=o', '', '--o', '', 'outer text', '--o',
    'Content-Type: message/rfc822', '', 'Subject: =?utf-8?q?inner_=C3=BCber?=', '', 'inner text', '--o',
    'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '',
    Buffer.from('secret binary words').toString('base64'), '--o--', '',
  ].join('\r\n');
  assert.equal(await matches(raw, 'BODY', 'inner über'), false, 'the attached message header is no body');
  assert.equal(await matches(raw, 'TEXT', 'inner über'), true);
  assert.equal(await matches(raw, 'BODY', 'inner text'), true);
  assert.equal(await matches(raw, 'BODY', 'outer text'), true);
  assert.equal(await matches(raw, 'BODY', 'secret binary'), false);
  assert.equal(await matches(raw, 'TEXT', 'Subject: outer'), true);
  assert.equal(await matches(raw, 'BODY', 'Subject: outer'), false);
});

test('an empty needle matches; text without the needle does not; bare LF and unknown charsets are fine', async () => {
  assert.equal(await matches('Subject: a\n\nplain body\n', 'BODY', ''), true);
  assert.equal(await matches('Subject: a\n\nplain body\n', 'BODY', 'PLAIN BODY'), true);
  assert.equal(await matches('Subject: a\n\nplain body\n', 'BODY', 'absent'), false);
  assert.equal(await matches('Content-Type: text/plain; charset=x-unknown-42\r\n\r\nhello\r\n', 'BODY', 'hello'), true);
  assert.equal(await matches('', 'TEXT', 'x'), false);
});

test('SEARCH BODY over the corpus finds words of decoded base64 text parts', async () => {
  const leaves = (p: PartIndex): PartIndex[] => [...(p.p ?? []).flatMap(leaves), ...(p.m ? leaves(p.m) : []), ...(!p.p && !p.m ? [p] : [])];
  let checked = 0;
  for (const raw of loadCorpus()) {
    if (checked >= 5) break;
    if (!/base64/i.test(raw.toString('latin1'))) continue;
    const data = await computeImapData(Readable.from([raw]));
    const part = leaves(data.parts as PartIndex).find((l) => l.x === 'base64' && l.t === 'text/plain' && l.e - l.b > 200);
    if (!part) continue;
    const decoded = Buffer.from(raw.subarray(part.b, part.e).toString('latin1'), 'base64').toString('latin1');
    const word = /[A-Za-z]{7,}/.exec(decoded)?.[0];
    if (!word) continue;
    assert.ok(!raw.toString('latin1').includes(word), 'the word appears only in encoded form');
    assert.equal(await textMatches(async () => Readable.from(pieces(raw, 512)), data, 'BODY', word.toUpperCase()), true, word);
    checked++;
  }
  assert.ok(checked >= 3, `base64 text parts checked: ${checked}`);
});

test('transfer decoders give the same bytes whatever the chunking', () => {
  const payload = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31) % 256));
  const b64 = Buffer.from(payload.toString('base64').replace(/(.{76})/g, '$1\r\n'));
  const qp = Buffer.from('caf=C3=A9 =\r\nsoft=3D=\nlf-soft and =ZZ not hex, trailing =');
  for (const size of [1, 2, 3, 7, 4096]) {
    const run = (enc: string, input: Buffer): Buffer => {
      const d = transferDecoder(enc);
      return Buffer.concat([...pieces(input, size).map((p) => d.write(p)), d.end()]);
    };
    assert.deepEqual(run('BASE64', b64), payload, `base64 in chunks of ${size}`);
    assert.equal(run('quoted-printable', qp).toString('utf8'), 'café soft=lf-soft and =ZZ not hex, trailing ');
    assert.deepEqual(run('8bit', payload), payload);
  }
  const d = transferDecoder('base64');
  assert.deepEqual(Buffer.concat([d.write(Buffer.from('aGk')), d.end()]), Buffer.from('hi'), 'unpadded base64 at the end');
});

test('collected text (the SEARCH BODY/TEXT cache) answers exactly as the streaming match, over corpus messages', async () => {
  const { collectText, collectedMatches } = await import('../../../../plugins/imap/message/index.ts');
  const needles = ['the', 'unsubscribe', 'e-mail', 'http://', 'subject: re', 'from:', 'ä', 'money\r\nfor', 'zzzzqqq', 'content-type', ' ', 'click here'];
  let compared = 0;
  for (const raw of loadCorpus().slice(0, 150)) {
    const bytes = Buffer.from(raw.toString('latin1').replace(/^From [^\n]*\n/, ''), 'latin1');
    const data = await computeImapData(Readable.from([bytes]));
    for (const where of ['BODY', 'TEXT'] as const) {
      const text = await collectText(async () => Readable.from(pieces(bytes, 4096)), data, where, 10_000_000);
      assert.notEqual(text, null);
      for (const needle of needles) {
        const streamed = await textMatches(async () => Readable.from(pieces(bytes, 4096)), data, where, needle);
        assert.equal(collectedMatches(text as string, needle), streamed, `${where} "${needle}"`);
        compared++;
      }
    }
  }
  assert.ok(compared > 3000);
});

test('collectText gives up (null) past its limit, so a huge message is streamed rather than kept', async () => {
  const { collectText } = await import('../../../../plugins/imap/message/index.ts');
  const bytes = Buffer.from(`Subject: big\r\n\r\n${'x'.repeat(5000)}\r\n`, 'latin1');
  const data = await computeImapData(Readable.from([bytes]));
  assert.equal(await collectText(async () => Readable.from([bytes]), data, 'BODY', 1000), null);
  assert.match((await collectText(async () => Readable.from([bytes]), data, 'BODY', 10_000)) ?? '', /^x{5000}/);
});

test('a body in an unknown or misspelt Content-Transfer-Encoding is not text (RFC 2045 6.4), as in Dovecot', async () => {
  const one = (cte: string, text: string): string => `Subject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n${text}\r\n`;
  for (const cte of ['8-bit', 'quoted/printable', 'x-uuencode', 'base64 binary', '']) {
    assert.equal(await matches(one(cte, 'zebra words'), 'BODY', 'zebra'), false, `"${cte}"`);
    assert.equal(await matches(one(cte, 'zebra words'), 'TEXT', 'zebra'), false, `"${cte}" under TEXT`);
    assert.equal(await matches(one(cte, 'zebra words'), 'TEXT', 'subject: x'), true, 'its header still is');
  }
  assert.equal(await matches(one('7bit; x=1', 'zebra words'), 'BODY', 'zebra'), true, 'parameters after ";" are tolerated');
  assert.equal(await matches(one(' BASE64 (comment)', Buffer.from('zebra words').toString('base64')), 'BODY', 'zebra'), true, 'case, comments and spaces');
});

test('TEXT reads every MIME part header (attachment names, decoded), BODY none; preamble, epilogue and binary bodies are no text', async () => {
  const raw = [
    'Subject: parts', 'Content-Type: multipart/mixed; boundary=b', '', 'preamble zebrapre', '--b', 'Content-Type: text/plain', '', 'the text', '--b',
    'Content-Type: application/pdf; name="zebrafile.pdf"', 'Content-Disposition: attachment; filename="=?utf-8?q?r=C3=A9sum=C3=A9?=.pdf"',
    'Content-Transfer-Encoding: base64', '', 'emVicmFiaW5hcnk=', '--b--', 'epilogue zebraepi', '',
  ].join('\r\n');
  for (const needle of ['zebrafile', 'RÉSUMÉ.pdf', 'application/pdf']) {
    assert.equal(await matches(raw, 'TEXT', needle), true, needle);
    assert.equal(await matches(raw, 'BODY', needle), false, needle);
  }
  for (const needle of ['zebrapre', 'zebraepi', 'zebrabinary']) assert.equal(await matches(raw, 'TEXT', needle), false, needle);
  assert.equal(await matches(raw, 'BODY', 'the text'), true);
});

test('message/partial, message/external-body and message/delivery-status bodies are text', async () => {
  const raw = [
    'Subject: partial', 'Content-Type: multipart/mixed; boundary=b', '', '--b', 'Content-Type: message/partial; id="x@y"; number=1; total=2', '',
    'Subject: zebrapart', '', 'first zebrahalf', '--b', 'Content-Type: message/external-body; access-type=anon-ftp; site=ftp.probe.test; name=z.txt', '',
    'Content-Type: text/plain', 'Content-ID: <zebraext@probe>', '', '--b', 'Content-Type: message/delivery-status', '', 'Reporting-MTA: dns; zebramta.test', '--b--', '',
  ].join('\r\n');
  for (const needle of ['zebrapart', 'zebrahalf', 'zebraext', 'zebramta']) assert.equal(await matches(raw, 'BODY', needle), true, needle);
  assert.equal(await matches(raw, 'BODY', 'ftp.probe'), false, 'a part header');
  assert.equal(await matches(raw, 'TEXT', 'ftp.probe'), true);
});

test('bodies in UTF-7, in us-ascii with 8-bit bytes (read as UTF-8) and in charsets nobody knows (UTF-8)', async () => {
  const raw = [
    'Subject: charsets', 'Content-Type: multipart/mixed; boundary=b', '', '--b', 'Content-Type: text/plain; charset=utf-7', '', 'Hi Mom -+Jjo--! r+AOk-sum+AOk-', '--b',
    'Content-Type: text/plain; charset=us-ascii', '', 'ascii caf\xe9 \xc3\xa9t\xc3\xa9', '--b', 'Content-Type: text/plain; charset=x-unknown', '', 'unknown na\xefve \xc3\xbcber', '--b',
    'Content-Type: text/plain; charset=iso-8859-1', '', 'latin \x93quoted\x94 r\xe9gime', '--b', 'Content-Type: text/plain; charset=ks_c_5601-1987', '', '\xc7\xd1\xb1\xb9\xbe\xee', '--b--', '',
  ].join('\r\n');
  for (const [needle, want] of [['résumé', true], ['mom -☺-!', true], ['été', true], ['café', false], ['über', true], ['naïve', false], ['régime', true], ['“quoted”', false], ['한국어', true]] as const) {
    assert.equal(await matches(raw, 'BODY', needle, 7), want, needle);
  }
});

test('FROM/TO/CC/BCC compare the address list as Dovecot writes it back; SUBJECT compresses whitespace; HEADER compares the plain value', () => {
  const header = Buffer.from([
    'From: jdoe@probe.test (John Zebra Doe)', 'To: "Q. Public" <q@probe.test> (the public), Group: a@probe.test, b (bee) @probe.test;',
    'Cc: Mary (not Smith) Jones <mj@probe.test>', 'Bcc: <@route.probe:r@probe.test>, "" <>', 'Subject: two  spaces\tand', '\ta fold', '', '',
  ].join('\r\n'), 'latin1');
  const yes: Array<[string, string]> = [['From', 'john zebra doe'], ['To', '"q. public"'], ['To', 'group: <a@'], ['To', 'bee'], ['To', '<b@probe.test>;'],
    ['Cc', 'mary jones'], ['Bcc', '@route.probe:r@'], ['Bcc', 'missing_mailbox'], ['Subject', 'two spaces and'], ['Subject', 'and a fold']];
  const no: Array<[string, string]> = [['From', 'doe <jdoe'], ['From', '(john'], ['To', 'the public'], ['Cc', 'not smith'], ['Subject', 'two  spaces']];
  for (const [field, needle] of yes) assert.equal(headerMatches(header, field, needle), true, `${field} ${needle}`);
  for (const [field, needle] of no) assert.equal(headerMatches(header, field, needle), false, `${field} ${needle}`);
  assert.equal(headerMatches(header, 'From', '(john', 'plain'), true, 'HEADER From keeps the comment');
  assert.equal(headerMatches(header, 'Cc', 'not smith', 'plain'), true);
  assert.equal(headerMatches(header, 'Subject', 'two  spaces', 'plain'), true);
});

test('base64 bodies ignore characters outside the alphabet (RFC 2045 6.8), base64url ones included', async () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const raw = (text: string): string => `Subject: b\r\nContent-Transfer-Encoding: base64\r\n\r\n${text}\r\n`;
  assert.equal(await matches(raw(`${b64('zebrafive12!')}*${b64('zebrasix ok!')}`), 'BODY', 'zebrasix ok'), true);
  assert.equal(await matches(raw(`${b64('zebrathree ok').replace(/=+$/, '')}-_*${b64('zebrafour')}`), 'BODY', 'zebrafour'), false, '"-" and "_" are not base64');
  const d = transferDecoder('base64', { base64url: false });
  assert.deepEqual(Buffer.concat([d.write(Buffer.from('a-G_k')), d.end()]), Buffer.from('hi'));
  const url = transferDecoder('base64');
  assert.deepEqual(Buffer.concat([url.write(Buffer.from('-_-_')), url.end()]), Buffer.from([0xfb, 0xff, 0xbf]), 'by default "-" and "_" read as base64url');
});
