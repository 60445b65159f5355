import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseHeaderBlock, headerValues, extractAddresses } from '../../../core/mime/headers.ts';
import { prng as rng } from '../../helpers/prng.ts';
import {
  parseJournalReport,
  detectJournalReport,
  type JournalReport,
  type JournalRecipient,
} from '../../../core/journal/journal-report.ts';

const FIXTURES = fileURLToPath(new URL('../../fixtures/journal/', import.meta.url));

interface ExpectedJournal {
  kind: 'exchange' | 'workmail' | null;
  style?: string;
  ndrWrapped?: boolean;
  sender?: string | null;
  onBehalfOf?: string | null;
  subject?: string | null;
  messageId?: string | null;
  recipients?: JournalRecipient[];
  fieldCount?: number;
  unknownFields?: string[];
  originals?: number;
  roles?: string[];
  contentTypes?: string[];
  originalSlices?: Array<{ from: string; until: string }>;
  tnefHex?: string;
  wrapperMessageId?: string;
  problems?: number;
  problemList?: string[];
}

const expectedFile = JSON.parse(readFileSync(`${FIXTURES}expected.json`, 'utf8')) as { journal: Record<string, ExpectedJournal> };
const expected = expectedFile.journal;
const fixtureNames = readdirSync(FIXTURES).filter((n) => n.endsWith('.eml')).sort();

function fixture(name: string): Buffer {
  return readFileSync(`${FIXTURES}${name}`);
}

function mustParse(raw: Buffer): JournalReport {
  const r = parseJournalReport(raw);
  assert.ok(r !== null, 'expected a journal report');
  return r;
}


function assertWellFormed(r: JournalReport | null): void {
  if (r === null) return;
  assert.ok(r.kind === 'exchange' || r.kind === 'workmail');
  assert.ok(['typed', 'untyped', 'exchange2003'].includes(r.envelope.style));
  assert.ok(Array.isArray(r.envelope.recipients));
  for (const rc of r.envelope.recipients) {
    assert.equal(typeof rc.address, 'string');
    assert.ok(['to', 'cc', 'bcc', 'recipient'].includes(rc.field));
  }
  assert.ok(Array.isArray(r.envelope.fields));
  for (const o of r.originals) assert.ok(Buffer.isBuffer(o.bytes));
  assert.ok(Array.isArray(r.problems));
  assert.ok(r.problems.length <= 101);
  assert.equal(typeof r.wrapper.from, 'string');
}

// ---------------------------------------------------------------------------
// Table-driven over expected.json

test('every fixture has an expected entry', () => {
  for (const name of fixtureNames) assert.ok(name in expected, `${name} missing from expected.json`);
  for (const name of Object.keys(expected)) assert.ok(fixtureNames.includes(name), `${name} listed but not present`);
});

for (const [name, exp] of Object.entries(expected)) {
  test(`fixture ${name}`, () => {
    const raw = fixture(name);
    const r = parseJournalReport(raw);
    if (exp.kind === null) {
      assert.equal(r, null);
      return;
    }
    assert.ok(r !== null);
    assert.equal(r.kind, exp.kind);
    assert.equal(r.envelope.style, exp.style);
    assert.equal(r.ndrWrapped, exp.ndrWrapped);
    assert.equal(r.envelope.sender, exp.sender);
    assert.equal(r.envelope.onBehalfOf, exp.onBehalfOf);
    if (exp.subject !== undefined) assert.equal(r.envelope.subject, exp.subject);
    assert.equal(r.envelope.messageId, exp.messageId);
    assert.deepEqual(r.envelope.recipients, exp.recipients);
    if (exp.fieldCount !== undefined) assert.equal(r.envelope.fields.length, exp.fieldCount);
    for (const u of exp.unknownFields ?? []) {
      assert.ok(r.envelope.fields.some((f) => f.name === u), `unknown field ${u} kept`);
    }
    assert.equal(r.originals.length, exp.originals);
    assert.deepEqual(
      r.originals.map((o) => o.role),
      exp.roles,
    );
    if (exp.contentTypes !== undefined) assert.deepEqual(r.originals.map((o) => o.contentType), exp.contentTypes);
    assert.equal(r.wrapper.messageId, exp.wrapperMessageId);
    assert.equal(r.problems.length, exp.problems, `problems: ${JSON.stringify(r.problems)}`);
    if (exp.problemList !== undefined) assert.deepEqual(r.problems, exp.problemList);
  });
}

