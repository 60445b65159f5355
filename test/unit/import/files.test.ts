// Maildir/Maildir++ and EML readers: nested folders, modified UTF-7 names, broken files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeModifiedUtf7, maildirFolder, readEml, readMaildir, type FileItem } from '../../../core/import/files.ts';

const fx = (name: string): string => fileURLToPath(new URL(`../../fixtures/import/${name}`, import.meta.url));

async function all(it: AsyncIterable<FileItem>): Promise<FileItem[]> {
  const out: FileItem[] = [];
  for await (const m of it) out.push(m);
  return out;
}
const subject = (i: FileItem): string => (i.ok ? /Subject: ([^\r\n]*)/.exec(i.bytes.toString())?.[1] ?? '?' : `FAILED ${i.reason}`);

test('Maildir++: cur and new of the inbox and every ".A.B" folder, with folder names', async () => {
  const items = await all(readMaildir(fx('maildir')));
  const good = items.filter((i) => i.ok).map((i) => `${i.folder ?? '(inbox)'}: ${subject(i)}`).sort();
  assert.deepEqual(good, ['(inbox): inbox one', '(inbox): inbox two', 'Work/Projects: projects one', 'Work: work one', 'Été: ete one']);
  const bad = items.filter((i) => !i.ok);
  assert.equal(bad.length, 1);
  assert.match(bad[0]?.path ?? '', /\.Work\/cur\/1700000005/);
  assert.match(subject(bad[0] as FileItem), /empty/);
});

test('nested (non-++) Maildirs map directories to folders', async () => {
  const items = await all(readMaildir(fx('maildir-nested')));
  assert.deepEqual(items.map((i) => `${i.folder ?? '(inbox)'}: ${subject(i)}`).sort(), ['(inbox): nested inbox', 'Archive/2023: nested one']);
});

test('a directory without any Maildir is one failure', async () => {
  const items = await all(readMaildir(fx('eml')));
  assert.equal(items.length, 1);
  assert.match(subject(items[0] as FileItem), /No Maildir found/);
});

test('a file given as a Maildir is one failure', async () => {
  const items = await all(readMaildir(fx('mboxrd.mbox')));
  assert.equal(items.length, 1);
  assert.match(subject(items[0] as FileItem), /Not a directory/);
});

test('EML: every *.eml (any case) under the tree, recursively; other files ignored; empty file fails', async () => {
  const items = await all(readEml(fx('eml')));
  assert.deepEqual(items.map(subject).sort(), ['FAILED File is empty', 'eml a', 'eml b', 'eml c']);
  const b = items.find((i) => subject(i) === 'eml b');
  assert.ok(b?.ok && b.bytes.includes('\r\n'), 'CRLF kept as in the file');
});

test('EML: a single file path is read as one message', async () => {
  const items = await all(readEml(fx('eml/a.eml')));
  assert.deepEqual(items.map(subject), ['eml a']);
});

test('oversized files are failures, not messages', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-eml-'));
  try {
    writeFileSync(join(dir, 'big.eml'), 'Subject: big\n\n' + 'x'.repeat(2000));
    const items = await all(readEml(dir, { maxBytes: 1000 }));
    assert.equal(items.length, 1);
    assert.match(subject(items[0] as FileItem), /larger than 1000 bytes/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('modified UTF-7 folder names decode; malformed ones stay as they are', () => {
  assert.equal(decodeModifiedUtf7('&AMk-t&AOk-'), 'Été');
  assert.equal(decodeModifiedUtf7('A&-B'), 'A&B');
  assert.equal(decodeModifiedUtf7('&AM-x'), '&AM-x');
  assert.equal(maildirFolder('.INBOX'), null);
  assert.equal(maildirFolder(''), null);
  assert.equal(maildirFolder('.Sent'), 'Sent');
});
