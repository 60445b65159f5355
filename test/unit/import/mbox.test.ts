// mbox reader: separators, mboxrd/mboxo unquoting, CRLF, empty, truncated and garbage files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { readMbox, type MboxItem } from '../../../core/import/mbox.ts';

const fx = (name: string): string => fileURLToPath(new URL(`../../fixtures/import/${name}`, import.meta.url));

async function all(it: AsyncIterable<MboxItem>): Promise<MboxItem[]> {
  const out: MboxItem[] = [];
  for await (const m of it) out.push(m);
  return out;
}
const ok = (items: MboxItem[]): string[] => items.map((m) => (m.ok ? m.bytes.toString('latin1') : `FAILED ${m.reason}`));

test('mboxrd: splits after blank lines only, removes one level of ">From" quoting and the separator line', async () => {
  const items = await all(readMbox(fx('mboxrd.mbox')));
  assert.equal(items.length, 3);
  const [a, b, c] = ok(items);
  assert.equal(a, 'From: alice@example.com\nTo: bob@example.com\nSubject: one\nMessage-ID: <one@example.com>\n\nHello Bob.\nFrom the archive: quoted once\n>From here: quoted twice\nFrom inside a paragraph is not a separator\n');
  assert.equal(b, 'From: carol@example.com\nTo: bob@example.com\nSubject: two\nMessage-ID: <two@example.com>\n\nSecond message.\n\nFrom after a blank line, quoted\n');
  assert.equal(c, 'From: dave@example.com\nTo: bob@example.com\nSubject: three\nMessage-ID: <three@example.com>\n\nLast one, no trailing blank line.\n');
  assert.deepEqual(items.map((m) => m.offset), [0, 248, 435]);
});

test('mboxo: only ">From" is unquoted; ">>From" keeps its quoting', async () => {
  const [m] = ok(await all(readMbox(fx('mboxo.mbox'), { format: 'mboxo' })));
  assert.equal(m, 'From: erin@example.com\nSubject: mboxo\n\nFrom quoted in mboxo\n>>From stays double-quoted in mboxo\n');
  const [rd] = ok(await all(readMbox(fx('mboxo.mbox'), { format: 'mboxrd' })));
  assert.match(rd ?? '', /\n>From stays double-quoted/);
});

test('CRLF mailboxes keep CRLF line endings and drop the CRLF separator line', async () => {
  const items = ok(await all(readMbox(fx('crlf.mbox'))));
  assert.deepEqual(items, [
    'From: frank@example.com\r\nSubject: crlf one\r\n\r\nLine one.\r\nFrom quoted\r\n',
    'From: grace@example.com\r\nSubject: crlf two\r\n\r\nLine two.\r\n',
  ]);
});

test('an empty file holds no messages and no failures', async () => {
  assert.deepEqual(await all(readMbox(fx('empty.mbox'))), []);
});

test('a truncated file: complete messages are read, the cut one is a failure with its offset', async () => {
  const items = await all(readMbox(fx('truncated.mbox')));
  assert.equal(items.length, 2);
  assert.equal(items[0]?.ok, true);
  const bad = items[1];
  assert.ok(bad && !bad.ok);
  assert.equal(bad.offset, 248);
  assert.match(bad.reason, /truncated/);
});

test('binary garbage is one failure at offset 0, never a message', async () => {
  const items = await all(readMbox(fx('garbage.bin')));
  assert.equal(items.length, 1);
  assert.ok(items[0] && !items[0].ok);
  assert.equal(items[0].offset, 0);
  assert.match(items[0].reason, /not an mbox message/);
});

test('text before the first From line is reported; the messages after it are read', async () => {
  const items = await all(readMbox(fx('leading-garbage.mbox')));
  assert.equal(items.length, 2);
  assert.ok(items[0] && !items[0].ok && items[0].offset === 0);
  assert.ok(items[1]?.ok);
  assert.match(items[1].bytes.toString(), /^From: dave@example.com/);
});

test('an empty message between two From lines is a failure', async () => {
  const items = await all(readMbox(fx('empty-message.mbox')));
  assert.equal(items.length, 2);
  assert.ok(items[0] && !items[0].ok);
  assert.match(items[0].reason, /empty/);
  assert.ok(items[1]?.ok);
});

test('a message over the size bound is a failure and the next one is still read', async () => {
  const big = 'x'.repeat(5000);
  const text = `From a@b Mon Jan  1 00:00:00 2024\nSubject: big\n\n${big}\n\nFrom c@d Mon Jan  1 00:00:00 2024\nSubject: small\n\nok\n`;
  const items = await all(readMbox(Readable.from([Buffer.from(text)]), { maxBytes: 1000 }));
  assert.equal(items.length, 2);
  assert.ok(items[0] && !items[0].ok);
  assert.match(items[0].reason, /larger than 1000 bytes/);
  assert.equal(items[1]?.ok && items[1].bytes.toString(), 'Subject: small\n\nok\n');
});

test('chunk boundaries anywhere give the same messages (one byte at a time)', async () => {
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(fx('mboxrd.mbox'));
  const whole = ok(await all(readMbox(fx('mboxrd.mbox'))));
  const split = ok(await all(readMbox(Readable.from([...bytes].map((b) => Buffer.from([b]))))));
  assert.deepEqual(split, whole);
});

test('a very long line (no newline for 200 KiB) is kept whole and is never taken for a separator', async () => {
  const long = 'y'.repeat(200 * 1024);
  const text = `From a@b Mon Jan  1 00:00:00 2024\nSubject: long\n\n${long}From not-a-separator\n`;
  const items = await all(readMbox(Readable.from([Buffer.from(text)])));
  assert.equal(items.length, 1);
  assert.equal(items[0]?.ok && items[0].bytes.toString(), `Subject: long\n\n${long}From not-a-separator\n`);
});

test('round trip over the SpamAssassin corpus: mboxrd-quoted, split again, every message byte-identical', async () => {
  const { loadCorpus } = await import('../../helpers/corpus.ts');
  const corpus = loadCorpus().filter((m) => m.length > 0 && m[m.length - 1] === 0x0a);
  const parts: Buffer[] = [];
  let quoted = 0;
  for (const m of corpus) {
    parts.push(Buffer.from('From corpus@example.test Mon Jan  1 00:00:00 2024\n'));
    const text = m.toString('latin1').replace(/^(>*From )/gm, (_all, p: string) => {
      quoted++;
      return '>' + p;
    });
    parts.push(Buffer.from(text, 'latin1'), Buffer.from('\n'));
  }
  const items = await all(readMbox(Readable.from([Buffer.concat(parts)])));
  assert.equal(items.length, corpus.length);
  assert.ok(quoted > 0, 'the corpus has From lines in bodies');
  items.forEach((it, i) => assert.ok(it.ok && it.bytes.equals(corpus[i] as Buffer), `message ${i}`));
});
