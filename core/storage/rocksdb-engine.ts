// KvEngine on the `rocksdb` binding (RocksDB 6.x). Synced writes are grouped: while one synced batch is
// being written, later callers queue, and the next batch carries all of them with a single fsync.
// Hands out plain strings and Buffers; no binding types escape this file.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { PosternError } from '../errors.ts';
import type { KvEngine, KvOp, KvRange } from './kv.ts';

interface RocksIterator {
  next(cb: (err: Error | undefined, key?: string, value?: Buffer) => void): void;
  end(cb: (err?: Error) => void): void;
}
interface RocksDb {
  open(opts: Record<string, unknown>, cb: (err?: Error) => void): void;
  close(cb: (err?: Error) => void): void;
  getMany(keys: string[], opts: { asBuffer: boolean }, cb: (err: Error | undefined, values?: Array<Buffer | undefined>) => void): void;
  batch(ops: Array<{ type: 'put' | 'del'; key: string; value?: Buffer }>, opts: { sync: boolean }, cb: (err?: Error) => void): void;
  iterator(opts: Record<string, unknown>): RocksIterator;
  compactRange(start: string, end: string, cb: (err?: Error) => void): void;
}

const require = createRequire(import.meta.url);
const rocksdb = require('rocksdb') as (location: string) => RocksDb;

interface PendingWrite {
  ops: KvOp[];
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface RocksEngineOptions {
  /** Memtable size. Larger lets short-lived keys (intake entries) die before they reach a table file. */
  writeBufferSize?: number;
  /** Snappy block compression (binding default: on). */
  compression?: boolean;
  /** Upper bound on ops merged into one group commit. */
  maxGroupOps?: number;
  /** Called with the number of callers each synced batch carried (for metrics). */
  onGroupCommit?: (callers: number, seconds: number) => void;
}

export class RocksEngine implements KvEngine {
  private db: RocksDb | null = null;
  private readonly queue: PendingWrite[] = [];
  private writing = false;
  private readonly maxGroupOps: number;

  constructor(private readonly location: string, private readonly options: RocksEngineOptions = {}) {
    this.maxGroupOps = options.maxGroupOps ?? 20000;
  }

  async open(): Promise<void> {
    mkdirSync(this.location, { recursive: true });
    const db = rocksdb(this.location);
    await new Promise<void>((resolve, reject) =>
      db.open({
        createIfMissing: true,
        maxOpenFiles: 512,
        writeBufferSize: this.options.writeBufferSize ?? 4 * 1024 * 1024,
        compression: this.options.compression ?? true,
      }, (err) => (err ? reject(this.ioError('open', err)) : resolve())),
    );
    this.db = db;
  }

  async close(): Promise<void> {
    const db = this.db;
    if (!db) return;
    while (this.writing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    this.db = null;
    await new Promise<void>((resolve, reject) => db.close((err) => (err ? reject(this.ioError('close', err)) : resolve())));
  }

  private handle(): RocksDb {
    if (!this.db) throw new PosternError('STORAGE_CLOSED', `Database "${this.location}" is not open`);
    return this.db;
  }

  private ioError(what: string, err: Error): PosternError {
    return new PosternError('STORAGE_IO', `RocksDB ${what} failed at "${this.location}": ${err.message}`, { cause: err });
  }

  async get(key: string): Promise<Buffer | null> {
    // getMany answers a missing key with undefined; get() would build a NotFound Error (and its stack
    // trace) for every miss, which dominated the archiving path's CPU time.
    const [value] = await this.getMany([key]);
    return value ?? null;
  }

  getMany(keys: string[]): Promise<Array<Buffer | null>> {
    if (keys.length === 0) return Promise.resolve([]);
    const db = this.handle();
    return new Promise((resolve, reject) =>
      db.getMany(keys, { asBuffer: true }, (err, values) => (err ? reject(this.ioError('get', err)) : resolve(keys.map((_, i) => values?.[i] ?? null)))),
    );
  }

  write(ops: KvOp[], options: { sync: boolean }): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    if (!options.sync) return this.batch(ops, false);
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      this.flush();
    });
  }

  // async: a closed handle must reject, not throw, or flush() would leave `writing` set for good.
  private async batch(ops: KvOp[], sync: boolean): Promise<void> {
    const db = this.handle();
    // KvOps already have the binding's shape (abstract-leveldown copies each op itself): no second copy.
    return new Promise((resolve, reject) => db.batch(ops, { sync }, (err) => (err ? reject(this.ioError('write', err)) : resolve())));
  }

  private flush(): void {
    if (this.writing || this.queue.length === 0) return;
    const group: PendingWrite[] = [];
    let count = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0] as PendingWrite;
      if (group.length > 0 && count + next.ops.length > this.maxGroupOps) break;
      group.push(next);
      count += next.ops.length;
      this.queue.shift();
    }
    this.writing = true;
    const started = process.hrtime.bigint();
    const ops = group.length === 1 ? (group[0] as PendingWrite).ops : group.flatMap((g) => g.ops);
    this.batch(ops, true).then(
      () => {
        this.options.onGroupCommit?.(group.length, Number(process.hrtime.bigint() - started) / 1e9);
        for (const g of group) g.resolve();
      },
      (err: Error) => {
        for (const g of group) g.reject(err);
      },
    ).finally(() => {
      this.writing = false;
      this.flush();
    });
  }

  /** Compact the whole key space (maintenance and measuring bytes on disk). */
  compact(): Promise<void> {
    const db = this.handle();
    return new Promise((resolve, reject) => db.compactRange('\u0000', '\uffff\uffff', (err) => (err ? reject(this.ioError('compact', err)) : resolve())));
  }

  async *entries(range: KvRange): AsyncIterable<[string, Buffer]> {
    const it = this.handle().iterator({ ...range, keyAsBuffer: false, valueAsBuffer: true });
    try {
      for (;;) {
        const item = await new Promise<[string, Buffer] | null>((resolve, reject) =>
          it.next((err, key, value) => (err ? reject(this.ioError('iterate', err)) : resolve(key === undefined ? null : [key, value as Buffer]))),
        );
        if (item === null) return;
        yield item;
      }
    } finally {
      await new Promise<void>((resolve) => it.end(() => resolve()));
    }
  }
}
