import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import {
  canonicalHash,
  CANONICAL_RULES,
  CANONICAL_VERSION,
  isDroppedField,
} from '../../../core/mime/canonical-hash.ts';

const MiB = 1024 * 1024;

type Input = string | Buffer;

function bytes(input: Input): Buffer {
  return typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
}

function h(input: Input): string {
  return canonicalHash(bytes(input)).hash;
}

/** The two inputs are different bytes but must hash the same. */
function assertCollide(a: Input, b: Input): void {
  assert.notDeepEqual(bytes(a), bytes(b), 'test inputs must differ');
  assert.equal(h(a), h(b));
}

/** The two inputs must hash differently. */
function assertDistinct(a: Input, b: Input): void {
  assert.notEqual(h(a), h(b));
}

const HEADERS = [
  'From: Alice Example <alice@example.com>',
  'To: Bob <bob@example.org>, Carol <carol@example.net>',
  'Subject: Quarterly numbers',
  'Date: Tue, 02 Jan 2024 10:00:00 +0000',
  'Message-ID: <q1-2024@example.com>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
];
const BODY = ['Hello Bob,', '', 'the numbers are attached.', '', 'Alice'];

function msg(headers: string[] = HEADERS, body: string[] = BODY, eol = '\r\n'): string {
  return headers.join(eol) + eol + eol + body.join(eol) + eol;
}

function replaceHeader(name: string, line: string): string[] {
  return HEADERS.map((l) => (l.startsWith(`${name}:`) ? line : l));
}

// --- exact hash input (the format documented in the module) ------------------------------------------

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n), 0);
  return b;
}

function field(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'utf8');
  return Buffer.concat([Buffer.from('H'), u32(n.length), n, u32(v.length), v]);
}

function expected(records: Buffer[], body: string, truncated = false): string {
  const b = Buffer.from(body, 'utf8');
  const input = Buffer.concat([
    Buffer.from('postern-canonical-hash\0', 'latin1'),
    u32(1),
    ...records,
    ...(truncated ? [Buffer.from('T')] : []),
    Buffer.from('B'),
    b,
    u64(b.length),
  ]);
  return createHash('sha256').update(input).digest('hex');
}

test('returns a hex SHA-256 and version 1', () => {
  const result = canonicalHash(Buffer.from(msg()));
  assert.equal(result.version, 1);
  assert.equal(CANONICAL_VERSION, 1);
  assert.match(result.hash, /^[0-9a-f]{64}$/);
});

test('hash input matches the documented format: fields, dropped field, body normalisation', () => {
  const raw = 'Subject: Hi\r\nX-Spam-Flag: YES\r\n\r\nbody  \r\n\r\n';
  assert.equal(h(raw), expected([field('subject', 'Hi')], 'body'));
});

test('hash input matches the documented format: sorting, stray line with position, LF-joined body', () => {
  const raw = 'Subject:  Hi   there \nGarbage line  \nFROM: a@x\n\n\nline 1\r\n\tline 2 \n';
  const stray = Buffer.concat([Buffer.from('S'), u32(1), u32(12), Buffer.from('Garbage line')]);
  assert.equal(
    h(raw),
    expected([field('from', 'a@x'), field('subject', 'Hi there'), stray], '\nline 1\n\tline 2'),
  );
});

test('hash input matches the documented format: empty message', () => {
  assert.equal(h(''), expected([], ''));
  assert.equal(h(Buffer.alloc(0)), expected([], ''));
});

test('hash input matches the documented format: truncated header block', () => {
  const line = `X-Long: ${'a'.repeat(1000)}\n`;
  const count = Math.ceil((MiB + 10) / line.length);
  const raw = line.repeat(count);
  const keptLines = Math.floor(MiB / line.length);
  const records = Array.from({ length: keptLines }, () => field('x-long', 'a'.repeat(1000)));
  const rest = line.repeat(count - keptLines).slice(0, -1); // the final LF only ends the last line
  assert.equal(h(raw), expected(records, rest, true));
});

test('hash input matches the documented format around 64 KiB record boundaries', () => {
  // magic (23) + version (4) + "H" + u32 + "x-a" + u32 = 39 bytes before the value: lengths around
  // 65536 - 39 put the following tag, body byte and length words on every alignment of a 64 KiB block.
  for (let len = 65_536 - 39 - 8; len <= 65_536 - 39 + 8; len++) {
    const value = 'v'.repeat(len);
    assert.equal(h(`X-A: ${value}\n\nb\n`), expected([field('x-a', value)], 'b'), `value length ${len}`);
  }
});

