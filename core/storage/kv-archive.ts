// ArchiveStore over an ordered KvEngine (the embedded default on RocksDB). A single writer task groups
// concurrent commits into one synced batch and allocates UIDs in write order. See KEYS.md for the layout.
import { Readable } from 'node:stream';
import { PosternError } from '../errors.ts';
import type { KvEngine, KvOp } from './kv.ts';
import { keys, prefixEnd, splitKey } from './kv-keys.ts';
import { KvDirectory } from './kv-directory.ts';
import { KvJobStore } from '../jobs/kv-job-store.ts';
import { KvAuditStore } from '../audit/kv-audit-store.ts';
import { KvIntegrityReader } from '../verify/kv-integrity-reader.ts';
import { KvRetention, type RetentionOptions } from './kv-retention.ts';
import { DEFAULT_BLOB_CODEC, decodeChunk, encodeChunkAsync, type BlobCodecOptions, type ChunkCipher } from './blob-codec.ts';
import {
  USER_NAME, type UserChange,
  type ArchiveCommit, type ArchiveEntry, type ArchiveStats, type ArchiveStore, type CommitResult, type FolderStatus,
  type FlaggedMessage, type JobStore, type AuditStore, type IntegrityReader, type RetentionStore, type ListOptions, type MessageRecord, type NewUser, type UserRecord,
} from './types.ts';

export const CHUNK_SIZE = 1024 * 1024;

interface FolderState { uidValidity: number; uidNext: number; messages: number }
interface BlobManifest { size: number; chunks: number; refs: number }
/** Counters kept in the same batch as the data they count (users are counted on demand). */
type StoredStats = Omit<ArchiveStats, 'users'>;

interface QueuedCommit {
  commit: ArchiveCommit;
  /** The blob's single chunk, encoded (compressed), when it fits one; large blobs are pre-written. */
  inline: Buffer | null;
  resolve: (r: CommitResult) => void;
  reject: (e: Error) => void;
}

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const parse = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;

async function readAll(stream: Readable, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new PosternError('INVALID_INPUT', `Blob is larger than its declared size ${limit}`);
    parts.push(buf);
  }
  return Buffer.concat(parts, size);
}

export class KvArchiveStore implements ArchiveStore {
  readonly backend: string;
  private readonly queue: QueuedCommit[] = [];
  private writing = false;
  private folderCache = new Map<string, FolderState>();
  private stats_: StoredStats | null = null;
  private readonly directory: KvDirectory;

  private readonly codec: BlobCodecOptions;
  private readonly cipher: ChunkCipher | undefined;

  private readonly retentionRole: KvRetention;
  /** Deletions and hold changes waiting for the writer (run alone, between commit groups). */
  private readonly exclusive: Array<() => Promise<void>> = [];

  constructor(private readonly kv: KvEngine, options: { backend?: string; codec?: BlobCodecOptions; cipher?: ChunkCipher; retention?: RetentionOptions } = {}) {
    this.backend = options.backend ?? 'rocksdb';
    this.codec = options.codec ?? DEFAULT_BLOB_CODEC;
    this.cipher = options.cipher;
    this.directory = new KvDirectory(kv);
    this.retentionRole = new KvRetention({
      kv,
      exclusive: (fn) => new Promise((resolve, reject) => {
        this.exclusive.push(() => fn().then(resolve, reject));
        this.pump();
      }),
      folderState: (user, folder) => this.folderState(user, folder, new Map()),
      published: (folders, stats) => {
        for (const [k, f] of folders) this.folderCache.set(k, f);
        this.stats_ = stats;
      },
      stats: () => this.currentStats(),
      getUser: (name) => this.directory.get(name),
      getMessage: (id) => this.getMessage(id),
    }, options.retention ?? {});
  }

  retention(): RetentionStore {
    return this.retentionRole;
  }

  async open(): Promise<void> {
    await this.kv.open();
    const raw = await this.kv.get(keys.stats());
    this.stats_ = { messages: 0, entries: 0, blobs: 0, blobBytes: 0, flagged: 0, ...(raw ? parse<Partial<StoredStats>>(raw) : {}) };
    await this.directory.load();
    await this.retentionRole.load();
  }