// ---------------------------------------------------------------------------
// Original bytes

test('original bytes are exactly the attached message bytes, without a copy', () => {
  let checked = 0;
  for (const [name, exp] of Object.entries(expected)) {
    if (exp.originalSlices === undefined) continue;
    const raw = fixture(name);
    const r = mustParse(raw);
    let from = 0;
    exp.originalSlices.forEach((slice, i) => {
      const start = raw.indexOf(slice.from, from, 'utf8');
      assert.ok(start !== -1, `${name}: marker ${slice.from}`);
      const end = raw.indexOf(slice.until, start, 'utf8');
      assert.ok(end !== -1, `${name}: end marker`);
      const original = r.originals[i];
      assert.ok(original !== undefined);
      assert.ok(original.bytes.equals(raw.subarray(start, end)), `${name}: original ${i} differs`);
      assert.equal(original.bytes.buffer, raw.buffer, `${name}: original ${i} is a view of the input`);
      assert.equal(original.bytes.byteOffset, raw.byteOffset + start);
      from = end;
      checked++;
    });
  }
  assert.ok(checked >= 15);
});

test('a TNEF original is decoded from base64 and kept as received', () => {
  const r = mustParse(fixture('exchange-tnef.eml'));
  const t = r.originals[0];
  assert.ok(t !== undefined);
  assert.equal(t.role, 'tnef');
  assert.equal(t.bytes.toString('hex'), expected['exchange-tnef.eml']?.tnefHex);
  assert.equal(t.bytes.readUInt32LE(0), 0x223e9f78); // TNEF signature
});

test('IRM: the protected original is recognised by Content-Class even when the decrypted copy comes first', () => {
  const raw = fixture('exchange-irm.eml').toString('latin1');
  const parts = raw.split('\r\n--irm_0008');
  // parts: [head, envelope, protected, decrypted, "--\r\n"]
  assert.equal(parts.length, 5);
  const swapped = [parts[0], parts[1], parts[3], parts[2], parts[4]].join('\r\n--irm_0008');
  const r = mustParse(Buffer.from(swapped, 'latin1'));
  assert.deepEqual(r.originals.map((o) => o.role), ['decrypted', 'original']);
  assert.match(r.originals[1]?.bytes.toString('latin1') ?? '', /Content-Class: rpmsg\.message/);
  assert.doesNotMatch(r.originals[0]?.bytes.toString('latin1') ?? '', /rpmsg/);
});

test('two reports for one message share the Message-ID and the original, with different recipients', () => {
  const a = mustParse(fixture('exchange-split-1.eml'));
  const b = mustParse(fixture('exchange-split-2.eml'));
  assert.equal(a.envelope.messageId, b.envelope.messageId);
  assert.notEqual(a.wrapper.messageId, b.wrapper.messageId);
  assert.ok(a.originals[0]?.bytes.equals(b.originals[0]?.bytes ?? Buffer.alloc(0)));
  const setA = new Set(a.envelope.recipients.map((x) => x.address));
  for (const x of b.envelope.recipients) assert.ok(!setA.has(x.address));
  // the original's own Message-ID matches the envelope's
  const origHeaders = parseHeaderBlock(a.originals[0]?.bytes ?? Buffer.alloc(0));
  assert.equal(headerValues(origHeaders, 'message-id')[0], `<${a.envelope.messageId}>`);
});

// ---------------------------------------------------------------------------
// Wrapper identities are provenance, never participants

test('wrapper To/From/Cc (and NDR headers) never appear as participants', () => {
  for (const [name, exp] of Object.entries(expected)) {
    if (exp.kind === null) continue;
    const raw = fixture(name);
    const r = mustParse(raw);
    const outer = parseHeaderBlock(raw);
    const wrapperAddrs = new Set<string>();
    for (const h of ['from', 'to', 'cc', 'sender', 'reply-to']) {
      for (const v of headerValues(outer, h)) for (const a of extractAddresses(v)) wrapperAddrs.add(a);
    }
    assert.ok(wrapperAddrs.size > 0);
    const participants = [r.envelope.sender, r.envelope.onBehalfOf, ...r.envelope.recipients.map((x) => x.address)];
    for (const p of participants) {
      if (p !== null) assert.ok(!wrapperAddrs.has(p), `${name}: wrapper address ${p} leaked into the envelope`);
    }
  }
});

