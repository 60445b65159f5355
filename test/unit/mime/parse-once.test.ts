// The header block is parsed once per message and handed on: the offset-based field splitter matches a
// plain line-by-line reference of the documented unfolding rules on generated input; headerValues'
// per-block index answers like a scan and never serves a changed field list from an old index; the
// canonical hash computed from handed-on headers equals the one computed from the bytes alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { headerValues, parseHeaderBlock, summarize, type HeaderBlock, type HeaderField } from '../../../core/mime/headers.ts';
import { canonicalHash } from '../../../core/mime/canonical-hash.ts';
import { loadCorpus } from '../../helpers/corpus.ts';

/** The unfolding rules of headers.ts, written line by line (a field starts at a valid "name:"). */
function referenceFields(text: string): HeaderField[] {
  const out: HeaderField[] = [];
  let current: { name: string; parts: string[] } | null = null;
  let discarding = true;
  const finish = (): void => {
    if (!current) return;
    let value = current.parts.join('');
    if (value.startsWith(' ') || value.startsWith('\t')) value = value.slice(1);
    while (value.length > 0 && ' \t\r\n'.includes(value[value.length - 1] ?? '')) value = value.slice(0, -1);
    out.push({ name: current.name, value });
    current = null;
  };
  for (let line of text.split('\n')) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!discarding) current?.parts.push(line);
      continue;
    }
    finish();
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).replace(/[ \t]+$/, '') : '';
    if (name === '' || ![...name].every((c) => c.charCodeAt(0) >= 33 && c.charCodeAt(0) <= 126)) {
      discarding = true;
      continue;
    }
    discarding = false;
    current = { name, parts: [line.slice(colon + 1)] };
  }
  finish();
  return out;
}

function generated(count: number): Buffer[] {
  const pieces = ['Subject', 'To', 'x-Y', 'bad name', ':', ': ', ' ', '\t', '\r', '\n', '\r\n', 'a', 'é', '=?utf-8?q?x?=', '<a@b.example>', ',', '\u0000', '  '];
  let seed = 7;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    let s = '';
    for (let n = Math.floor(next() * 50); n > 0; n--) s += pieces[Math.floor(next() * pieces.length)];
    out.push(Buffer.from(s, 'utf8'));
  }
  return out;
}

test('the field splitter matches a line-by-line reference of the unfolding rules', () => {
  for (const raw of generated(5000)) {
    // The header block ends at the first empty line (LF or CRLF) that a line break follows.
    const lines = raw.toString('utf8').split('\n');
    const blank = lines.findIndex((l, i) => i < lines.length - 1 && (l === '' || l === '\r'));
    const header = (blank === -1 ? lines : lines.slice(0, blank)).join('\n');
    assert.deepEqual(parseHeaderBlock(raw).fields, referenceFields(header), JSON.stringify(raw.toString('utf8')));
  }
});

test('folded, malformed and edge-case lines unfold as documented', () => {
  const raw = Buffer.from('Subject: one\r\n  two\r\n\tthree  \r\nbad name: x\r\n continuation of a bad line\r\nX-Empty:\r\nX-Spaces:   \r\nTo : a@b\r\n: no name\r\n\r\nbody: not a field\r\n');
  assert.deepEqual(parseHeaderBlock(raw).fields, [
    { name: 'Subject', value: 'one  two\tthree' },
    { name: 'X-Empty', value: '' },
    { name: 'X-Spaces', value: '' },
    { name: 'To', value: 'a@b' },
  ]);
  // A line without a colon is not searched past its end (a colon on the next line does not count).
  assert.deepEqual(parseHeaderBlock(Buffer.from('no colon here\nX-A: 1\n\n')).fields, [{ name: 'X-A', value: '1' }]);
});

