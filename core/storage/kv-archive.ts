// ArchiveStore over an ordered KvEngine (the embedded default on RocksDB). Commits, deletions and hold
// changes go through the single writer (kv-writer.ts), which groups concurrent commits into one synced
// batch and allocates UIDs in write order; this module holds the reads and hands out the directory,
// retention, jobs, audit and integrity roles. See KEYS.md for the layout.
import { Readable } from 'node:stream';
import { PosternError } from '../errors.ts';
import { isShared, objectLockOf, type CacheDomain, type KvEngine } from './kv.ts';
import { syncLegalHolds, type LegalHoldSweep } from './object-lock-sweep.ts';
import { keys, prefixEnd, splitKey } from './kv-keys.ts';
import { KvDirectory } from './kv-directory.ts';
import { renameArchiveOps } from './kv-rename.ts';
import { KvJobStore } from '../jobs/kv-job-store.ts';
import { KvAuditStore } from '../audit/kv-audit-store.ts';
import { KvIntegrityReader } from '../verify/kv-integrity-reader.ts';
import { KvRetention, type RetentionOptions } from './kv-retention.ts';
import { KvArchiveWriter, type FolderState } from './kv-writer.ts';
import { DEFAULT_BLOB_CODEC, decodeChunk, type BlobCodecOptions, type ChunkCipher } from './blob-codec.ts';
import {
  isSystemUser, type UserChange,
  type ArchiveCommit, type ArchiveEntry, type ArchiveStats, type ArchiveStore, type CommitResult, type FolderStatus,
  type FlaggedMessage, type JobStore, type AuditStore, type IntegrityReader, type RetentionStore, type ListOptions, type MessageRecord, type NewUser, type UserRecord,
} from './types.ts';

export { CHUNK_SIZE } from './kv-writer.ts';

interface BlobManifest { size: number; chunks: number; refs: number }

const parse = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;

export class KvArchiveStore implements ArchiveStore {
  readonly backend: string;
  private readonly directory: KvDirectory;
  private readonly cipher: ChunkCipher | undefined;
  private readonly writer: KvArchiveWriter;
  private readonly retentionRole: KvRetention;

  constructor(private readonly kv: KvEngine, options: { backend?: string; codec?: BlobCodecOptions; cipher?: ChunkCipher; retention?: RetentionOptions } = {}) {
    this.backend = options.backend ?? 'rocksdb';
    this.cipher = options.cipher;
    this.directory = new KvDirectory(kv);
    this.writer = new KvArchiveWriter(kv, options.codec ?? DEFAULT_BLOB_CODEC, options.cipher, {
      retention: () => this.retentionRole,
      getMessage: (id) => this.getMessage(id),
    });
    const writer = this.writer;
    this.retentionRole = new KvRetention({
      kv,
      exclusive: (fn) => writer.exclusive(fn),
      folderState: (user, folder) => writer.folderState(user, folder, new Map<string, FolderState>()),
      published: (folders, stats) => writer.published(folders, stats),
      stats: () => writer.currentStats(),
      getUser: (name) => this.directory.get(name),
      getMessage: (id) => this.getMessage(id),
      ...(objectLockOf(kv) ? { holdsChanged: async () => void (await this.syncLegalHolds()) } : {}),
    }, options.retention ?? {});
    if (isShared(kv)) {
      // Under the writer lock, before a step: what other nodes changed since this node last looked.
      kv.shared.onStale((domains) => this.reload(domains));
      // Soon after the fact, for what is read outside any step (routing's directory, IMAP in IDLE).
      kv.shared.onForeignChange((change) => {
        const outside = change.domains.filter((d): d is 'directory' | 'retention' => d === 'directory' || d === 'retention');
        if (outside.length > 0) this.reloadOutside(outside);
        if (change.folders.length > 0) for (const l of this.foreignEntryListeners) l(change.folders);
      });
    }
  }

  private readonly foreignEntryListeners: Array<(folders: Array<{ user: string; folder: string }>) => void> = [];

  onForeignEntries(listener: (folders: Array<{ user: string; folder: string }>) => void): void {
    this.foreignEntryListeners.push(listener);
  }

  private async reload(domains: CacheDomain[]): Promise<void> {
    if (domains.includes('archive')) await this.writer.reload();
    if (domains.includes('directory')) await this.directory.load();
    if (domains.includes('retention')) await this.retentionRole.load();
    if (domains.includes('audit')) this.auditStore?.forget();
  }

  /** Directory and hold caches refreshed between steps; a failure leaves them for the next step's check. */
  private reloadOutside(domains: Array<'directory' | 'retention'>): void {
    void (async () => {
      if (domains.includes('directory')) await this.directory.reload();
      if (domains.includes('retention')) await this.retentionRole.load();
    })().catch(() => undefined);
  }