test('the NDR wrapper is provenance only: the inner report identifies itself', () => {
  const r = mustParse(fixture('exchange-ndr-wrapped.eml'));
  assert.equal(r.ndrWrapped, true);
  assert.equal(r.wrapper.messageId, 'jr-ndr-0007@hub01.example.com');
  assert.match(r.wrapper.from, /MicrosoftExchange/);
  assert.equal(r.wrapper.date, '2024-06-03T09:15:02.000Z');
  const all = JSON.stringify(r.envelope);
  for (const a of ['exchange-admins@example.com', 'helpdesk@example.com', 'postmaster@example.com', 'journal@archive.example.com']) {
    assert.ok(!all.includes(a), a);
  }
});

// ---------------------------------------------------------------------------
// Line endings, encodings, structure

test('bare LF versions of every fixture parse to the same envelope', () => {
  for (const [name, exp] of Object.entries(expected)) {
    const raw = fixture(name);
    const lf = Buffer.from(raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    const r = parseJournalReport(lf);
    if (exp.kind === null) {
      assert.equal(r, null, name);
      continue;
    }
    const c = mustParse(raw);
    assert.ok(r !== null, name);
    assert.deepEqual(r.envelope, c.envelope, name);
    assert.equal(r.originals.length, c.originals.length, name);
    assert.deepEqual(r.problems, c.problems, name);
    r.originals.forEach((o, i) => {
      const co = c.originals[i];
      assert.ok(co !== undefined);
      const want = co.role === 'tnef' ? co.bytes : Buffer.from(co.bytes.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
      assert.ok(o.bytes.equals(want), `${name} original ${i}`);
    });
  }
});

function buildReport(envelopePart: string, rest: string, opts: { boundary?: string; headers?: string } = {}): Buffer {
  const b = opts.boundary ?? 'b1';
  const text =
    `From: agent@example.com\r\nTo: journal@example.com\r\nMessage-ID: <w@x>\r\nX-MS-Journal-Report:\r\n` +
    `Content-Type: multipart/mixed; boundary="${b}"\r\n${opts.headers ?? ''}\r\n` +
    `--${b}\r\n${envelopePart}\r\n--${b}\r\n${rest}`;
  return Buffer.from(text, 'latin1');
}

const ORIGINAL = 'From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n';

test('a multipart without its closing delimiter still yields envelope and original, with a problem', () => {
  const raw = buildReport(
    'Content-Type: text/plain\r\n\r\nSender: a@example.com\r\nTo: b@example.com\r\n',
    `Content-Type: message/rfc822\r\n\r\n${ORIGINAL}`,
  );
  const r = mustParse(raw);
  assert.equal(r.envelope.sender, 'a@example.com');
  assert.equal(r.originals.length, 1);
  assert.equal(r.originals[0]?.bytes.toString('latin1'), ORIGINAL);
  assert.deepEqual(r.problems, ['multipart not closed']);
});

test('boundaries: a longer boundary that starts with ours is not a delimiter; preamble and epilogue are ignored', () => {
  const text =
    'X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n' +
    'preamble line\r\n--bx is not ours\r\n' +
    '--b\r\nContent-Type: text/plain\r\n\r\nSender: a@example.com\r\nRecipient: c@example.com\r\n--bb\r\nstill envelope text\r\n' +
    '--b  \r\nContent-Type: message/rfc822\r\n\r\n' + ORIGINAL +
    '\r\n--b--\r\nepilogue\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nnot a part\r\n';
  const r = mustParse(Buffer.from(text, 'latin1'));
  assert.equal(r.originals.length, 1);
  assert.equal(r.originals[0]?.bytes.toString('latin1'), ORIGINAL);
  assert.deepEqual(r.envelope.recipients.map((x) => x.address), ['c@example.com']);
  assert.ok(r.envelope.fields.some((f) => f.name === '' && f.value === '--bb'), 'a line starting with --b but not the delimiter is content');
});

test('nested multiparts: envelope and original found inside a nested multipart/mixed', () => {
  const inner =
    'Content-Type: multipart/mixed; boundary="in ner"\r\n\r\n--in ner\r\nContent-Type: text/plain\r\n\r\nSender: a@example.com\r\nBcc: z@example.com\r\n' +
    `--in ner\r\nContent-Type: message/rfc822\r\n\r\n${ORIGINAL}\r\n--in ner--\r\n`;
  const raw = buildReport(inner, 'Content-Type: text/plain\r\n\r\nsecond text part is not the envelope\r\n--b1--\r\n');
  const r = mustParse(raw);
  assert.deepEqual(r.envelope.recipients, [{ address: 'z@example.com', field: 'bcc', expandedFrom: null, forwardedFrom: null }]);
  assert.equal(r.originals.length, 1);
  assert.deepEqual(r.problems, []);
});

test('base64 and quoted-printable message/rfc822 parts are decoded', () => {
  const b64 = Buffer.from(ORIGINAL, 'latin1').toString('base64').replace(/.{20}/g, '$&\r\n');
  const qp = ORIGINAL.replace('body', 'b=3Dody=\r\n!');
  const raw = buildReport(
    'Content-Type: text/plain\r\n\r\nSender: a@example.com\r\nTo: b@example.com\r\n',
    `Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n` +
      `--b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n${qp}\r\n--b1--\r\n`,
  );
  const r = mustParse(raw);
  assert.equal(r.originals[0]?.bytes.toString('latin1'), ORIGINAL);
  assert.equal(r.originals[1]?.bytes.toString('latin1'), ORIGINAL.replace('body', 'b=ody!'));
});

test('envelope lines: hard-wrapped long lines, Forwarded on its own line, duplicates merged, any order', () => {
  const longLocal = 'a'.repeat(70);
  const env =
    'Content-Type: text/plain; charset=us-ascii\r\n\r\n' +
    `Recipient: ${longLocal}@exam\r\nple.com\r\n` +
    'To: x@example.com\r\nForwarded: y@example.com\r\n' +
    'To: x@example.com, Expanded: dl@example.com\r\n' +
    'Message-ID: <id@x>\r\nSender: "Alice A" <Alice@EXAMPLE.com>\r\n';
  const r = mustParse(buildReport(env, `Content-Type: message/rfc822\r\n\r\n${ORIGINAL}--b1--\r\n`));
  assert.deepEqual(r.envelope.recipients, [
    { address: `${longLocal}@example.com`, field: 'recipient', expandedFrom: null, forwardedFrom: null },
    { address: 'x@example.com', field: 'to', expandedFrom: 'dl@example.com', forwardedFrom: 'y@example.com' },
  ]);
  assert.equal(r.envelope.sender, 'Alice@example.com');
  assert.equal(r.envelope.messageId, 'id@x');
  assert.equal(r.envelope.style, 'typed');
  assert.deepEqual(r.problems, []);
});

test('charsets: declared legacy charset decodes; unknown charset is a problem', () => {
  const env = (cs: string, bytes: string): string =>
    `Content-Type: text/plain; charset=${cs}\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSender: a@example.com\r\nSubject: ${bytes}\r\nTo: b@example.com\r\n`;
  const rest = `Content-Type: message/rfc822\r\n\r\n${ORIGINAL}--b1--\r\n`;
  const ok = mustParse(buildReport(env('iso-8859-2', 'Pr\u00b9ce'), rest));
  assert.equal(ok.envelope.subject, 'Pr\u0161ce');
  assert.deepEqual(ok.problems, []);
  const unknown = mustParse(buildReport(env('x-unheard-of', 'caf\u00e9'), rest));
  assert.equal(unknown.envelope.subject, 'caf\u00e9');
  assert.deepEqual(unknown.problems, ['unknown charset x-unheard-of']);
  const ascii8 = mustParse(buildReport(env('us-ascii', 'caf\u00c3\u00a9'), rest)); // UTF-8 bytes labelled us-ascii
  assert.equal(ascii8.envelope.subject, 'caf\u00e9');
  assert.deepEqual(ascii8.problems, ['undeclared 8-bit charset']);
});

test('a report that is not multipart is reported with problems, not rejected', () => {
  const raw = Buffer.from('X-MS-Journal-Report:\r\nContent-Type: text/plain\r\n\r\nSender: a@example.com\r\n', 'latin1');
  const r = mustParse(raw);
  assert.deepEqual(r.problems, ['report is not multipart', 'envelope part not found', 'no message/rfc822 part']);
  assert.deepEqual(r.envelope.recipients, []);
});

test('multipart without boundary parameter', () => {
  const r = mustParse(Buffer.from('X-MS-Journal-Report:\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n', 'latin1'));
  assert.ok(r.problems.includes('multipart without boundary'));
});

// ---------------------------------------------------------------------------
// Detection

test('detectJournalReport', () => {
  const d = (h: string): string | null => detectJournalReport(parseHeaderBlock(Buffer.from(`${h}\r\n\r\n`, 'latin1')));
  assert.equal(d('X-MS-Journal-Report:'), 'exchange');
  assert.equal(d('x-ms-journal-report: anything at all'), 'exchange');
  assert.equal(d('X-WM-Journal-Report: journal'), 'workmail');
  assert.equal(d('X-WM-Journal-Report:  JOURNAL '), 'workmail');
  assert.equal(d('X-WM-Journal-Report: other'), null);
  assert.equal(d('Subject: X-MS-Journal-Report:'), null);
  assert.equal(d(''), null);
  assert.equal(detectJournalReport({ fields: [], headerBytes: 0, complete: false }), null);
});

test('a forwarded journal report inside an ordinary multipart is unwrapped too; nested NDRs are searched', () => {
  const report = fixture('exchange-inbound.eml').toString('latin1');
  const ndr = (inner: string, b: string): string =>
    `From: x@example.com\r\nContent-Type: multipart/report; boundary=${b}\r\n\r\n--${b}\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--${b}\r\nContent-Type: message/rfc822\r\n\r\n${inner}\r\n--${b}--\r\n`;
  const input = Buffer.from(ndr(ndr(report, 'n1'), 'n2'), 'latin1');
  const r = mustParse(input);
  assert.equal(r.ndrWrapped, true);
  assert.equal(r.envelope.sender, 'carol@example.org');
  assert.equal(r.wrapper.messageId, 'jr-inbound-0001@hub01.example.com');
  const direct = mustParse(fixture('exchange-inbound.eml'));
  assert.ok(r.originals[0]?.bytes.equals(direct.originals[0]?.bytes ?? Buffer.alloc(0)));
  assert.equal(r.originals[0]?.bytes.buffer, input.buffer, 'still a view of the input after two unwraps');
});

// ---------------------------------------------------------------------------
// Robustness and bounds

test('never throws on truncations of every fixture (CRLF and LF)', () => {
  let runs = 0;
  for (const name of fixtureNames) {
    const raw = fixture(name);
    const lf = Buffer.from(raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    for (const src of [raw, lf]) {
      for (let cut = 0; cut <= src.length; cut++) {
        const r = parseJournalReport(src.subarray(0, cut));
        assertWellFormed(r);
        runs++;
      }
    }
  }
  assert.ok(runs > 10_000);
});

test('never throws on random garbage or mutated fixtures', () => {
  const rand = rng(0x5eed);
  const alphabet = Buffer.from('\r\n\r\n--b1 :;=<>@"\\()abcXMS-Journal-Report\t\x00\xff', 'latin1');
  for (let i = 0; i < 1500; i++) {
    const len = Math.floor(rand() * 3000);
    const buf = Buffer.alloc(len);
    const mimeish = rand() < 0.5;
    for (let j = 0; j < len; j++) {
      buf[j] = mimeish ? (alphabet[Math.floor(rand() * alphabet.length)] ?? 0) : Math.floor(rand() * 256);
    }
    const prefix = rand() < 0.5 ? 'X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n' : '';
    assertWellFormed(parseJournalReport(Buffer.concat([Buffer.from(prefix, 'latin1'), buf])));
  }
  for (const name of fixtureNames) {
    const raw = fixture(name);
    for (let i = 0; i < 150; i++) {
      const copy = Buffer.from(raw);
      const flips = 1 + Math.floor(rand() * 10);
      for (let f = 0; f < flips; f++) copy[Math.floor(rand() * copy.length)] = Math.floor(rand() * 256);
      assertWellFormed(parseJournalReport(copy));
    }
  }
  // odd inputs that are not Buffers at all
  assert.equal(parseJournalReport(Buffer.alloc(0)), null);
  assert.equal(parseJournalReport(undefined as unknown as Buffer), null);
  assert.equal(parseJournalReport('X-MS-Journal-Report:\r\n\r\n' as unknown as Buffer)?.kind, 'exchange');
});

test('bounded on deep multipart nesting', () => {
  const depth = 5000;
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    open += `--n${i}\r\nContent-Type: multipart/mixed; boundary=n${i + 1}\r\n\r\n`;
    close = `--n${i}--\r\n${close}`;
  }
  const text = `X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=n0\r\n\r\n${open}${close}`;
  const r = mustParse(Buffer.from(text, 'latin1'));
  assert.ok(r.problems.includes('mime nesting too deep'), JSON.stringify(r.problems));

  // the same without a journal header: the NDR search is bounded as well
  assert.equal(parseJournalReport(Buffer.from(text.replace('X-MS-Journal-Report:\r\n', ''), 'latin1')), null);
});

test('bounded on deep message/rfc822 nesting (NDR inside NDR inside …)', () => {
  let msg = 'Subject: innermost\r\n\r\nhello\r\n';
  for (let i = 0; i < 3000; i++) {
    msg = `Content-Type: multipart/report; boundary=r${i}\r\n\r\n--r${i}\r\nContent-Type: message/rfc822\r\n\r\n${msg}\r\n--r${i}--\r\n`;
  }
  assert.equal(parseJournalReport(Buffer.from(msg, 'latin1')), null);
});

test('bounded on the number of parts', () => {
  let body = '--p\r\nContent-Type: text/plain\r\n\r\nSender: a@example.com\r\nTo: b@example.com\r\n';
  for (let i = 0; i < 5000; i++) body += `--p\r\nContent-Type: message/rfc822\r\n\r\nSubject: ${i}\r\n\r\nx\r\n`;
  body += '--p--\r\n';
  const r = mustParse(Buffer.from(`X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n${body}`, 'latin1'));
  assert.ok(r.problems.includes('mime part limit reached'));
  assert.ok(r.originals.length < 1000);
  assert.equal(r.envelope.sender, 'a@example.com');
});

test('bounded on huge envelopes: many recipients, many problems', () => {
  let env = 'Content-Type: text/plain\r\n\r\nSender: a@example.com\r\n';
  for (let i = 0; i < 20000; i++) env += `To: member${i}@example.com, Expanded: big@example.com\r\n`;
  for (let i = 0; i < 500; i++) env += `#garbage ${i}\r\n`;
  const r = mustParse(buildReport(env, `Content-Type: message/rfc822\r\n\r\n${ORIGINAL}--b1--\r\n`));
  assert.equal(r.envelope.recipients.length, 20000);
  assert.equal(r.problems.length, 101);
  assert.equal(r.problems[100], 'too many problems');
});

test('Exchange 2003 list: a long Recipients line followed by one address per line keeps every address intact', () => {
  const first = Array.from({ length: 6 }, (_, i) => `member${i}@example.com`).join(', ');
  assert.ok(`Recipients: ${first}`.length > 70);
  const env = `Content-Type: text/plain\r\n\r\nSender: a@example.com\r\nMessage-ID: <x@y>\r\nRecipients: ${first}\r\nlast1@example.com\r\n<last2@example.com>\r\n`;
  const r = mustParse(buildReport(env, `Content-Type: message/rfc822\r\n\r\n${ORIGINAL}--b1--\r\n`));
  assert.equal(r.envelope.style, 'exchange2003');
  assert.deepEqual(
    r.envelope.recipients.map((x) => x.address),
    [...Array.from({ length: 6 }, (_, i) => `member${i}@example.com`), 'last1@example.com', 'last2@example.com'],
  );
  assert.deepEqual(r.problems, []);
});

test('bounded on a pathologically folded envelope line', () => {
  let env = 'Content-Type: text/plain\r\n\r\nSender: a@example.com\r\nTo: b@example.com\r\nSubject: x';
  env += '\r\n folded continuation text'.repeat(150_000);
  env += '\r\nCc: c@example.com\r\n';
  const r = mustParse(buildReport(env, `Content-Type: message/rfc822\r\n\r\n${ORIGINAL}--b1--\r\n`));
  assert.ok((r.envelope.subject ?? '').length <= 64 * 1024);
  assert.deepEqual(r.envelope.recipients.map((x) => x.address), ['b@example.com', 'c@example.com']);
  assert.deepEqual(r.problems, ['envelope line too long']);
});