  async close(): Promise<void> {
    while (this.writing || this.queue.length > 0 || this.exclusive.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.kv.close();
  }

  // ---- users (the directory) ------------------------------------------------------------------

  addUser(user: NewUser): Promise<UserRecord> {
    return this.directory.add(user);
  }

  updateUser(name: string, change: UserChange): Promise<UserRecord> {
    return this.directory.update(name, change);
  }

  removeUser(name: string): Promise<void> {
    return this.directory.remove(name);
  }

  getUser(name: string): Promise<UserRecord | null> {
    return this.directory.get(name);
  }

  listUsers(): Promise<UserRecord[]> {
    return this.directory.list();
  }

  async userByAddress(address: string): Promise<string | null> {
    return this.directory.byAddress(address);
  }

  async userByDomain(domain: string): Promise<string | null> {
    return this.directory.byDomain(domain);
  }

  async userByPop3User(login: string): Promise<string | null> {
    return this.directory.byPop3User(login);
  }

  // ---- commits ---------------------------------------------------------------------------------

  async commit(commit: ArchiveCommit): Promise<CommitResult> {
    for (const f of commit.fileInto) {
      if (!USER_NAME.test(f.user)) throw new PosternError('INVALID_INPUT', `User name "${f.user}" is invalid`);
      if (f.folder === '' || f.folder.includes('\u0000')) throw new PosternError('INVALID_INPUT', `Folder name "${f.folder}" is invalid`);
    }
    let inline: Buffer | null = null;
    // A merged capture shares the existing message's blob: its own bytes are not stored again.
    if (!commit.mergeInto) {
      if (commit.blob.size <= CHUNK_SIZE) inline = await encodeChunkAsync(await readAll(commit.blob.open(), commit.blob.size), this.codec, this.cipher);
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

  private currentStats(): StoredStats {
    if (!this.stats_) throw new PosternError('STORAGE_CLOSED', 'Archive is not open');
    return this.stats_;
  }

  private pump(): void {
    if (this.writing) return;
    const task = this.exclusive.shift();
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
    this.writeGroup(group).finally(() => {
      this.writing = false;
      this.pump();
    });
  }

  private async writeGroup(group: QueuedCommit[]): Promise<void> {
    const folders = new Map<string, FolderState>();
    const blobs = new Map<string, BlobManifest>();
    const messages = new Map<string, MessageRecord>();
    const captures = new Map<string, string>();
    const byIdentity = new Map<string, string>();
    const holds = new Set<string>();
    const stats = { ...this.currentStats() };
    const ops: KvOp[] = [];
    const results: Array<CommitResult | Error> = [];
    try {
      // One lookup for the whole group: was each capture committed before, and which message (if
      // any) already owns each identity key the commits bring.
      const identities = [...new Set(group.flatMap((q) => q.commit.identities ?? []))];
      const known = await this.kv.getMany([...group.map((q) => keys.capture(q.commit.capture.id)), ...identities.map(keys.identity)]);
      group.forEach((q, i) => {
        const cap = known[i];
        if (cap) captures.set(q.commit.capture.id, cap.toString('utf8'));
      });
      identities.forEach((id, i) => {
        const owner = known[group.length + i];
        if (owner) byIdentity.set(id, owner.toString('utf8'));
      });
      const replayed = new Set(captures.keys());
      for (const q of group) {
        try {
          const done = replayed.has(q.commit.capture.id) ? captures.get(q.commit.capture.id) : undefined;
          results.push(done !== undefined
            ? { messageId: done, entries: [], alreadyCommitted: true }
            : await this.buildCommit(q, { folders, blobs, messages, captures, byIdentity, holds, stats, ops }));
        } catch (err) {
          results.push(err as Error);
        }
      }
      for (const [id, m] of messages) ops.push({ type: 'put', key: keys.message(id), value: json(m) });
      for (const [sha, b] of blobs) ops.push({ type: 'put', key: keys.blob(sha), value: json(b) });
      for (const [k, f] of folders) {
        const [user, folder] = k.split('\u0000') as [string, string];
        ops.push({ type: 'put', key: keys.folder(user, folder), value: json(f) });
      }
      ops.push({ type: 'put', key: keys.stats(), value: json(stats) });
      await this.kv.write(ops, { sync: true });
    } catch (err) {
      this.folderCache.clear();
      for (const q of group) q.reject(err as Error);
      return;
    }
    for (const [k, f] of folders) this.folderCache.set(k, f);
    this.stats_ = stats;
    group.forEach((q, i) => {
      const r = results[i] as CommitResult | Error;
      if (r instanceof Error) q.reject(r);
      else q.resolve(r);
    });
  }

  private async folderState(user: string, folder: string, pending: Map<string, FolderState>): Promise<FolderState> {
    const k = `${user}\u0000${folder}`;
    const known = pending.get(k) ?? this.folderCache.get(k);
    if (known) return { ...known };
    const raw = await this.kv.get(keys.folder(user, folder));
    return raw ? parse<FolderState>(raw) : { uidValidity: Math.floor(Date.now() / 1000), uidNext: 1, messages: 0 };
  }

  private async buildCommit(
    q: QueuedCommit,
    g: {
      folders: Map<string, FolderState>; blobs: Map<string, BlobManifest>; messages: Map<string, MessageRecord>; captures: Map<string, string>;
      byIdentity: Map<string, string>; holds: Set<string>; stats: StoredStats; ops: KvOp[];
    },
  ): Promise<CommitResult> {
    const { commit } = q;
    // Committed earlier in this same group (the group's lookup covered earlier batches).
    const captured = g.captures.get(commit.capture.id);
    if (captured) return { messageId: captured, entries: [], alreadyCommitted: true };

    const local: KvOp[] = [];
    // Message: new, or an existing one this capture merges into (named, or the owner of identical bytes).
    const owned = (commit.identities ?? []).map((id) => g.byIdentity.get(id)).find((m) => m !== undefined);
    const mergeInto = commit.mergeInto ?? owned;
    const targetId = mergeInto ?? commit.messageId;
    // A new message's id is the capture's own (unique); only a merge target can exist already.
    let message = g.messages.get(targetId) ?? (mergeInto ? await this.getMessage(targetId) : null);
    const isNew = !message;
    if (!message) {
      if (mergeInto) throw new PosternError('NOT_FOUND', `Message "${mergeInto}" to merge into does not exist`);
      message = {
        id: targetId, blobId: commit.blob.sha256, size: commit.blob.size, archivedAt: new Date().toISOString(), ...commit.summary, captures: [], flags: [],
        ...(commit.attributes && Object.keys(commit.attributes).length > 0 ? { attributes: commit.attributes } : {}),
      };
    }
    const flags = [...new Set([...message.flags, ...(commit.flags ?? [])])];
    if (flags.length > message.flags.length) {
      if (message.flags.length === 0) g.stats.flagged += 1;
      local.push({ type: 'put', key: keys.flagged(targetId), value: json({ flags, archivedAt: message.archivedAt, subject: message.subject }) });
    }
    message = { ...message, flags, captures: [...message.captures, commit.capture] };

    // Blob: add a reference only for a new message (a merged capture shares the message's blob).
    let blobDelta: BlobManifest | null = null;
    if (isNew) {
      const sha = commit.blob.sha256;
      let manifest = g.blobs.get(sha) ?? null;
      if (!manifest) {
        const raw = await this.kv.get(keys.blob(sha));
        manifest = raw ? parse<BlobManifest>(raw) : null;
      }
      if (manifest) {
        blobDelta = { ...manifest, refs: manifest.refs + 1 };
      } else {
        const chunks = Math.max(1, Math.ceil(commit.blob.size / CHUNK_SIZE));
        if (q.inline) local.push({ type: 'put', key: keys.chunk(sha, 0), value: q.inline });  // already encoded
        else if (commit.blob.size <= CHUNK_SIZE || !(await this.kv.get(keys.chunk(sha, 0)))) throw new PosternError('STORAGE_IO', `Blob "${sha}" was stored by a concurrent commit that failed or was purged meanwhile; retry`);
        blobDelta = { size: commit.blob.size, chunks, refs: 1 };
        g.stats.blobs += 1;
        g.stats.blobBytes += commit.blob.size;
      }
    }

    const entries: CommitResult['entries'] = [];
    const newHolds: string[] = [];
    const folderUpdates = new Map<string, FolderState>();
    const archivedAt = new Date().toISOString();
    for (const f of dedupeTargets(commit.fileInto)) {
      const holdKey = `${f.user}\u0000${f.folder}\u0000${targetId}`;
      if (g.holds.has(holdKey) || (!isNew && (await this.kv.get(keys.holds(f.user, f.folder, targetId))))) continue;
      const fk = `${f.user}\u0000${f.folder}`;
      const state = folderUpdates.get(fk) ?? (await this.folderState(f.user, f.folder, g.folders));
      const uid = state.uidNext;
      state.uidNext += 1;
      state.messages += 1;
      folderUpdates.set(fk, state);
      const entry: ArchiveEntry = {
        user: f.user, folder: f.folder, uid, messageId: targetId, internalDate: archivedAt,
        size: message.size, date: message.date, from: message.from, subject: message.subject,
      };
      local.push({ type: 'put', key: keys.entry(f.user, f.folder, uid), value: json(entry) });
      local.push({ type: 'put', key: keys.holds(f.user, f.folder, targetId), value: Buffer.from(String(uid)) });
      local.push(...(await this.retentionRole.entryOps(entry, message, commit.retention)));
      newHolds.push(holdKey);
      entries.push({ user: f.user, folder: f.folder, uid });
    }
    local.push({ type: 'put', key: keys.capture(commit.capture.id), value: Buffer.from(targetId) });
    // Identity keys nobody owns yet now point at this message; later copies merge into it.
    const claimed = (commit.identities ?? []).filter((id) => !g.byIdentity.has(id));
    for (const id of claimed) local.push({ type: 'put', key: keys.identity(id), value: Buffer.from(targetId) }, this.retentionRole.identityOp(targetId, id));

    // Everything for this commit is decided: publish it into the group.
    g.ops.push(...local);
    for (const [k, s] of folderUpdates) g.folders.set(k, s);
    if (blobDelta) g.blobs.set(commit.blob.sha256, blobDelta);
    g.messages.set(targetId, message);
    g.captures.set(commit.capture.id, targetId);
    for (const id of claimed) g.byIdentity.set(id, targetId);
    for (const h of newHolds) g.holds.add(h);
    if (isNew) g.stats.messages += 1;
    g.stats.entries += entries.length;
    return { messageId: targetId, entries, alreadyCommitted: false };
  }

  async messageByIdentity(identity: string): Promise<string | null> {
    const raw = await this.kv.get(keys.identity(identity));
    return raw ? raw.toString('utf8') : null;
  }

  async *listIdentities(prefix: string): AsyncIterable<string> {
    const start = keys.identity(prefix);
    const base = keys.identity('').length;
    for await (const [k] of this.kv.entries({ gte: start, lt: start + '\uffff' })) yield k.slice(base);
  }

  async listFlagged(limit = 1000): Promise<FlaggedMessage[]> {
    const prefix = keys.flaggedPrefix();
    const out: FlaggedMessage[] = [];
    for await (const [k, v] of this.kv.entries({ gte: prefix, lt: prefixEnd(prefix), limit })) {
      const f = parse<Omit<FlaggedMessage, 'messageId'>>(v);
      out.push({ messageId: k.slice(prefix.length), ...f });
    }
    return out;
  }

  async captureCommitted(captureId: string): Promise<string | null> {
    const raw = await this.kv.get(keys.capture(captureId));
    return raw ? raw.toString('utf8') : null;
  }

  // ---- reads -----------------------------------------------------------------------------------

  async folders(user: string): Promise<FolderStatus[]> {
    const out: FolderStatus[] = [];
    const prefix = keys.folderPrefix(user);
    for await (const [k, v] of this.kv.entries({ gte: prefix, lt: prefixEnd(prefix) })) {
      const s = parse<FolderState>(v);
      out.push({ user, folder: splitKey(k)[2] ?? '', uidValidity: s.uidValidity, uidNext: s.uidNext, messages: s.messages });
    }
    return out;
  }

  async listEntries(user: string, folder: string, options: ListOptions = {}): Promise<ArchiveEntry[]> {
    const prefix = keys.entryPrefix(user, folder);
    const out: ArchiveEntry[] = [];
    const range = options.afterUid !== undefined ? { gt: keys.entry(user, folder, options.afterUid) } : { gte: prefix };
    for await (const [, v] of this.kv.entries({ ...range, lt: prefixEnd(prefix), ...(options.limit !== undefined ? { limit: options.limit } : {}) })) {
      out.push(parse<ArchiveEntry>(v));
    }
    return out;
  }

  async getEntry(user: string, folder: string, uid: number): Promise<ArchiveEntry | null> {
    if (!Number.isInteger(uid) || uid < 1 || uid > 0xffffffff) return null;
    const raw = await this.kv.get(keys.entry(user, folder, uid));
    return raw ? parse<ArchiveEntry>(raw) : null;
  }

  async getMessage(id: string): Promise<MessageRecord | null> {
    const raw = await this.kv.get(keys.message(id));
    return raw ? parse<MessageRecord>(raw) : null;
  }

  async openBlob(blobId: string): Promise<Readable | null> {
    const raw = await this.kv.get(keys.blob(blobId));
    if (!raw) return null;
    const manifest = parse<BlobManifest>(raw);
    const { kv, cipher } = this;
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let n = 0; n < manifest.chunks; n++) {
        const chunk = await kv.get(keys.chunk(blobId, n));
        if (!chunk) throw new PosternError('STORAGE_IO', `Blob "${blobId}" is missing chunk ${n}`);
        yield decodeChunk(chunk, cipher);
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  private jobStore: KvJobStore | null = null;
  jobs(): JobStore {
    return (this.jobStore ??= new KvJobStore(this.kv));
  }

  private auditStore: KvAuditStore | null = null;
  audit(): AuditStore {
    return (this.auditStore ??= new KvAuditStore(this.kv));
  }

  integrity(): IntegrityReader {
    return new KvIntegrityReader(this.kv, this.cipher);
  }

  async stats(): Promise<ArchiveStats> {
    return { users: (await this.directory.list()).length, ...this.currentStats() };
  }
}

function dedupeTargets(targets: ArchiveCommit['fileInto']): ArchiveCommit['fileInto'] {
  const seen = new Set<string>();
  return targets.filter((t) => {
    const k = `${t.user}\u0000${t.folder}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
