// Folder indexes: read incrementally from the archive, shared through an LRU bounded by count and by
// estimated bytes (the index just asked for is never the one dropped).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FolderIndexes } from '../../../../plugins/imap/folder-index.ts';
import type { ArchiveEntry, ArchiveStore } from '../../../../core/storage/types.ts';

function fakeArchive(sizes: Record<string, number>): { archive: ArchiveStore; scans: string[] } {
  const scans: string[] = [];
  const archive = {
    async listEntries(user: string, folder: string, o: { afterUid: number; limit: number }): Promise<ArchiveEntry[]> {
      scans.push(folder);
      const n = sizes[folder] ?? 0;
      const out: ArchiveEntry[] = [];
      for (let uid = o.afterUid + 1; uid <= n && out.length < o.limit; uid++) {
        out.push({ user, folder, uid, messageId: `m-${folder}-${uid}`, internalDate: '2024-01-01T00:00:00.000Z', size: 100, date: null, from: '', subject: '' });
      }
      return out;
    },
  } as unknown as ArchiveStore;
  return { archive, scans };
}

test('indexes beyond the byte bound are dropped, least recently used first, never the one asked for', async () => {
  const { archive, scans } = fakeArchive({ big: 10_000, small: 10, other: 10 });
  // 10,000 entries are estimated at about 1.2 MB: a 1 MB bound keeps the big index alone.
  const indexes = new FolderIndexes(archive, 200, 1024 * 1024);
  const big = await indexes.get('u', 'big');
  assert.equal(big.uids.length, 10_000);
  await indexes.get('u', 'small');
  const scansBefore = scans.length;
  const again = await indexes.get('u', 'big');
  assert.notEqual(again, big, 'the big index was dropped when the small one was added');
  assert.equal(again.uids.length, 10_000);
  assert.ok(scans.length > scansBefore, 'and read again');
  const small = await indexes.get('u', 'small');
  assert.equal(small.uids.length, 10);
});

test('indexes within the bound are shared', async () => {
  const { archive } = fakeArchive({ a: 50, b: 50 });
  const indexes = new FolderIndexes(archive);
  const a = await indexes.get('u', 'a');
  await indexes.get('u', 'b');
  assert.equal(await indexes.get('u', 'a'), a);
  assert.equal(a.entry(7)?.messageId, 'm-a-7');
  assert.equal(a.entry(51), null);
});
