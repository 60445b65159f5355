// The single writer of the embedded archive (core/storage/kv-archive.ts): concurrent commits queue here
// and are grouped into one synced batch (UIDs allocated in write order, merges resolved within the
// group); deletions and hold changes (core/storage/kv-retention.ts) run alone between groups. Keeps the
// folder-state cache and the stored counters, published only after a batch is durable. The pure
// group-building parts (state, lookup, ops) are in kv-writer-group.ts.
// Trusts: its KvEngine and the retention role; validates user and folder names of every commit.
// Hands on: CommitResults (or the error of one commit, or of the whole group when the write fails).
import type { Readable } from 'node:stream';
import { PosternError } from '../errors.ts';
import { isShared, objectLockOf, type BlobProtection, type KvEngine, type KvOp } from './kv.ts';
import { keys } from './kv-keys.ts';
import type { KvRetention } from './kv-retention.ts';
import { encodeChunk, encodeChunkAsync, encodeChunkPacked, type BlobCodecOptions, type ChunkCipher } from './blob-codec.ts';
import { USER_NAME, type ArchiveCommit, type ArchiveEntry, type CommitResult, type MessageRecord } from './types.ts';
import type { EntryRetention } from '../compliance/types.ts';
import {
  CHUNK_SIZE, applyLookup, chunkCount, blobChange, dedupeTargets, groupLookup, groupOps, newEntry, newGroup, newMessage, ownerOf, parse, publish,
  pushAll, withCapture, type BlobManifest, type Filed, type FolderState, type Group, type QueuedCommit, type StoredStats,
} from './kv-writer-group.ts';

export { CHUNK_SIZE, type FolderState, type StoredStats } from './kv-writer-group.ts';

/**
 * Chunks up to this size are compressed on the event loop: for a typical 4–5 KB message sync brotli q5
 * costs ~0.14 ms of CPU, while handing it to the thread pool costs 0.24–0.29 ms in all (measured with
 * test/bench/proxy-archive-cost.ts). Raised from 16 to 64 KiB after the relay bench (20 KB messages):
 * each thread-pool call also creates and closes a zlib handle on the loop; sync cut Postern's CPU per
 * archived message from 1.62–1.71 to 1.44–1.46 ms. A 64 KiB chunk blocks the loop for ~1.5 ms at
 * most; larger chunks go to the thread pool so the loop never blocks long.
 */
const SYNC_ENCODE_MAX = 64 * 1024;

/** What the writer borrows from the archive it serves. */
export interface WriterHost {
  retention(): KvRetention;
  getMessage(id: string): Promise<MessageRecord | null>;
}

async function readAll(stream: Readable, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new PosternError('INVALID_INPUT', `Blob is larger than its declared size ${limit}`);
    parts.push(buf);
  }
  // A blob held in memory arrives as one chunk: encode it where it is instead of copying it.
  return parts.length === 1 && size === limit ? (parts[0] as Buffer) : Buffer.concat(parts, size);
}


export class KvArchiveWriter {
  private readonly queue: QueuedCommit[] = [];
  private writing = false;
  private readonly folderCache = new Map<string, FolderState>();
  private stats_: StoredStats | null = null;
  /** Deletions and hold changes waiting for the writer (run alone, between commit groups). */
  private readonly exclusiveTasks: Array<() => Promise<void>> = [];
  /** Each group and exclusive task runs as one step of a shared engine's cluster-wide writer (else as is). */
  private readonly step: <T>(fn: () => Promise<T>) => Promise<T>;

  constructor(
    private readonly kv: KvEngine,
    private readonly codec: BlobCodecOptions,
    private readonly cipher: ChunkCipher | undefined,
    private readonly host: WriterHost,
  ) {
    this.step = isShared(kv) ? (fn) => kv.shared.serialize(fn) : (fn) => fn();
  }

  /** Another node changed folders and counters: drop what this one cached (called under the writer lock). */
  async reload(): Promise<void> {
    this.folderCache.clear();
    await this.loadStats();
  }

  /** Reads the stored counters (call once the engine is open). */
  async loadStats(): Promise<void> {
    this.stats_ = await this.storedStats();
  }

  /** The counters as stored now (the last durable batch of any node). */
  async storedStats(): Promise<StoredStats> {
    const raw = await this.kv.get(keys.stats());
    return { messages: 0, entries: 0, blobs: 0, blobBytes: 0, flagged: 0, ...(raw ? parse<Partial<StoredStats>>(raw) : {}) };
  }

  /** Whether nothing is queued or being written. */
  get idle(): boolean {
    return !this.writing && this.queue.length === 0 && this.exclusiveTasks.length === 0;
  }

  /** Run fn in the writer: no commit group or other exclusive task runs meanwhile. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise((resolve, reject) => {
      this.exclusiveTasks.push(() => this.step(fn).then(resolve, reject));
      this.pump();
    });
  }

  /** Drop the cached folder states of a user (after a rename moved their folders to another name). */
  forgetFolders(user: string): void {
    for (const k of [...this.folderCache.keys()]) if (k.startsWith(`${user}\u0000`)) this.folderCache.delete(k);
  }