// --- must collide --------------------------------------------------------------------------------------

test('collide: the same message delivered through two hubs with different per-hop headers', () => {
  const hubA = [
    'Received: from mx1.hub-a.example (mx1.hub-a.example [192.0.2.1])',
    '\tby store.hub-a.example with ESMTPS id 4Tq1; Tue, 02 Jan 2024 10:00:05 +0000',
    'Received: from mail.example.com by mx1.hub-a.example; Tue, 02 Jan 2024 10:00:03 +0000',
    'Return-Path: <alice@example.com>',
    'Delivered-To: bob@example.org',
    'X-Original-To: bob@example.org',
    'ARC-Seal: i=1; a=rsa-sha256; t=1704189603; cv=none; d=hub-a.example; s=arc; b=AAAA',
    'ARC-Message-Signature: i=1; a=rsa-sha256; d=hub-a.example; s=arc; h=from:to; bh=xyz=; b=BBBB',
    'ARC-Authentication-Results: i=1; hub-a.example; spf=pass smtp.mailfrom=example.com',
    'Authentication-Results: hub-a.example; spf=pass smtp.mailfrom=example.com; dkim=none',
    'Received-SPF: pass (hub-a.example: domain of example.com designates 192.0.2.9 as permitted sender)',
    'X-MS-Exchange-Organization-SCL: 1',
    'X-MS-Exchange-Organization-AuthSource: store.hub-a.example',
  ];
  const hubB = [
    'Return-Path: <bounce+alice=example.com@example.com>',
    'Received: from relay.hub-b.example ([198.51.100.7]) by hub-b.example with SMTP; Tue, 2 Jan 2024 11:00:09 +0100',
    'Delivered-To: carol@example.net',
    'Envelope-To: carol@example.net',
    'X-Envelope-From: <alice@example.com>',
    'X-Rcpt-To: carol@example.net',
    'ARC-Seal: i=2; a=rsa-sha256; t=1704189609; cv=pass; d=hub-b.example; s=k1; b=CCCC',
    'Authentication-Results: hub-b.example;',
    '  dkim=pass header.d=example.com',
    'X-MS-Exchange-Organization-Network-Message-Id: 7f8e9d0c-1111-2222-3333-444455556666',
    'X-MS-Exchange-Organization-AuthAs: Anonymous',
    'X-MS-Exchange-Transport-CrossTenantHeadersStamped: DM6PR01MB0001',
    'X-MS-Exchange-CrossTenant-OriginalArrivalTime: 02 Jan 2024 10:00:09.0000 (UTC)',
    'X-MS-Exchange-Forest-IndexAgent: 1 2345',
  ];
  const original = msg();
  const viaA = msg([...hubA, ...HEADERS]);
  const viaB = msg([...hubB, ...HEADERS]);
  assertCollide(viaA, viaB);
  assertCollide(original, viaA);
});

test('collide: CRLF and LF line endings throughout', () => {
  assertCollide(msg(HEADERS, BODY, '\r\n'), msg(HEADERS, BODY, '\n'));
});

test('collide: mixed line endings and doubled CRs from a broken conversion', () => {
  // (the blank line ending the header block must be LF or CRLF, as in parseHeaderBlock)
  assertCollide(msg(), HEADERS.join('\r\n') + '\r\n\r\n' + BODY.join('\r\r\n') + '\r\r\n');
  const mixed = HEADERS.join('\n') + '\r\n\n' + BODY.join('\r\n') + '\n';
  assertCollide(msg(), mixed);
});

test('collide: refolded headers', () => {
  const refolded = [
    ...HEADERS.filter((l) => !l.startsWith('To:') && !l.startsWith('Subject:')),
    'To: Bob <bob@example.org>,',
    '\tCarol <carol@example.net>',
    'Subject:',
    '   Quarterly',
    ' numbers',
  ];
  // reordering is tolerated too (see the sorting test); here only folding differs
  const unfoldedSameOrder = [
    ...HEADERS.filter((l) => !l.startsWith('To:') && !l.startsWith('Subject:')),
    'To: Bob <bob@example.org>, Carol <carol@example.net>',
    'Subject: Quarterly numbers',
  ];
  assertCollide(msg(unfoldedSameOrder), msg(refolded));
});

