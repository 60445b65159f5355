// Index status: per archive, entries archived vs indexed, entries waiting (after each folder's cursor)
// and the age of the oldest of them, documents, failed extractions. Cheap enough for a 15-second
// gauge refresh: folder sizes come from the archive's folder records, indexed counts from one grouped
// query on a reader thread (a scan of the entries at a million messages stays off the event loop).
import type { ArchiveStore } from '../../core/storage/types.ts';
import { STATS_SQL, mergeDue, mergeFolderCounts, parseMergeState } from './index-db.ts';
import type { IndexReads } from './index-reader.ts';
import type { SearchIndexStatus, UserIndexStatus } from '../../core/app/search-service.ts';

export async function searchStatus(deps: { archive: ArchiveStore; reads: IndexReads; archives(): Promise<string[]> }): Promise<SearchIndexStatus> {
  const { archive, reads } = deps;
  const [countRows, cursorRows, docs, failures, merge] = await Promise.all([
    reads.all<{ user: string; folder: string; entries: number }>(STATS_SQL.counts, []),
    reads.all<{ user: string; folder: string; uid: number }>(STATS_SQL.cursors, []),
    reads.all<{ n: number }>(STATS_SQL.docs, []),
    reads.all<{ n: number }>(STATS_SQL.failures, []),
    reads.all<{ value: string }>(STATS_SQL.merge, []),
  ]);
  const counts = new Map(mergeFolderCounts(countRows, cursorRows).map((c) => [`${c.user}\u0000${c.folder}`, c]));
  const entries = countRows.reduce((n, r) => n + r.entries, 0);
  const out: SearchIndexStatus = {
    documents: docs[0]?.n ?? 0, archived: 0, indexed: 0, pending: 0, oldestPendingAt: null, failedExtractions: failures[0]?.n ?? 0,
    merging: mergeDue(parseMergeState(merge[0]?.value), entries), users: [],
  };
  for (const user of await deps.archives()) {
    const u: UserIndexStatus = { user, archived: 0, indexed: 0, pending: 0 };
    for (const f of await archive.folders(user)) {
      const c = counts.get(`${user}\u0000${f.folder}`);
      const cursor = c?.cursor ?? 0;
      u.archived += f.messages;
      u.indexed += c?.entries ?? 0;
      if (f.uidNext - 1 > cursor) {
        const first = await archive.listEntries(user, f.folder, { afterUid: cursor, limit: 1 });
        const oldest = first[0]?.internalDate;
        if (oldest) {
          u.pending += Math.max(1, f.messages - (c?.entries ?? 0));
          if (out.oldestPendingAt === null || oldest < out.oldestPendingAt) out.oldestPendingAt = oldest;
        }
      }
    }
    out.archived += u.archived;
    out.indexed += u.indexed;
    out.pending += u.pending;
    if (u.archived > 0 || u.indexed > 0) out.users.push(u);
  }
  return out;
}
