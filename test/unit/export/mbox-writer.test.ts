// mboxrd writer: quoting of "From " lines at every depth, From_ lines, and the round trip through the
// importer's reader (core/import/mbox.ts): every message comes back byte for byte, whatever its line
// endings, its final newline, or where the stream happens to split it into chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { readMbox } from '../../../core/import/mbox.ts';
import { MboxrdQuoter, NO_FINAL_NEWLINE_MARK, asctime, fromLine, hasNoFinalNewlineMark, mboxrdBody } from '../../../core/export/mbox-writer.ts';

/** An mbox of the messages as the exporter writes it, optionally cut into chunks of `chunk` bytes before quoting. */
function mbox(messages: Buffer[], chunk = 0): Buffer {
  const parts: Buffer[] = [];
  for (const m of messages) {
    const eol = m.length > 0 && m[m.length - 1] === 0x0a;
    parts.push(fromLine('sender@example.com', new Date(Date.UTC(2026, 0, 2, 3, 4, 5)), !eol));
    if (chunk <= 0) {
      parts.push(mboxrdBody(m));
      continue;
    }
    const q = new MboxrdQuoter();
    for (let i = 0; i < m.length; i += chunk) parts.push(...q.push(m.subarray(i, i + chunk)));
    parts.push(...q.end());
    assert.equal(q.endsWithNewline(), eol);
    parts.push(Buffer.from(eol ? '\n' : '\n\n'));
  }
  return Buffer.concat(parts);
}

async function readBack(file: Buffer, readChunk = 7): Promise<Buffer[]> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < file.length; i += readChunk) pieces.push(file.subarray(i, i + readChunk));
  const out: Buffer[] = [];
  for await (const item of readMbox(Readable.from(pieces))) {
    assert.ok(item.ok, item.ok ? '' : item.reason);
    out.push(item.bytes);
  }
  return out;
}

const TRICKY = [
  'From: a@example.com\nSubject: LF\n\nFrom the start of a line\n>From quoted once\n>>From quoted twice\n>>>From thrice\nnot From here\n',
  'From: b@example.com\r\nSubject: CRLF\r\n\r\nFrom at line start\r\n>From\r\n>>From x\r\n\r\nFrom after a blank line\r\n',
  'From: c@example.com\nSubject: no final newline\n\nlast line without newline',
  'From: d@example.com\r\nSubject: CRLF without final newline\r\n\r\nFrom x\r\nend',
  'From: e@example.com\nSubject: ends in a blank line\n\nbody\n\n',
  'From: f@example.com\nSubject: ends in CR\n\nbody\r',
  'From x@y Thu Jan  1 00:00:00 1970\nFrom: g@example.com\n\nstarts with a From_ line of its own\n',
  'From: h@example.com\n\n>\n>>\n>Fro\n>From\nFrom\nFrom \n>From \n\n\n',
  'From: i@example.com\n\nends in a partial From line\n>>Fro',
  'From: j@example.com\n\nends right after quoting\nFrom ',
];

test('From_ line: sender (MAILER-DAEMON for none or a non-word), asctime in UTC, the no-final-newline mark', () => {
  const at = new Date(Date.UTC(2026, 2, 5, 7, 8, 9));
  assert.equal(asctime(at), 'Thu Mar  5 07:08:09 2026');
  assert.equal(fromLine('alice@example.com', at, false).toString(), 'From alice@example.com Thu Mar  5 07:08:09 2026\n');
  assert.equal(fromLine('', at, false).toString(), 'From MAILER-DAEMON Thu Mar  5 07:08:09 2026\n');
  assert.equal(fromLine('two words@x', at, false).toString(), 'From MAILER-DAEMON Thu Mar  5 07:08:09 2026\n');
  const marked = fromLine('a@b', at, true);
  assert.equal(marked.toString(), `From a@b Thu Mar  5 07:08:09 2026 ${NO_FINAL_NEWLINE_MARK}\n`);
  assert.ok(hasNoFinalNewlineMark(marked));
  assert.ok(hasNoFinalNewlineMark(Buffer.from(`From a@b Thu Mar  5 07:08:09 2026 ${NO_FINAL_NEWLINE_MARK}\r\n`)));
  assert.ok(!hasNoFinalNewlineMark(fromLine('a@b', at, false)));
});

test('quoting: one more ">" on every line that is ">"* then "From ", nothing else touched', () => {
  const q = (s: string): string => mboxrdBody(Buffer.from(s)).toString();
  assert.equal(q('From a\n'), '>From a\n\n');
  assert.equal(q('>From a\n>>From b\nFrom\nFromage\n >From\n'), '>>From a\n>>>From b\nFrom\nFromage\n >From\n\n');
  assert.equal(q('x\r\nFrom y\r\n'), 'x\r\n>From y\r\n\n');
  assert.equal(q('no newline'), 'no newline\n\n');
  assert.equal(q('>>'), '>>\n\n');
});

test('round trip through the importer: tricky bodies come back byte for byte (LF, CRLF, no final newline)', async () => {
  const messages = TRICKY.map((s) => Buffer.from(s, 'latin1'));
  for (const chunk of [0, 1, 2, 3, 5, 64]) {
    const back = await readBack(mbox(messages, chunk));
    assert.equal(back.length, messages.length, `chunk ${chunk}`);
    for (const [i, m] of messages.entries()) assert.ok(back[i]?.equals(m), `message ${i} with chunk ${chunk}: ${JSON.stringify(back[i]?.toString('latin1'))}`);
  }
});

test('round trip of generated messages: lines of ">" runs, "From", CR, LF and random bytes', async () => {
  const line = fc.oneof(
    fc.constantFrom('From ', '>From ', '>>From x', 'From', '>', '', '\r', 'Fro', '> From '),
    fc.string({ maxLength: 12 }),
    fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a).toString('latin1')),
  );
  const message = fc.tuple(fc.array(fc.tuple(line, fc.constantFrom('\n', '\r\n')), { minLength: 1, maxLength: 12 }), fc.boolean())
    .map(([lines, finalEol]) => {
      let s = 'Subject: x\n\n' + lines.map(([l, e]) => l + e).join('');
      if (!finalEol) s = s.replace(/\r?\n$/, '') + 'tail';
      return Buffer.from(s, 'latin1');
    });
  await fc.assert(fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 9 }), async (messages, chunk) => {
    const back = await readBack(mbox(messages, chunk), chunk + 3);
    assert.equal(back.length, messages.length);
    for (const [i, m] of messages.entries()) assert.ok(back[i]?.equals(m), `message ${i}`);
  }), { numRuns: 300 });
});

test('a long run of ">" is streamed, not held: memory per line start stays constant', () => {
  const q = new MboxrdQuoter();
  const out: Buffer[] = [];
  for (let i = 0; i < 64; i++) out.push(...q.push(Buffer.alloc(64 * 1024, 0x3e)));
  out.push(...q.push(Buffer.from('From x\n')), ...q.end());
  const text = Buffer.concat(out);
  assert.equal(text.length, 64 * 64 * 1024 + 1 + 7);
  assert.equal(text.subarray(-8).toString(), '>From x\n');
});