test('corpus messages: same fields as the reference, and the same summary through the index', () => {
  for (const raw of loadCorpus()) {
    const block = parseHeaderBlock(raw);
    const end = block.complete ? block.headerBytes : raw.length;
    const text = raw.subarray(0, end).toString(Buffer.from(raw.subarray(0, end)).toString('utf8').includes('\ufffd') ? 'latin1' : 'utf8');
    const headerText = text.replace(/\r?\n\r?\n[\s\S]*$/, '');
    if (!text.includes('\ufffd')) assert.deepEqual(block.fields, referenceFields(headerText));
    const scan = (name: string): string[] => block.fields.filter((f) => f.name.toLowerCase() === name).map((f) => f.value);
    for (const name of ['received', 'from', 'to', 'subject', 'message-id', 'x-nothing']) assert.deepEqual(headerValues(block, name.toUpperCase()), scan(name));
    assert.deepEqual(summarize(block), summarize({ ...block, fields: [...block.fields] }));
  }
});

test('headerValues: fresh arrays, and a replaced or grown field list is never answered from an old index', () => {
  const block: HeaderBlock = parseHeaderBlock(Buffer.from('To: a@x\r\nTo: b@x\r\nSubject: s\r\n\r\n'));
  const first = headerValues(block, 'to');
  assert.deepEqual(first, ['a@x', 'b@x']);
  first.push('mutated');
  assert.deepEqual(headerValues(block, 'TO'), ['a@x', 'b@x'], 'a caller changing its result changes nothing');
  block.fields.push({ name: 'to', value: 'c@x' });
  assert.deepEqual(headerValues(block, 'to'), ['a@x', 'b@x', 'c@x'], 'appended field');
  block.fields = [{ name: 'Subject', value: 'other' }];
  assert.deepEqual(headerValues(block, 'to'), [], 'replaced list');
  assert.deepEqual(headerValues(block, 'subject'), ['other']);
});

test('headerValues: bad input gives an empty list, never a throw', () => {
  const junk: unknown[] = [null, undefined, 42, 'To: a', {}, { fields: null }, { fields: [null, 5, { name: 3, value: 'x' }] }];
  for (const j of junk) assert.deepEqual(headerValues(j as HeaderBlock, 'to'), []);
  assert.deepEqual(headerValues({ fields: [{ name: 'To', value: 'a' }], headerBytes: 0, complete: true }, { toString: () => { throw new Error('x'); } } as unknown as string), []);
  assert.deepEqual(headerValues({ fields: [{ name: 'To', value: 7 as unknown as string }], headerBytes: 0, complete: true }, 'to'), ['7']);
});

test('the canonical hash from handed-on headers equals the hash from the bytes alone', () => {
  const cases = [...loadCorpus(), ...generated(2000), Buffer.from('Subject: x\r\n'), Buffer.alloc(0), Buffer.from('From sender Mon\r\nTo: a\r\n\r\nbody')];
  for (const raw of cases) {
    const parsed = parseHeaderBlock(raw.subarray(0, 1024 * 1024), 1024 * 1024);
    assert.deepEqual(canonicalHash(raw, parsed), canonicalHash(raw));
  }
  // An incomplete block (no blank line within the limit) is never trusted: the bytes are parsed again.
  const big = Buffer.concat([Buffer.from('Subject: a\r\nX-Long: '), Buffer.alloc(1024 * 1024 + 10, 'a'), Buffer.from('\r\n\r\nbody')]);
  const cut = parseHeaderBlock(big.subarray(0, 1024 * 1024), 1024 * 1024);
  assert.equal(cut.complete, false);
  assert.deepEqual(canonicalHash(big, cut), canonicalHash(big));
  // Handed-on headers that claim more header bytes than the message has are ignored too.
  const small = Buffer.from('To: a\r\n\r\nbody');
  assert.deepEqual(canonicalHash(small, { fields: [], headerBytes: 999, complete: true }), canonicalHash(small));
});

test('display text skips the encoded-word decoder only where it could not change anything', async () => {
  const { default: libmime } = await import('libmime');
  const clean = (s: string): string => s.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, ' ');
  const subjects = ['plain text', '=?utf-8?q?caf=C3=A9?= au lait', 'a __\u0000JOIN\u0000__ marker', 'nul\u0000byte', '=?x', 'ends with =?', ''];
  for (const subject of subjects) {
    const block = parseHeaderBlock(Buffer.from(`Subject: ${subject}\r\n\r\n`));
    const value = headerValues(block, 'subject')[0] ?? '';
    assert.equal(summarize(block).subject, clean(libmime.decodeWords(value)), JSON.stringify(subject));
  }
});