test('collide: whitespace runs, tabs and trailing whitespace in header values', () => {
  const spaced = replaceHeader('Subject', 'Subject:\t Quarterly \t  numbers   \t');
  assertCollide(msg(), msg(spaced));
  assertCollide(msg(), msg(replaceHeader('From', 'From:Alice   Example   <alice@example.com>')));
});

test('collide: header names in any case', () => {
  const upper = HEADERS.map((l) => {
    const colon = l.indexOf(':');
    return l.slice(0, colon).toUpperCase() + l.slice(colon);
  });
  assertCollide(msg(), msg(upper));
});

test('collide: trailing whitespace on body lines, trailing empty lines and the final newline', () => {
  const base = msg();
  assertCollide(base, msg(HEADERS, ['Hello Bob,  ', '\t', 'the numbers are attached.\t \t', ' ', 'Alice ']));
  assertCollide(base, msg(HEADERS, [...BODY, '', '', '   ', '']));
  assertCollide(base, msg().slice(0, -2)); // no final CRLF
});

test('collide: an mbox-imported copy with Status/X-Status/Content-Length and other state headers', () => {
  const imported =
    'From alice@example.com Tue Jan  2 10:00:05 2024\n' +
    msg(
      [
        ...HEADERS,
        'Status: RO',
        'X-Status: A',
        'X-Keywords: $Label1 NonJunk',
        'X-UID: 42',
        'Content-Length: 52',
        'Lines: 5',
        'X-Mozilla-Status: 0001',
        'X-Mozilla-Status2: 00000000',
        'X-Mozilla-Keys: ',
      ],
      BODY,
      '\n',
    );
  assertCollide(msg(), imported);
});

test('collide: DKIM signatures added by an outbound hub (decision: dropped)', () => {
  const signed = msg([
    'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;',
    '\th=from:to:subject:date; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=abcd',
    'X-Google-DKIM-Signature: v=1; a=rsa-sha256; d=1e100.net; s=20230601; b=efgh',
    ...HEADERS,
  ]);
  assertCollide(msg(), signed);
});

test('collide: spam and virus scanner stamps (decision: dropped)', () => {
  const scanned = msg([
    ...HEADERS,
    'X-Spam-Status: No, score=-1.9 required=5.0 tests=BAYES_00 autolearn=ham',
    'X-Spam-Score: -1.9',
    'X-Spam-Flag: NO',
    'X-Virus-Scanned: amavisd-new at hub-a.example',
    'X-Virus-Status: Clean',
    'X-Microsoft-Antispam: BCL:0;',
    'X-Microsoft-Antispam-Message-Info: abc',
    'X-Forefront-Antispam-Report: CIP:192.0.2.1;CTRY:;LANG:en;SCL:1;',
    'X-MS-Exchange-AntiSpam-MessageData-0: xyz',
  ]);
  assertCollide(msg(), scanned);
});

test('collide: our own X-Postern-* annotations and an Exchange journal marker', () => {
  assertCollide(msg(), msg([...HEADERS, 'X-Postern-Capture: 0123', 'X-MS-Journal-Report:']));
});

test('collide: different-name fields in another order (decision: stable sort by name)', () => {
  const reordered = [...HEADERS].reverse();
  assertCollide(msg(), msg(reordered));
});

test('collide: a dropped field with invalid UTF-8 does not change how a UTF-8 Subject is hashed', () => {
  const head = Buffer.from('From: a@example.com\r\nSubject: Gr\u00fc\u00dfe \u2603\r\n', 'utf8');
  const body = Buffer.from('\r\nbody\r\n', 'utf8');
  const received = Buffer.concat([
    Buffer.from('Received: from h\xe9te.example (latin1 comment)\r\n', 'latin1'),
  ]);
  assertCollide(Buffer.concat([head, body]), Buffer.concat([received, head, body]));
});

test('collide: no body, an empty body and no blank line after the header (decision)', () => {
  const headerOnly = 'From: a@example.com\r\nSubject: x\r\n';
  assertCollide(headerOnly, `${headerOnly}\r\n`);
  assertCollide(headerOnly, `${headerOnly}\r\n\r\n  \r\n`);
  assertCollide(headerOnly, 'From: a@example.com\nSubject: x'); // no final newline at all
});

