// The export writer over a stand-in archive: a message larger than the in-memory bound goes through the
// staging file and still comes out byte-identical (mbox and zip); a message whose bytes do not match the
// archive's SHA-256, or whose blob is missing, is left out (listed as an error line), never written half.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { STAGE_IN_MEMORY, writeExport } from '../../../core/export/writer.ts';
import { readMbox } from '../../../core/import/mbox.ts';
import type { ArchiveEntry, ArchiveStore, MessageRecord } from '../../../core/storage/types.ts';
import type { Selected } from '../../../core/export/selection.ts';
import type { ManifestLine } from '../../../core/export/manifest.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A big message with "From " lines spread through it, and no final newline. */
const BIG = Buffer.concat([
  Buffer.from('From: big@example.com\r\nSubject: big\r\n\r\n'),
  Buffer.from('From the body of a big message, line after line\r\n'.repeat(Math.ceil((STAGE_IN_MEMORY + 1024) / 50))),
  Buffer.from('no final newline'),
]);
const SMALL = Buffer.from('From: small@example.com\nSubject: small\n\n>From quoted\n');
const DAMAGED = Buffer.from('Subject: damaged\n\nthe archive recorded other bytes\n');

function fakeArchive(): { archive: ArchiveStore; entries: Selected[] } {
  const messages = new Map<string, MessageRecord>();
  const blobs = new Map<string, Buffer>();
  const entries: Selected[] = [];
  const add = (uid: number, bytes: Buffer, blobId = sha(bytes), stored: Buffer | null = bytes): void => {
    const m: MessageRecord = {
      id: `m${uid}`, blobId, size: bytes.length, archivedAt: '2026-01-01T00:00:00.000Z', date: null, from: '', to: '', cc: '', subject: `m${uid}`,
      messageIdHeader: null, flags: [], captures: [{ id: `c${uid}`, listener: 'smtp', receivedAt: '2026-01-01T00:00:00.000Z', mailFrom: 'a@b', rcptTo: ['c@d'], client: '', helo: '' }],
    };
    messages.set(m.id, m);
    if (stored) blobs.set(blobId, stored);
    const entry: ArchiveEntry = { user: 'alice', folder: 'Inbox', uid, messageId: m.id, internalDate: '2026-01-01T00:00:00.000Z', size: bytes.length, date: null, from: '', subject: m.subject };
    entries.push({ ok: true, entry, message: null });
  };
  add(1, SMALL);
  add(2, BIG);
  add(3, DAMAGED, sha(Buffer.from('something else')), Buffer.concat([DAMAGED]));
  add(4, Buffer.from('Subject: gone\n\nblob missing\n'), undefined, null);
  entries.push({ ok: false, user: 'alice', folder: 'Inbox', uid: 5, error: 'Entry points to missing message "m5"' });
  const archive = {
    getMessage: async (id: string) => messages.get(id) ?? null,
    // Served in 64 KiB chunks, as the store does.
    openBlob: async (id: string) => {
      const b = blobs.get(id);
      if (!b) return null;
      const chunks: Buffer[] = [];
      for (let i = 0; i < b.length; i += 65536) chunks.push(b.subarray(i, i + 65536));
      return Readable.from(chunks);
    },
  } as unknown as ArchiveStore;
  return { archive, entries };
}

async function run(format: 'mbox' | 'zip'): Promise<{ dir: string; result: Awaited<ReturnType<typeof writeExport>>; failures: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-export-writer-'));
  const { archive, entries } = fakeArchive();
  const failures: string[] = [];
  const result = await writeExport({
    archive, dir, format, signal: new AbortController().signal,
    header: { type: 'export', version: 1, id: '0123456789abcdef', format, selection: { user: 'alice' }, createdAt: '2026-01-02T00:00:00.000Z', createdBy: 'admin-token' },
    entries: (async function* () { yield* entries; })(),
    progress: { selected: () => undefined, exported: () => undefined, failed: (where, error) => failures.push(`${where}: ${error}`) },
  });
  return { dir, result, failures };
}

function checkManifest(text: string): void {
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as ManifestLine);
  assert.deepEqual(lines.map((l) => l.type), ['export', 'message', 'message', 'error', 'error', 'error', 'end']);
  assert.deepEqual(lines.at(-1), { type: 'end', messages: 2, bytes: SMALL.length + BIG.length, errors: 3 });
}

test('mbox: the big message through the staging file, byte-identical; damaged and missing ones left out', async () => {
  const { dir, result, failures } = await run('mbox');
  try {
    assert.deepEqual(result.counts, { selected: 5, exported: 2, failed: 3, bytes: SMALL.length + BIG.length });
    assert.equal(failures.length, 3);
    assert.match(failures[0] ?? '', /alice\/Inbox\/3: The archived bytes do not match/);
    assert.match(failures[1] ?? '', /alice\/Inbox\/4: The message's bytes \(blob [0-9a-f]+\) are missing/);
    const box = readFileSync(join(dir, 'export.mbox'));
    assert.equal(sha(box), result.file.sha256);
    const back: Buffer[] = [];
    for await (const m of readMbox(join(dir, 'export.mbox'))) if (m.ok) back.push(m.bytes);
    assert.deepEqual(back.map(sha), [sha(SMALL), sha(BIG)]);
    assert.ok(!box.includes('the archive recorded other bytes'), 'damaged bytes are never written');
    checkManifest(readFileSync(join(dir, 'manifest.jsonl'), 'utf8'));
    assert.deepEqual(readdirSync(dir).sort(), ['SHA256SUMS', 'export.mbox', 'manifest.jsonl'], 'no staging file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zip: the same messages as entries, with the manifest and SHA256SUMS last', async () => {
  const { dir, result } = await run('zip');
  try {
    const zip = await yauzl.openPromise(join(dir, 'export.zip'), { lazyEntries: true });
    const got = new Map<string, Buffer>();
    for await (const e of zip.eachEntry()) {
      const parts: Buffer[] = [];
      for await (const c of await zip.openReadStreamPromise(e)) parts.push(c as Buffer);
      got.set(e.fileName, Buffer.concat(parts));
    }
    zip.close();
    assert.deepEqual([...got.keys()], ['alice/Inbox/1.eml', 'alice/Inbox/2.eml', 'manifest.jsonl', 'SHA256SUMS']);
    assert.equal(sha(got.get('alice/Inbox/2.eml') ?? Buffer.alloc(0)), sha(BIG));
    assert.equal(sha(got.get('manifest.jsonl') ?? Buffer.alloc(0)), result.manifest.sha256);
    checkManifest(got.get('manifest.jsonl')?.toString() ?? '');
    assert.equal(got.get('SHA256SUMS')?.toString(), `${sha(SMALL)}  alice/Inbox/1.eml\n${sha(BIG)}  alice/Inbox/2.eml\n${result.manifest.sha256}  manifest.jsonl\n`);
    assert.equal(sha(readFileSync(join(dir, 'export.zip'))), result.file.sha256);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a cancelled export stops at the next message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-export-writer-'));
  try {
    const { archive, entries } = fakeArchive();
    const ac = new AbortController();
    await assert.rejects(writeExport({
      archive, dir, format: 'zip', signal: ac.signal,
      header: { type: 'export', version: 1, id: '0123456789abcdef', format: 'zip', selection: { user: 'alice' }, createdAt: '2026-01-02T00:00:00.000Z', createdBy: 'admin-token' },
      entries: (async function* () { yield* entries; })(),
      progress: { selected: () => undefined, exported: () => ac.abort(new Error('cancelled by a test')), failed: () => undefined },
    }), /cancelled by a test/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
