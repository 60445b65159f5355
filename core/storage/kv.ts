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
