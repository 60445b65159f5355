// The UIDs of one archive folder in ascending order (and per year, for the optional year split), with
// each entry's message id, size and dates, read incrementally from storage. Archive folders only grow and UIDs only increase, so a session's view
// of a mailbox is a prefix of this list: a snapshot is just a count. Indexes are shared between
// sessions through a bounded LRU; watchers hear about new entries (the `stored` hook) at once.
import type { ArchiveEntry, ArchiveStore, FolderStatus } from '../../core/storage/types.ts';

const PAGE = 5000;
/** Estimated bytes an index holds per entry (UID, message id string, size and dates). */
const ENTRY_BYTES = 120;
/** Indexes kept for folders no session has open are dropped beyond this many estimated bytes. */
const INDEX_CACHE_BYTES = 256 * 1024 * 1024;
/**
 * How long an index (or a folder list) with no `stored` announcement is trusted without a scan. New
 * entries of this process are announced at once; the age bounds what another writer could hide.
 */
const STALE_MS = 2000;

/** The year a message is filed under: its Date header when plausible, else when it was archived. */
export function yearOf(entry: Pick<ArchiveEntry, 'date' | 'internalDate'>): number {
  const now = new Date().getUTCFullYear();
  if (entry.date) {
    const y = new Date(entry.date).getUTCFullYear();
    if (Number.isInteger(y) && y >= 1970 && y <= now + 1) return y;
  }
  const y = new Date(entry.internalDate).getUTCFullYear();
  return Number.isInteger(y) ? y : 1970;
}

/** What FETCH and SEARCH need of an entry, kept in the index so they need no storage read. */
export interface EntryInfo {
  uid: number;
  messageId: string;
  size: number;
  /** Archive time (INTERNALDATE), ms since the epoch. */
  internalDate: number;
  /** Date header, ms since the epoch, or null. */
  date: number | null;
}

export class FolderIndex {
  readonly uids: number[] = [];
  readonly years = new Map<number, number[]>();
  private readonly messageIds: string[] = [];
  private readonly sizes: number[] = [];
  private readonly internalDates: number[] = [];
  private readonly dates: number[] = [];
  private lastUid = 0;
  private refreshing: Promise<void> | null = null;
  private again: Promise<void> | null = null;
  /** Set by the `stored` hook; a clean index younger than STALE_MS is used without a storage scan. */
  dirty = true;
  private scannedAt = 0;

  constructor(private readonly archive: ArchiveStore, readonly user: string, readonly folder: string) {}

  /**
   * Read entries added since the last refresh (one range scan; cheap when nothing is new). A call made
   * while a scan runs gets a fresh scan after it, so an entry committed meanwhile is never missed.
   */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.again ??= this.refreshing.then(() => {
        this.again = null;
        return this.refresh();
      });
      return this.again;
    }
    this.dirty = false;
    this.scannedAt = Date.now();
    this.refreshing = (async () => {
      try {
        for (;;) {
          const page = await this.archive.listEntries(this.user, this.folder, { afterUid: this.lastUid, limit: PAGE });
          for (const e of page) {
            if (e.uid <= this.lastUid) continue;
            this.uids.push(e.uid);
            this.messageIds.push(e.messageId);
            this.sizes.push(e.size);
            this.internalDates.push(Date.parse(e.internalDate));
            this.dates.push(e.date === null ? Number.NaN : Date.parse(e.date));
            const y = yearOf(e);
            const list = this.years.get(y);
            if (list) list.push(e.uid);
            else this.years.set(y, [e.uid]);
            this.lastUid = e.uid;
          }
          if (page.length < PAGE) break;
        }
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** Refresh only when new entries were announced or the last scan is older than STALE_MS. */
  fresh(): Promise<void> {
    return this.dirty || Date.now() - this.scannedAt > STALE_MS ? this.refresh() : Promise.resolve();
  }

  /** The entry with this UID (binary search), or null when the folder has none. */
  entry(uid: number): EntryInfo | null {
    let lo = 0;
    let hi = this.uids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.uids[mid] as number) < uid) lo = mid + 1;
      else hi = mid;
    }
    if (this.uids[lo] !== uid) return null;
    const date = this.dates[lo] as number;
    return { uid, messageId: this.messageIds[lo] as string, size: this.sizes[lo] as number, internalDate: this.internalDates[lo] as number, date: Number.isNaN(date) ? null : date };
  }

  /** Estimated memory held (for the byte bound of FolderIndexes). */
  get bytes(): number {
    return this.uids.length * ENTRY_BYTES + 200;
  }

  /** UIDs of the whole folder, or of one year. */
  view(year: number | null): number[] {
    return year === null ? this.uids : this.years.get(year) ?? [];
  }
}