  /** After an exclusive task's successful write: the folder states and counters it stored. */
  published(folders: Map<string, FolderState>, stats: StoredStats): void {
    for (const [k, f] of folders) this.folderCache.set(k, f);
    this.stats_ = stats;
  }

  async commit(commit: ArchiveCommit): Promise<CommitResult> {
    for (const f of commit.fileInto) {
      if (!USER_NAME.test(f.user)) throw new PosternError('INVALID_INPUT', `User name "${f.user}" is invalid`);
      if (f.folder === '' || f.folder.includes('\u0000')) throw new PosternError('INVALID_INPUT', `Folder name "${f.folder}" is invalid`);
    }
    let inline: Buffer | null = null;
    // A merged capture shares the existing message's blob: its own bytes are not stored again.
    if (!commit.mergeInto) {
      if (commit.blob.size <= CHUNK_SIZE) {
        const held = commit.blob.bytes;
        const raw = held && held.length === commit.blob.size ? held : await readAll(commit.blob.open(), commit.blob.size);
        const { packed } = commit.blob;
        if (packed && raw === held) inline = encodeChunkPacked(raw, packed, this.codec, this.cipher);
        else inline = raw.length <= SYNC_ENCODE_MAX ? encodeChunk(raw, this.codec, this.cipher) : await encodeChunkAsync(raw, this.codec, this.cipher);
      }
      else if (!(await this.kv.get(keys.blob(commit.blob.sha256)))) await this.writeChunks(commit);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ commit, inline, resolve, reject });
      this.pump();
    });
  }

  private async writeChunks(commit: ArchiveCommit): Promise<void> {
    const { sha256 } = commit.blob;
    let n = 0;
    let pending: Buffer[] = [];
    let pendingSize = 0;
    const flush = async (): Promise<void> => {
      if (pendingSize === 0) return;
      const chunk = Buffer.concat(pending, pendingSize);
      pending = [];
      pendingSize = 0;
      await this.kv.write([{ type: 'put', key: keys.chunk(sha256, n++), value: await encodeChunkAsync(chunk, this.codec, this.cipher) }], { sync: false });
    };
    for await (const part of commit.blob.open()) {
      let buf = part as Buffer;
      while (buf.length > 0) {
        const take = Math.min(CHUNK_SIZE - pendingSize, buf.length);
        pending.push(buf.subarray(0, take));
        pendingSize += take;
        buf = buf.subarray(take);
        if (pendingSize === CHUNK_SIZE) await flush();
      }
    }
    await flush();
  }

  currentStats(): StoredStats {
    if (!this.stats_) throw new PosternError('STORAGE_CLOSED', 'Archive is not open');
    return this.stats_;
  }

  private pump(): void {
    if (this.writing) return;
    const task = this.exclusiveTasks.shift();
    if (task) {
      this.writing = true;
      void task().finally(() => {
        this.writing = false;
        this.pump();
      });
      return;
    }
    if (this.queue.length === 0) return;
    this.writing = true;
    const group = this.queue.splice(0, 256);
    // A step that could not start (the cluster's database unreachable) fails the whole group; a group
    // that ran has settled its commits already, so rejecting again changes nothing.
    this.step(() => this.writeGroup(group)).catch((err: unknown) => {
      this.folderCache.clear();
      for (const q of group) q.reject(err as Error);
    }).finally(() => {
      this.writing = false;
      this.pump();
    });
  }

  // Kept small and await-light on purpose: the synchronous parts of a group live in the functions
  // below the class, which the JIT optimises cheaply (a large async function took 50+ ms per compile).
  private async writeGroup(group: QueuedCommit[]): Promise<void> {
    const g = newGroup(this.currentStats());
    const results: Array<CommitResult | Error> = [];
    try {
      const lookup = groupLookup(group);
      applyLookup(g, group, lookup, await this.kv.getMany(lookup.keys));
      for (const q of group) {
        try {
          const done = g.replayed.has(q.commit.capture.id) ? g.captures.get(q.commit.capture.id) : undefined;
          results.push(done !== undefined ? { messageId: done, entries: [], alreadyCommitted: true } : await this.buildCommit(q, g));
        } catch (err) {
          results.push(err as Error);
        }
      }
      const lock = objectLockOf(this.kv);
      if (lock) await lock.writeProtected(groupOps(g), { sync: true }, this.protections(g));
      else await this.kv.write(groupOps(g), { sync: true });
    } catch (err) {
      this.folderCache.clear();
      for (const q of group) q.reject(err as Error);
      return;
    }
    for (const [k, f] of g.folders) this.folderCache.set(k, f);
    this.stats_ = g.stats;
    group.forEach((q, i) => {
      const r = results[i] as CommitResult | Error;
      if (r instanceof Error) q.reject(r);
      else q.resolve(r);
    });
  }

  /** What the group's entries ask of their blobs' stored bytes: the longest retention, and legal holds. */
  private protections(g: Group): BlobProtection[] {
    const out: BlobProtection[] = [];
    for (const filed of g.filed.values()) {
      if (!filed) continue;
      const message = g.messages.get(filed.entry.messageId);
      if (!message) continue;
      const legalHold = this.host.retention().legallyHeld(filed.entry.user, message);
      const retainUntil = filed.retention?.retainUntil ?? null;
      if (retainUntil === null && !legalHold) continue;
      out.push({ sha256: message.blobId, chunks: chunkCount(message.size), retainUntil, legalHold });
    }
    return out;
  }

  async folderState(user: string, folder: string, pending: Map<string, FolderState>): Promise<FolderState> {
    const k = `${user}\u0000${folder}`;
    const known = pending.get(k) ?? this.folderCache.get(k);
    if (known) return { ...known };
    const raw = await this.kv.get(keys.folder(user, folder));
    return raw ? parse<FolderState>(raw) : { uidValidity: Math.floor(Date.now() / 1000), uidNext: 1, messages: 0 };
  }

  /** The entry a stored message has in a folder, with its retention; undefined when it has none there. */
  private async filedEntry(user: string, folder: string, messageId: string): Promise<Filed | undefined> {
    const uid = await this.kv.get(keys.holds(user, folder, messageId));
    if (!uid) return undefined;
    const [raw, retention] = await this.kv.getMany([keys.entry(user, folder, Number(uid.toString('utf8'))), keys.retention(user, folder, Number(uid.toString('utf8')))]);
    if (!raw) return null;
    return { entry: parse<ArchiveEntry>(raw), retention: retention ? parse<EntryRetention>(retention) : null };
  }

  private async buildCommit(q: QueuedCommit, g: Group): Promise<CommitResult> {
    const { commit } = q;
    // Committed earlier in this same group (the group's lookup covered earlier batches).
    const captured = g.captures.get(commit.capture.id);
    if (captured) return { messageId: captured, entries: [], alreadyCommitted: true };

    // Message: new, or an existing one this capture merges into (named, or the owner of identical bytes).
    const mergeInto = commit.mergeInto ?? ownerOf(commit, g);
    const targetId = mergeInto ?? commit.messageId;
    // A new message's id is the capture's own (unique); only a merge target can exist already.
    const stored = g.messages.get(targetId) ?? (mergeInto ? await this.host.getMessage(targetId) : null);
    if (!stored && mergeInto) throw new PosternError('NOT_FOUND', `Message "${mergeInto}" to merge into does not exist`);
    const isNew = !stored;
    const local: KvOp[] = [];
    const message = withCapture(stored ?? newMessage(commit, targetId), targetId, commit, g, local);

    // Blob: add a reference only for a new message (a merged capture shares the message's blob).
    let blobDelta: BlobManifest | null = null;
    if (isNew) {
      const sha = commit.blob.sha256;
      // This group's own change first, then the stored manifest read with the group's lookup.
      // Parsed here, inside this commit's own try: an unreadable manifest fails this commit only.
      let manifest = g.blobs.get(sha) ?? null;
      if (!manifest) {
        const raw = g.manifests.has(sha) ? (g.manifests.get(sha) ?? null) : await this.kv.get(keys.blob(sha));
        manifest = raw ? parse<BlobManifest>(raw) : null;
      }
      if (!manifest && !q.inline && (commit.blob.size <= CHUNK_SIZE || !(await this.kv.get(keys.chunk(sha, 0))))) {
        throw new PosternError('STORAGE_IO', `Blob "${sha}" was stored by a concurrent commit that failed or was purged meanwhile; retry`);
      }
      blobDelta = blobChange(manifest, q, g, local);
    }

    const entries: CommitResult['entries'] = [];
    const newFiled = new Map<string, Filed>();
    const folderUpdates = new Map<string, FolderState>();
    const archivedAt = new Date().toISOString();
    for (const f of dedupeTargets(commit.fileInto)) {
      const holdKey = `${f.user}\u0000${f.folder}\u0000${targetId}`;
      // Already in this folder: no new entry; this capture's retention may only extend the entry's.
      const existing = g.filed.get(holdKey) ?? (isNew ? undefined : await this.filedEntry(f.user, f.folder, targetId));
      if (existing !== undefined) {
        if (existing === null) continue;
        const merged = await this.host.retention().mergeOps(existing.entry, message, commit.retention, existing.retention);
        pushAll(local, merged.ops);
        newFiled.set(holdKey, { entry: existing.entry, retention: merged.retention });
        continue;
      }
      const fk = `${f.user}\u0000${f.folder}`;
      const state = folderUpdates.get(fk) ?? (await this.folderState(f.user, f.folder, g.folders));
      folderUpdates.set(fk, state);
      const entry = newEntry(f, state, targetId, archivedAt, message, local);
      const retained = await this.host.retention().entryOps(entry, message, commit.retention);
      pushAll(local, retained.ops);
      newFiled.set(holdKey, { entry, retention: retained.retention });
      entries.push({ user: f.user, folder: f.folder, uid: entry.uid });
    }
    publish(g, commit, targetId, message, isNew, blobDelta, local, folderUpdates, newFiled, this.host.retention());
    g.stats.entries += entries.length;
    return { messageId: targetId, entries, alreadyCommitted: false };
  }
}