const DROPPED_EXAMPLES = [
  'Received', 'X-Received', 'Return-Path', 'Delivered-To', 'X-Original-To', 'X-Envelope-To', 'X-Envelope-From',
  'Envelope-To', 'X-Rcpt-To', 'X-Gm-Original-To', 'X-MS-Exchange-Organization-SCL',
  'X-MS-Exchange-Forest-RulesExecuted', 'X-MS-Exchange-Transport-EndToEndLatency',
  'X-MS-Exchange-CrossTenant-Id', 'X-MS-Journal-Report', 'ARC-Seal', 'ARC-Message-Signature',
  'ARC-Authentication-Results', 'Authentication-Results', 'Received-SPF', 'X-Spam-Level', 'X-Virus-Scanned',
  'DKIM-Signature', 'DomainKey-Signature', 'X-Postern-Intake', 'Status', 'X-Status', 'X-Keywords', 'X-UID',
  'Content-Length', 'x-ms-exchange-organization-authas', 'RECEIVED',
];

for (const name of DROPPED_EXAMPLES) {
  test(`collide: adding a ${name} field`, () => {
    assert.equal(isDroppedField(name), true);
    assertCollide(msg(), msg([`${name}: some per-hop value 1`, ...HEADERS]));
  });
}

// --- must not collide ----------------------------------------------------------------------------------

test('distinct: body differs by one byte', () => {
  assertDistinct(msg(), msg(HEADERS, ['Hello Bob.', '', 'the numbers are attached.', '', 'Alice']));
  assertDistinct(msg(), msg(HEADERS, [...BODY.slice(0, -1), 'Alicf']));
});

test('distinct: same Message-ID but a different body (reused ID)', () => {
  assertDistinct(msg(), msg(HEADERS, ['Completely different text.']));
});

test('distinct: different Subject, From, Date, Message-ID', () => {
  const base = h(msg());
  const variants = [
    replaceHeader('Subject', 'Subject: Quarterly numbers!'),
    replaceHeader('From', 'From: Alice Example <alice@example.net>'),
    replaceHeader('Date', 'Date: Tue, 02 Jan 2024 10:00:01 +0000'),
    replaceHeader('Message-ID', 'Message-ID: <q2-2024@example.com>'),
  ];
  const hashes = variants.map((v) => h(msg(v)));
  for (const hash of hashes) assert.notEqual(hash, base);
  assert.equal(new Set(hashes).size, hashes.length);
});

test('distinct: reordered To addresses (decision: addresses are not parsed or sorted)', () => {
  assertDistinct(msg(), msg(replaceHeader('To', 'To: Carol <carol@example.net>, Bob <bob@example.org>')));
});

test('distinct: the order of same-name fields is kept', () => {
  const a = msg([...HEADERS, 'Comments: first', 'Comments: second']);
  const b = msg([...HEADERS, 'Comments: second', 'Comments: first']);
  assertDistinct(a, b);
});

test('distinct: a header moved into the body', () => {
  const inHeader = msg([...HEADERS, 'Keywords: secret'], BODY);
  const inBody = msg(HEADERS, ['Keywords: secret', ...BODY]);
  assertDistinct(inHeader, inBody);
  // and a body line moved up without a blank line: a stray header line is not the body
  assertDistinct('Subject: x\nhello\n', 'Subject: x\n\nhello\n');
});

test('distinct: header values containing separator bytes cannot imitate field boundaries', () => {
  // A naive "name NUL value NUL" join would make these identical.
  const oneField = Buffer.from('X-A: 1\0x-b\x002\r\n\r\nbody\r\n', 'latin1');
  const twoFields = Buffer.from('X-A: 1\r\nX-B: 2\r\n\r\nbody\r\n', 'latin1');
  assertDistinct(oneField, twoFields);
  // A value carrying what would follow it in a length-prefixed encoding.
  const forged = Buffer.concat([
    Buffer.from('X-A: 1'),
    Buffer.from('H'),
    u32(3),
    Buffer.from('x-b'),
    u32(1),
    Buffer.from('2\r\n\r\nbody\r\n'),
  ]);
  assertDistinct(forged, twoFields);
});

test('distinct: body bytes imitating the end of the header records', () => {
  const a = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.from('BH'), u32(1), Buffer.from('y\r\n')]);
  const b = Buffer.from('Subject: x\r\nY:\r\n\r\n');
  assertDistinct(a, b);
  assertDistinct('Subject: xB\n\n', 'Subject: x\n\nB\n');
});

test('distinct: Bcc is kept (decision)', () => {
  assertDistinct(msg(), msg([...HEADERS, 'Bcc: dave@example.com']));
  assertDistinct(msg([...HEADERS, 'Bcc: dave@example.com']), msg([...HEADERS, 'Bcc: erin@example.com']));
  assert.equal(isDroppedField('Bcc'), false);
});

