// Reconcile: compares, folder by folder, the archive's entries with the index's up to each folder's
// cursor, indexes what is missing, removes what the archive no longer holds (deleted or purged mail,
// folders gone), and drops documents no entry uses. The job kind `search-reconcile` runs it; status
// reports what it found. Trusts the archive as the truth; hands on counts.
import type { ArchiveStore, ArchiveEntry } from '../../core/storage/types.ts';
import type { IndexDb } from './index-db.ts';
import type { IndexWrites } from './index-writer.ts';

export interface ReconcileResult {
  folders: number;
  checked: number;
  missing: number;
  extra: number;
  orphanDocuments: number;
}

export interface ReconcileDeps {
  archive: ArchiveStore;
  db: IndexDb;
  writes: IndexWrites;
  archives(): Promise<string[]>;
  /** Index these entries of a folder (below its cursor) now. */
  indexEntries(user: string, folder: string, entries: ArchiveEntry[]): Promise<void>;
  signal?: AbortSignal;
  progress?(detail: string): void;
}

const PAGE = 2000;

export async function reconcile(deps: ReconcileDeps): Promise<ReconcileResult> {
  const { archive, db } = deps;
  const result: ReconcileResult = { folders: 0, checked: 0, missing: 0, extra: 0, orphanDocuments: 0 };
  const seen = new Set<string>();
  for (const user of await deps.archives()) {
    for (const f of await archive.folders(user)) {
      if (deps.signal?.aborted) return result;
      seen.add(`${user}\u0000${f.folder}`);
      result.folders++;
      const through = db.cursor(user, f.folder);
      let after = 0;
      let indexedAfter = 0;
      let pendingIndexed: number[] = [];
      let lastArchived = 0;
      for (;;) {
        const page = (await archive.listEntries(user, f.folder, { afterUid: after, limit: PAGE })).filter((e) => e.uid <= through);
        const end = page.length > 0 ? (page[page.length - 1] as ArchiveEntry).uid : through;
        if (page.length > 0) lastArchived = end;
        // The index's UIDs over the same range.
        while (indexedAfter < end) {
          const uids = db.entryUids(user, f.folder, indexedAfter, PAGE);
          if (uids.length === 0) {
            indexedAfter = end;
            break;
          }
          pendingIndexed.push(...uids);
          indexedAfter = uids[uids.length - 1] as number;
        }
        const inRange = pendingIndexed.filter((u) => u <= end);
        pendingIndexed = pendingIndexed.filter((u) => u > end);
        const archived = new Set(page.map((e) => e.uid));
        const indexed = new Set(inRange);
        const missing = page.filter((e) => !indexed.has(e.uid));
        const extra = inRange.filter((u) => !archived.has(u));
        result.checked += page.length;
        if (missing.length > 0) {
          await deps.indexEntries(user, f.folder, missing);
          result.missing += missing.length;
        }
        if (extra.length > 0) {
          await deps.writes.removeEntries(user, f.folder, extra);
          result.extra += extra.length;
        }
        deps.progress?.(`${user}/${f.folder}: ${result.checked} checked, ${result.missing} missing, ${result.extra} extra`);
        if (page.length < PAGE || end >= through) break;
        after = end;
      }
      // Indexed entries past the archive's last one up to the cursor (deleted at the end of the folder).
      const stale = db.entryUids(user, f.folder, lastArchived, 10_000_000).filter((u) => u <= through);
      if (stale.length > 0) {
        await deps.writes.removeEntries(user, f.folder, stale);
        result.extra += stale.length;
      }
    }
  }
  // Folders (or whole archives) the index knows and the archive no longer has.
  for (const c of db.folderCounts()) {
    if (seen.has(`${c.user}\u0000${c.folder}`)) continue;
    const uids = db.entryUids(c.user, c.folder, 0, 10_000_000);
    await deps.writes.removeEntries(c.user, c.folder, uids);
    result.extra += uids.length;
  }
  for (;;) {
    const n = await deps.writes.dropOrphans(5000);
    result.orphanDocuments += n;
    if (n < 5000) break;
  }
  return result;
}
