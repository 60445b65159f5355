// Index status: per archive, entries archived vs indexed, entries waiting (after each folder's cursor)
// and the age of the oldest of them, documents, failed extractions. Cheap enough for a 15-second
// gauge refresh: folder sizes come from the archive's folder records, indexed counts from one query.
import type { ArchiveStore } from '../../core/storage/types.ts';
import type { IndexDb } from './index-db.ts';
import type { SearchIndexStatus, UserIndexStatus } from '../../core/app/search-service.ts';

export async function searchStatus(deps: { archive: ArchiveStore; db: IndexDb; archives(): Promise<string[]> }): Promise<SearchIndexStatus> {
  const { archive, db } = deps;
  const counts = new Map(db.folderCounts().map((c) => [`${c.user}\u0000${c.folder}`, c]));
  const out: SearchIndexStatus = { documents: db.documents(), archived: 0, indexed: 0, pending: 0, oldestPendingAt: null, failedExtractions: db.failedExtractions(), users: [] };
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