const KEPT_EXAMPLES = [
  'Bcc', 'Cc', 'Reply-To', 'Sender', 'In-Reply-To', 'References', 'Resent-From', 'Resent-Date', 'List-Id',
  'X-Mailer', 'Content-Transfer-Encoding', 'Comments', 'Keywords', 'Importance',
  // near misses of dropped names
  'X-Spam', 'X-Envelope', 'Received-Note', 'ARC', 'X-Status-Report', 'Return-Receipt-To', 'X-Originating-IP',
  'X-MS-Exchange-Organization', 'X-MS-Has-Attach', 'Content-Language',
];

for (const name of KEPT_EXAMPLES) {
  test(`distinct: adding a ${name} field`, () => {
    assert.equal(isDroppedField(name), false);
    assertDistinct(msg(), msg([...HEADERS, `${name}: value`]));
  });
}

test('distinct: whitespace that is content', () => {
  assertDistinct(msg(), msg(HEADERS, BODY.map((l) => (l === 'Alice' ? ' Alice' : l)))); // leading whitespace
  assertDistinct(msg(HEADERS, ['a', '', 'b']), msg(HEADERS, ['a', 'b'])); // inner empty line
  assertDistinct(msg(HEADERS, ['', 'a']), msg(HEADERS, ['a'])); // leading empty line
  assertDistinct('S: x\n\na\rb\n', 'S: x\n\na\nb\n'); // lone CR is not a line break
  assertDistinct('S: x\n\na  b\n', 'S: x\n\na b\n'); // inner whitespace of the body is exact
  assertDistinct(msg(replaceHeader('To', 'To: Bob <bob@example.org>,Carol <carol@example.net>')), msg());
});

test('distinct: an empty header value and a missing field', () => {
  assertDistinct(msg([...HEADERS, 'Keywords:']), msg());
});

test('distinct: stray header lines that differ', () => {
  const a = msg([...HEADERS.slice(0, 2), 'this line has no colon', ...HEADERS.slice(2)]);
  const b = msg([...HEADERS.slice(0, 2), 'another line without one', ...HEADERS.slice(2)]);
  assertDistinct(a, b);
  assertDistinct(a, msg());
  // same stray line at another position
  const c = msg([...HEADERS.slice(0, 3), 'this line has no colon', ...HEADERS.slice(3)]);
  assertDistinct(a, c);
  // a continuation of a stray line is kept too
  assertDistinct(msg(['junk', ' cont A', ...HEADERS]), msg(['junk', ' cont B', ...HEADERS]));
});

test('an mbox separator is ignored only as the very first line', () => {
  assertCollide('From x@y Mon Jan  1 00:00:00 2024\nSubject: a\n\nb\n', 'Subject: a\n\nb\n');
  assertDistinct('Subject: a\nFrom x@y Mon Jan  1 00:00:00 2024\n\nb\n', 'Subject: a\n\nb\n');
});

test('8-bit header bytes are hashed exactly', () => {
  const latin1 = Buffer.from('Subject: caf\xe9\r\n\r\nbody\r\n', 'latin1');
  const utf8 = Buffer.from('Subject: caf\u00e9\r\n\r\nbody\r\n', 'utf8');
  const other = Buffer.from('Subject: caf\xe8\r\n\r\nbody\r\n', 'latin1');
  assertDistinct(latin1, utf8);
  assertDistinct(latin1, other);
  assert.equal(h(latin1), h(Buffer.from(latin1)));
  // the latin1 Subject hashes as its raw byte
  const expectedLatin1 = createHash('sha256')
    .update(
      Buffer.concat([
        Buffer.from('postern-canonical-hash\0', 'latin1'),
        u32(1),
        Buffer.from('H'),
        u32(7),
        Buffer.from('subject'),
        u32(4),
        Buffer.from('caf\xe9', 'latin1'),
        Buffer.from('Bbody'),
        u64(4),
      ]),
    )
    .digest('hex');
  assert.equal(h(latin1), expectedLatin1);
});

test('8-bit body bytes are hashed exactly', () => {
  assertDistinct(
    Buffer.from('S: x\n\ncaf\xe9\n', 'latin1'),
    Buffer.from('S: x\n\ncaf\u00e9\n', 'utf8'),
  );
});

