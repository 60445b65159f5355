// The message model on bare-LF messages (the SpamAssassin corpus files are LF-only): the IMAP data of
// an LF message equals that of its CRLF view in every field (ENVELOPE, BODY, BODYSTRUCTURE sizes and
// line counts, part index, header size, size), every section and partial served from the LF bytes
// equals the same section of the CRLF view, and SEARCH BODY/TEXT finds the same words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { computeImapData, parseSection, sectionOf, textMatches, type ImapMessageData, type PartIndex } from '../../../../plugins/imap/message/index.ts';
import { loadCorpus } from '../../../helpers/corpus.ts';

const pieces = (b: Buffer, n: number): Buffer[] => Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, (i + 1) * n));
const toView = (b: Buffer): Buffer => Buffer.from(b.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'), 'latin1');
const corpus = loadCorpus();

async function section(data: ImapMessageData, bytes: Buffer, text: string, chunk: number, partial?: { start: number; length: number }): Promise<Buffer> {
  const spec = parseSection(text);
  assert.ok(spec, text);
  const { size, stream } = await sectionOf(data, spec, async () => Readable.from(pieces(bytes, chunk)), partial);
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  const got = Buffer.concat(parts);
  assert.equal(got.length, size, `${text}: the size announced is the size sent`);
  return got;
}

/** Section names of every part of a message (1, 1.MIME, 2.1.TEXT …), bounded. */
function sectionNames(p: PartIndex, prefix: string, out: string[]): string[] {
  const kids = p.p ?? (p.m ? [p.m] : []);
  kids.forEach((k, i) => {
    if (out.length > 40) return;
    const name = `${prefix}${i + 1}`;
    out.push(name, `${name}.MIME`);
    if (k.m) out.push(`${name}.HEADER`, `${name}.TEXT`, `${name}.HEADER.FIELDS (SUBJECT FROM)`);
    if (!p.m || p.p) sectionNames(k.m ?? k, `${name}.`, out);
  });
  return out;
}

test('the corpus is LF-only: this is what the CRLF view is for', () => {
  const lfOnly = corpus.filter((m) => m.includes(0x0a) && !m.includes('\r\n'));
  assert.ok(lfOnly.length > corpus.length * 0.9, `${lfOnly.length} of ${corpus.length} corpus messages use bare LF`);
});

test('IMAP data of every corpus message (LF) equals that of its CRLF view, in any chunking', async () => {
  for (const [i, raw] of corpus.entries()) {
    const view = toView(raw);
    const a = await computeImapData(Readable.from(pieces(raw, i % 3 === 0 ? 4096 : 1000 + i)));
    const b = await computeImapData(Readable.from([view]));
    assert.deepEqual(a, b, `corpus message ${i}`);
    assert.equal(a.size, view.length);
  }
  for (const raw of corpus.filter((_, i) => i % 211 === 0)) {
    assert.deepEqual(await computeImapData(Readable.from(pieces(raw, 1))), await computeImapData(Readable.from([toView(raw)])), 'one byte at a time');
  }
});

test('every section and partial of LF corpus messages equals the CRLF view\'s', async () => {
  let multipart = 0;
  for (const raw of corpus.filter((_, i) => i % 13 === 0)) {
    const view = toView(raw);
    const data = await computeImapData(Readable.from([raw]));
    const root = data.parts as PartIndex;
    if (root.p) multipart++;
    const names = ['', 'HEADER', 'TEXT', '1', 'HEADER.FIELDS (SUBJECT)', 'HEADER.FIELDS.NOT (RECEIVED)', ...sectionNames(root, '', [])];
    for (const name of names) {
      const fromView = await section(data, view, name, 65536);
      assert.deepEqual(await section(data, raw, name, 777), fromView, `BODY[${name}]`);
      for (const partial of [{ start: 10, length: 50 }, { start: 0, length: 1 }, { start: Math.max(0, fromView.length - 5), length: 100 }]) {
        assert.deepEqual(await section(data, raw, name, 333, partial), fromView.subarray(partial.start, partial.start + partial.length), `BODY[${name}]<${partial.start}.${partial.length}>`);
      }
    }
    assert.deepEqual(await section(data, raw, '', 4096), view, 'BODY[] is the CRLF view');
  }
  assert.ok(multipart > 30, `multipart messages checked: ${multipart}`);
});

test('SEARCH BODY/TEXT finds the same words in an LF message as in its CRLF view', async () => {
  for (const raw of corpus.filter((_, i) => i % 97 === 0)) {
    const view = toView(raw);
    const data = await computeImapData(Readable.from([raw]));
    const words = raw.toString('latin1').split(/\s+/).filter((w) => /^[a-z]{6,}$/i.test(w));
    for (const w of [words[Math.floor(words.length / 2)] ?? 'nothing', words[words.length - 1] ?? 'nothing', 'zzqxnotthere']) {
      for (const where of ['BODY', 'TEXT'] as const) {
        const lf = await textMatches(async () => Readable.from(pieces(raw, 500)), data, where, w);
        const cr = await textMatches(async () => Readable.from([view]), data, where, w);
        assert.equal(lf, cr, `${where} ${w}`);
      }
    }
  }
  // A word that starts right after a line break is found (the CRLF view adds a byte before it).
  const raw = Buffer.from('Subject: s\n\nfirst\nsecond line\nthird\n', 'latin1');
  const data = await computeImapData(Readable.from([raw]));
  assert.equal(await textMatches(async () => Readable.from(pieces(raw, 2)), data, 'BODY', 'third'), true);
  assert.equal(await textMatches(async () => Readable.from(pieces(raw, 2)), data, 'TEXT', 'subject: s'), true);
});
