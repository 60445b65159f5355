// A minimal ordered key-value engine contract: what the embedded archive and the intake need from an
// engine (RocksDB today; LevelDB or another binding tomorrow). Keys are strings, values bytes.
// Only backends and the intake use it; nothing above the storage interface sees it.

export type KvOp = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

export interface KvRange {
  gte?: string;
  gt?: string;
  lt?: string;
  lte?: string;
  limit?: number;
  reverse?: boolean;
}

export interface KvEngine {
  open(): Promise<void>;
  close(): Promise<void>;
  get(key: string): Promise<Buffer | null>;
  /** Several keys in one round trip; null for each missing key, in the order asked. */
  getMany(keys: string[]): Promise<Array<Buffer | null>>;
  /**
   * Apply ops atomically. With sync, resolves only after the write is on stable storage; concurrent
   * synced writes share one fsync (group commit) but each caller's ops stay all-or-nothing.
   */
  write(ops: KvOp[], options: { sync: boolean }): Promise<void>;
  entries(range: KvRange): AsyncIterable<[string, Buffer]>;
}

/** Parts of the archive that a process keeps in memory and that another process's writes can change. */
export const CACHE_DOMAINS = ['archive', 'directory', 'retention', 'audit'] as const;
export type CacheDomain = (typeof CACHE_DOMAINS)[number];

/** What another process of the cluster changed: the cached parts, and the folders that gained entries. */
export interface ForeignChange {
  domains: CacheDomain[];
  folders: Array<{ user: string; folder: string }>;
}

/**
 * An engine several Postern processes share (PostgreSQL). The embedded engine has one process and
 * does not implement it. The archive runs each of its read-modify-write steps (a commit group, a
 * deletion, a directory change, an audit append) inside `serialize`, which holds a cluster-wide lock:
 * one such step at a time across all nodes, so UIDs, reference counts and the audit chain stay
 * consistent without a home-made protocol. Before the step runs, `onStale` hears which cached parts
 * another node has changed since this one last looked, so it reloads them; `onForeignChange` hears
 * the same soon after the fact (LISTEN/NOTIFY) for caches read outside any step (the directory used
 * by routing, IMAP folders waiting in IDLE).
 */
export interface SharedKv {
  serialize<T>(fn: () => Promise<T>): Promise<T>;
  onStale(listener: (domains: CacheDomain[]) => Promise<void>): void;
  onForeignChange(listener: (change: ForeignChange) => void): void;
}

export function isShared(kv: KvEngine): kv is KvEngine & { shared: SharedKv } {
  return 'shared' in kv && (kv as { shared?: unknown }).shared !== undefined;
}

/** How a blob's stored bytes must be protected: kept until retainUntil, and held while legalHold. */
export interface BlobProtection {
  sha256: string;
  chunks: number;
  /** Null: no retention to apply (an existing one stays; it never moves earlier). */
  retainUntil: string | null;
  /** True sets the legal-hold flag; false leaves it as it is (only the hold sweep clears it). */
  legalHold: boolean;
}

/**
 * WORM storage of blob bytes (S3 Object Lock) under the archive. The archive hands the protection its
 * entries give each blob with the write that records them; the engine applies it to the objects
 * before the metadata commits, so no committed retention or hold is missing from the store.
 */
export interface ObjectLock {
  writeProtected(ops: KvOp[], options: { sync: boolean }, protect: BlobProtection[]): Promise<void>;
  /** Sets (true) or clears (false) the legal-hold flag of every object of a blob; false when it already was so. */
  setLegalHold(sha256: string, chunks: number, on: boolean): Promise<boolean>;
}

export function objectLockOf(kv: KvEngine): ObjectLock | null {
  return 'objectLock' in kv ? ((kv as { objectLock?: ObjectLock }).objectLock ?? null) : null;
}