  private sweeping: Promise<LegalHoldSweep> | null = null;
  private sweepAgain = false;

  /**
   * WORM stores only: sets the legal-hold flag on the objects of every blob a hold covers and clears it on
   * the rest (object-lock-sweep.ts). Calls made while a sweep runs share one more sweep after it.
   */
  async syncLegalHolds(): Promise<LegalHoldSweep> {
    const lock = objectLockOf(this.kv);
    if (!lock) return { blobs: 0, set: 0, cleared: 0 };
    if (this.sweeping) {
      this.sweepAgain = true;
      const current = this.sweeping;
      await current.catch(() => undefined);
      if (this.sweeping && this.sweeping !== current) return this.sweeping;
    }
    const run = async (): Promise<LegalHoldSweep> => {
      let result: LegalHoldSweep;
      do {
        this.sweepAgain = false;
        result = await syncLegalHolds(this.kv, lock, (user, m) => this.retentionRole.legallyHeld(user, m), (id) => this.getMessage(id));
      } while (this.sweepAgain);
      return result;
    };
    this.sweeping = run().finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  /**
   * After a copy into a WORM store whose objects were all written without a legal hold (postern migrate):
   * sets the flag on the objects of every blob a hold covers, without reading the others' state.
   */
  async setLegalHoldsAfterCopy(): Promise<LegalHoldSweep> {
    const lock = objectLockOf(this.kv);
    if (!lock) return { blobs: 0, set: 0, cleared: 0 };
    return syncLegalHolds(this.kv, lock, (user, m) => this.retentionRole.legallyHeld(user, m), (id) => this.getMessage(id), { setOnly: true });
  }

  retention(): RetentionStore {
    return this.retentionRole;
  }

  async open(): Promise<void> {
    await this.kv.open();
    await this.writer.loadStats();
    await this.directory.load();
    await this.retentionRole.load();
  }

  async close(): Promise<void> {
    while (!this.writer.idle) await new Promise((r) => setTimeout(r, 5));
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

  renameUser(from: string, to: string): Promise<UserRecord> {
    if (from === to) return Promise.reject(new PosternError('INVALID_INPUT', `User "${from}" already has that name`));
    if (isSystemUser(from) || isSystemUser(to)) return Promise.reject(new PosternError('INVALID_INPUT', 'System archives (names starting with "_") cannot be renamed'));
    // In the writer: no commit files mail under either name while the batch is built and written.
    return this.writer.exclusive(async () => {
      const next = await this.directory.rename(from, to, async (current) => ({
        ops: await renameArchiveOps(this.kv, from, to), next: { ...current, name: to },
      }));
      this.writer.forgetFolders(from);
      await this.retentionRole.load();
      return next;
    });
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

  // ---- commits (the writer) ---------------------------------------------------------------------

  commit(commit: ArchiveCommit): Promise<CommitResult> {
    return this.writer.commit(commit);
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

  async entryUidOf(user: string, folder: string, messageId: string): Promise<number | null> {
    const raw = await this.kv.get(keys.holds(user, folder, messageId));
    if (!raw) return null;
    const uid = Number(raw.toString('utf8'));
    return (await this.kv.get(keys.entry(user, folder, uid))) ? uid : null;
  }

  async getMessage(id: string): Promise<MessageRecord | null> {
    const raw = await this.kv.get(keys.message(id));
    return raw ? parse<MessageRecord>(raw) : null;
  }

  setMessageAttribute(messageId: string, name: string, value: unknown): Promise<void> {
    if (!/^[a-z][a-z0-9-]{0,63}$/.test(name)) return Promise.reject(new PosternError('INVALID_INPUT', `Attribute name "${name.slice(0, 80)}" is not valid`));
    const encoded = JSON.stringify(value);
    if (encoded === undefined) return Promise.reject(new PosternError('INVALID_INPUT', `Attribute "${name}" must be a JSON value`));
    // In the writer, between commit groups: a merge adding a capture cannot interleave and be lost.
    return this.writer.exclusive(async () => {
      const raw = await this.kv.get(keys.message(messageId));
      if (!raw) throw new PosternError('NOT_FOUND', `Message "${messageId}" does not exist`);
      const message = parse<MessageRecord>(raw);
      message.attributes = { ...(message.attributes ?? {}), [name]: JSON.parse(encoded) as unknown };
      // Not synced: derived data, recomputed if a crash loses it.
      await this.kv.write([{ type: 'put', key: keys.message(messageId), value: Buffer.from(JSON.stringify(message)) }], { sync: false });
    });
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
    // A shared archive's counters move with every node's commits: read the stored ones.
    const counters = isShared(this.kv) ? await this.writer.storedStats() : this.writer.currentStats();
    return { users: (await this.directory.list()).filter((u) => !isSystemUser(u.name)).length, ...counters };
  }
}