type Watcher = () => void;

export class FolderIndexes {
  private readonly lru = new Map<string, FolderIndex>();
  private readonly watchers = new Map<string, Set<Watcher>>();
  private readonly folderLists = new Map<string, { at: number; folders: Promise<FolderStatus[]> }>();

  constructor(private readonly archive: ArchiveStore, private readonly max = 200, private readonly maxBytes = INDEX_CACHE_BYTES) {}

  private static key(user: string, folder: string): string {
    return `${user}\u0000${folder}`;
  }

  /** The folder's index, refreshed. */
  async get(user: string, folder: string): Promise<FolderIndex> {
    const key = FolderIndexes.key(user, folder);
    let index = this.lru.get(key);
    if (index) {
      this.lru.delete(key);
    } else {
      index = new FolderIndex(this.archive, user, folder);
      while (this.lru.size >= this.max) {
        const oldest = this.lru.keys().next().value as string;
        this.lru.delete(oldest);
      }
    }
    this.lru.set(key, index);
    await index.fresh();
    this.trim(index);
    return index;
  }

  /**
   * Drop least recently used indexes while the estimate exceeds the byte bound (never `keep`, the one
   * just asked for). A session that has a dropped index selected keeps using it; the next SELECT of
   * that folder reads a new one.
   */
  private trim(keep: FolderIndex): void {
    let total = 0;
    for (const index of this.lru.values()) total += index.bytes;
    for (const [key, index] of this.lru) {
      if (total <= this.maxBytes) break;
      if (index === keep) continue;
      this.lru.delete(key);
      total -= index.bytes;
    }
  }

  /** A user's folders with their UIDVALIDITY/UIDNEXT (cached like the indexes). */
  folders(user: string): Promise<FolderStatus[]> {
    const hit = this.folderLists.get(user);
    if (hit && Date.now() - hit.at <= STALE_MS) return hit.folders;
    const folders = this.archive.folders(user);
    folders.catch(() => this.folderLists.delete(user));
    this.folderLists.delete(user);
    this.folderLists.set(user, { at: Date.now(), folders });
    while (this.folderLists.size > this.max * 5) this.folderLists.delete(this.folderLists.keys().next().value as string);
    return folders;
  }

  /** Call `fn` whenever entries are added to a folder; returns the function that stops watching. */
  watch(user: string, folder: string, fn: Watcher): () => void {
    const key = FolderIndexes.key(user, folder);
    const set = this.watchers.get(key) ?? new Set<Watcher>();
    set.add(fn);
    this.watchers.set(key, set);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.watchers.delete(key);
    };
  }

  /** New entries were committed (from the `stored` hook). */
  added(entries: ReadonlyArray<{ user: string; folder: string }>): void {
    const seen = new Set<string>();
    for (const e of entries) {
      const key = FolderIndexes.key(e.user, e.folder);
      if (seen.has(key)) continue;
      seen.add(key);
      this.folderLists.delete(e.user);
      const index = this.lru.get(key);
      if (index) index.dirty = true;
      for (const fn of this.watchers.get(key) ?? []) fn();
    }
  }
}
