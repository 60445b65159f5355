// SEARCH evaluation: headerMatches on RFC 2047-decoded values, textMatches on bodies with their transfer
// encodings and charsets decoded, across chunk boundaries, inside message/rfc822 parts, skipping
// non-text attachments; plus the incremental transfer decoders in core/mime/transfer-decoding.ts.
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
  assert.equal(headerMatches(HEADER, 'subject', 'R3L832Vu'), true, 'the raw text matches too');
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
  assert.equal(headerMatches(bad, 'To', 'élève'), true, '8-bit latin1 header bytes');
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

test('BODY searches the header and text of an attached message/rfc822 but not binary attachments', async () => {
  const raw = [
    'Subject: outer', 'Content-Type: multipart/mixed; boundary=o', '', '--o', '', 'outer text', '--o',
    'Content-Type: message/rfc822', '', 'Subject: =?utf-8?q?inner_=C3=BCber?=', '', 'inner text', '--o',
    'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '',
    Buffer.from('secret binary words').toString('base64'), '--o--', '',
  ].join('\r\n');
  assert.equal(await matches(raw, 'BODY', 'inner über'), true);
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