test('NUL bytes are content, in the body and in header values', () => {
  assertDistinct('S: x\n\na\0b\n', 'S: x\n\nab\n');
  assertDistinct('S: x\n\na\0\n', 'S: x\n\na\n');
  assertDistinct('S: x\0\n\nb\n', 'S: x\n\nb\n');
  assertDistinct('S: x\0y\n\nb\n', 'S: x\0z\n\nb\n');
});

test('header block over 1 MiB: bytes after the limit still count', () => {
  const line = `X-Filler: ${'f'.repeat(200)}\r\n`;
  const filler = line.repeat(Math.ceil((1.2 * MiB) / line.length));
  const a = `${filler}Subject: a\r\n\r\nbody\r\n`;
  const b = `${filler}Subject: b\r\n\r\nbody\r\n`;
  assertDistinct(a, b);
  assertDistinct(`${filler}Subject: a\r\n\r\nbody 1\r\n`, `${filler}Subject: a\r\n\r\nbody 2\r\n`);
  assert.equal(h(a), h(a));
});

test('header block over 1 MiB: a blank line at the cut is not the same as none', () => {
  const line = `X-Filler: ${'f'.repeat(200)}\n`;
  const perLimit = Math.floor(MiB / line.length);
  const head = line.repeat(perLimit);
  const tail = line.repeat(50);
  assertDistinct(`${head}${tail}`, `${head}\n${tail}`);
});

test('more fields than the parser returns: later fields still count', () => {
  const many = 'X-A: 1\n'.repeat(10_000);
  assertDistinct(`${many}X-B: 1\n\nbody\n`, `${many}X-B: 2\n\nbody\n`);
  assertDistinct(`${many}X-B: 1\n continued A\n\nbody\n`, `${many}X-B: 1\n continued B\n\nbody\n`);
});

test('long lines and long runs of empty lines in the body', () => {
  const long = 'x'.repeat(200_000);
  const body = [long, ...Array.from({ length: 5000 }, () => ''), 'end', ...Array.from({ length: 3000 }, (_, i) => `l${i}`)];
  assertCollide(msg(HEADERS, body, '\r\n'), msg(HEADERS, body, '\n'));
  const changedLong = [`${long.slice(0, 150_000)}y${long.slice(150_001)}`, ...body.slice(1)];
  assertDistinct(msg(HEADERS, body), msg(HEADERS, changedLong));
  const oneMoreEmpty = [long, '', ...body.slice(1)];
  assertDistinct(msg(HEADERS, body), msg(HEADERS, oneMoreEmpty));
});

test('deterministic and does not modify its input', () => {
  const raw = Buffer.from(msg());
  const copy = Buffer.from(raw);
  const first = canonicalHash(raw);
  const second = canonicalHash(raw);
  assert.deepEqual(first, second);
  assert.deepEqual(raw, copy);
});

test('a Uint8Array and a Buffer of the same bytes hash the same', () => {
  const raw = Buffer.from(msg());
  const view = new Uint8Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  assert.equal(canonicalHash(view as Buffer).hash, h(raw));
});

test('never throws on garbage', () => {
  let seed = 0x2545f491;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const alphabet = Buffer.from('\r\n \t:abcAB\0\xff\xc3\xa9-From', 'latin1');
  for (let i = 0; i < 500; i++) {
    const len = next() % 600;
    const buf = Buffer.alloc(len);
    for (let j = 0; j < len; j++) {
      const r = next();
      buf[j] = r % 3 === 0 ? (alphabet[r % alphabet.length] ?? 0) : r & 0xff;
    }
    const result = canonicalHash(buf);
    assert.match(result.hash, /^[0-9a-f]{64}$/);
    assert.equal(result.version, 1);
  }
  const emptyHash = expected([], '');
  for (const garbage of [undefined, null, 42, {}, [], Symbol('x')]) {
    const result = canonicalHash(garbage as unknown as Buffer);
    assert.deepEqual(result, { hash: emptyHash, version: 1 });
  }
  assert.equal(canonicalHash('S: x\n\nb\n' as unknown as Buffer).hash, h('S: x\n\nb\n'));
});

test('CANONICAL_RULES documents the decisions', () => {
  for (const word of [
    'received', 'return-path', 'delivered-to', 'arc-*', 'authentication-results', 'dkim-signature',
    'x-spam-*', 'x-virus-*', 'x-postern-*', 'x-ms-exchange-organization-*', 'status', 'content-length',
    'Bcc', 'sorted', 'CRLF', 'length-prefixed', 'version 1',
  ]) {
    assert.ok(CANONICAL_RULES.includes(word), `CANONICAL_RULES mentions ${word}`);
  }
});
