// KvEngine on the `rocksdb` binding (RocksDB 6.x). Synced writes are grouped: while one synced batch is
// being written, later callers queue, and the next batch carries all of them with a single fsync
// (unsynced writes made meanwhile join that batch too).
// After a failed write (a full disk, an I/O error) nothing more is written to that handle: the next
// write first closes and reopens the database, whose recovery drops the torn tail of the write-ahead
// log and starts a new one, so no later acknowledged write can sit behind a torn record. Every synced
// batch carries a sequence number that a ledger file beside the database witnesses (write-ledger.ts),
// so a database that lost acknowledged writes anyway is noticed at open and the loss is kept.
// Hands out plain strings and Buffers; no binding types escape this file.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { PosternError, errorMessage } from '../errors.ts';
import type { KvEngine, KvOp, KvRange } from './kv.ts';
import { decodeSeq, encodeSeq, readLedger, writeLedger, type WriteLoss } from './write-ledger.ts';

/** Engine bookkeeping keys; no application key starts with NUL. */
const ENGINE_PREFIX = '\u0000engine\u0000';
const SEQ_KEY = `${ENGINE_PREFIX}seq`;
const LOSS_KEY = `${ENGINE_PREFIX}losses`;
/** A failed reopen is not retried sooner than this; writes meanwhile are refused at once. */
const RECOVERY_INTERVAL_MS = 1000;
const LEDGER_INTERVAL_MS = 1000;
/** Longest a read waits for a reopen in progress before it is answered with STORAGE_RECOVERING. */
const READ_WAIT_MS = 5000;

interface RocksIterator {
  next(cb: (err: Error | undefined, key?: string, value?: Buffer) => void): void;
  end(cb: (err?: Error) => void): void;
}
interface RocksDb {
  open(opts: Record<string, unknown>, cb: (err?: Error) => void): void;
  close(cb: (err?: Error) => void): void;
  get(key: string, opts: { asBuffer: boolean }, cb: (err: Error | undefined, value?: Buffer) => void): void;
  getMany(keys: string[], opts: { asBuffer: boolean }, cb: (err: Error | undefined, values?: Array<Buffer | undefined>) => void): void;
  batch(ops: Array<{ type: 'put' | 'del'; key: string; value?: Buffer }>, opts: { sync: boolean }, cb: (err?: Error) => void): void;
  iterator(opts: Record<string, unknown>): RocksIterator;
  compactRange(start: string, end: string, cb: (err?: Error) => void): void;
}

const require = createRequire(import.meta.url);
const rocksdb = require('rocksdb') as (location: string) => RocksDb;

interface PendingWrite {
  ops: KvOp[];
  /** False for an unsynced write riding a synced group (not counted as a group commit caller). */
  sync: boolean;
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
  /**
   * Opened only to be read by a tool that must exclude the server (postern migrate): the database is
   * opened for writing, which takes RocksDB's LOCK file so no server can open it meanwhile, but the
   * ledger is neither checked nor written and every write is refused.
   */
  exclusiveReader?: boolean;
  /** Called with the number of callers each synced batch carried (for metrics). */
  onGroupCommit?: (callers: number, seconds: number) => void;
  /** A write failed: writes are refused until the database has been reopened. */
  onWriteFailure?: (err: Error) => void;
  /** The database was reopened after a failed write (or the attempt failed). */
  onRecovery?: (ok: boolean, err?: Error) => void;
  /** Synced writes the ledger had seen durable are missing from the database. */
  onWriteLoss?: (loss: WriteLoss) => void;
}

export class RocksEngine implements KvEngine {
  private db: RocksDb | null = null;
  private readonly queue: PendingWrite[] = [];
  private writing = false;
  private readonly maxGroupOps: number;
  private readonly ledgerFile: string;
  /** Sequence of the last synced batch known durable, and the last one the ledger records. */
  private seq = 0;
  private ledgerSeq = 0;
  private ledgerTimer: NodeJS.Timeout | null = null;
  private ledgerSaving = false;
  /** Set by a failed write; cleared only by a successful reopen. */
  private failure: Error | null = null;
  private recovering: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Iterations (entries()) in progress. */
  private iterating = 0;
  private lastRecoveryAttempt = 0;
  private losses_: WriteLoss[] = [];
  private closed = false;

  constructor(private readonly location: string, private readonly options: RocksEngineOptions = {}) {
    this.maxGroupOps = options.maxGroupOps ?? 20000;
    this.ledgerFile = `${location.replace(/\/+$/, '')}.ledger`;
  }

  async open(): Promise<void> {
    mkdirSync(this.location, { recursive: true });
    this.closed = false;
    this.db = await this.openDb();
    if (this.options.exclusiveReader) {
      this.seq = decodeSeq((await this.getManyFrom(this.db, [SEQ_KEY]))[0] ?? null);
      this.ledgerSeq = this.seq;
      return;
    }
    await this.checkLedger(readLedger(this.ledgerFile).seq);
    this.ledgerTimer = setInterval(() => void this.saveLedger(), LEDGER_INTERVAL_MS);
    this.ledgerTimer.unref();
  }

  /** readOnly: a handle that only reads (RocksDB replays the log in memory and writes nothing). */
  private async openDb(readOnly = false): Promise<RocksDb> {
    const db = rocksdb(this.location);
    await new Promise<void>((resolve, reject) =>
      db.open({
        createIfMissing: !readOnly,
        readOnly,
        maxOpenFiles: 512,
        writeBufferSize: this.options.writeBufferSize ?? 4 * 1024 * 1024,
        compression: this.options.compression ?? true,
      }, (err) => (err ? reject(this.ioError('open', err)) : resolve())),
    );
    return db;
  }

  /** Compare the database's sequence with what was known durable; record a loss, then continue from the higher. */
  private async checkLedger(known: number | null): Promise<void> {
    const db = this.handle();
    const [seqRaw, lossRaw] = await this.getManyFrom(db, [SEQ_KEY, LOSS_KEY]);
    const dbSeq = decodeSeq(seqRaw ?? null);
    this.losses_ = lossRaw ? (JSON.parse(lossRaw.toString('utf8')) as WriteLoss[]) : [];
    if (known !== null && known > dbSeq) {
      const loss: WriteLoss = { detectedAt: new Date().toISOString(), batches: known - dbSeq, ledgerSeq: known, databaseSeq: dbSeq };
      this.losses_.push(loss);
      await this.batchOn(db, [
        { type: 'put', key: LOSS_KEY, value: Buffer.from(JSON.stringify(this.losses_.slice(-100))) },
        { type: 'put', key: SEQ_KEY, value: encodeSeq(known) },
      ], true);
      this.options.onWriteLoss?.(loss);
    }
    this.seq = Math.max(dbSeq, known ?? 0);
    if (this.seq !== known) {
      writeLedger(this.ledgerFile, this.seq);
    }
    this.ledgerSeq = this.seq;
  }

  /** The sequence number of the last synced batch in the database (it moves with every synced write). */
  syncedSequence(): number {
    return this.seq;
  }

  /** Losses of acknowledged writes noticed at open or reopen (kept in the database). */
  losses(): WriteLoss[] {
    return [...this.losses_];
  }

  /** Whether a failed write left the engine refusing writes until it is reopened. */
  get failed(): boolean {
    return this.failure !== null;
  }

  private async saveLedger(): Promise<void> {
    if (this.ledgerSaving || this.seq <= this.ledgerSeq) return;
    this.ledgerSaving = true;
    const seq = this.seq;
    try {
      writeLedger(this.ledgerFile, seq);
      this.ledgerSeq = seq;
    } catch {
      // The disk may be full: the ledger stays behind (it only ever under-reports) and is retried.
    } finally {
      this.ledgerSaving = false;
    }
  }

  async close(): Promise<void> {
    const db = this.db;
    this.closed = true;
    this.stopRetrying();
    if (this.ledgerTimer) clearInterval(this.ledgerTimer);
    this.ledgerTimer = null;
    await this.recovering?.catch(() => undefined);
    if (!db && !this.db) return;
    while (this.writing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.saveLedger();
    const current = this.db ?? db;
    this.db = null;
    if (!current) return;
    await new Promise<void>((resolve, reject) => current.close((err) => (err ? reject(this.ioError('close', err)) : resolve())));
  }

  private handle(): RocksDb {
    if (!this.db) {
      if (this.failure) throw this.recoveringError();
      throw new PosternError('STORAGE_CLOSED', `Database "${this.location}" is not open`);
    }
    return this.db;
  }

  private recoveringError(): PosternError {
    return new PosternError('STORAGE_RECOVERING',
      `Database "${this.location}" refuses writes after a failed write ("${errorMessage(this.failure)}") until it has been reopened for writing`, { cause: this.failure });
  }

  /**
   * Close and reopen after a failed write: RocksDB's recovery replays the write-ahead log up to the
   * last whole record and starts a new log, so later writes cannot land behind a torn record. When it
   * cannot reopen for writing yet (the disk is still full), it opens read-only so reads go on, and
   * tries again later. Attempts are at least RECOVERY_INTERVAL_MS apart (writes arriving meanwhile are
   * refused) and repeat by themselves while the failure lasts.
   */
  private recover(): Promise<void> {
    this.recovering ??= (async () => {
      if (this.closed) throw new PosternError('STORAGE_CLOSED', `Database "${this.location}" is not open`);
      if (Date.now() - this.lastRecoveryAttempt < RECOVERY_INTERVAL_MS) throw this.recoveringError();
      this.lastRecoveryAttempt = Date.now();
      // An iterator whose database is closed under it may never call back: let running iterations end
      // first (new ones wait for this recovery), for at most READ_WAIT_MS.
      const deadline = Date.now() + READ_WAIT_MS;
      while (this.iterating > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const old = this.db;
      this.db = null;
      if (old) await new Promise<void>((resolve) => old.close(() => resolve()));
      try {
        this.db = await this.openDb();
        // Everything acknowledged before the failure must have survived the reopen.
        await this.checkLedger(this.seq);
      } catch (err) {
        this.options.onRecovery?.(false, err as Error);
        if (this.db === null) this.db = await this.openDb(true).catch(() => null);
        throw this.recoveringError();
      }
      this.failure = null;
      this.stopRetrying();
      this.options.onRecovery?.(true);
    })().finally(() => {
      this.recovering = null;
    });
    return this.recovering;
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.options.onWriteFailure?.(err);
    // Reopen without waiting for a write: reads then see a fresh handle and writers an open one.
    this.retryTimer = setInterval(() => {
      if (!this.recovering && !this.closed) this.recover().catch(() => undefined);
    }, RECOVERY_INTERVAL_MS * 2);
    this.retryTimer.unref();
  }

  private stopRetrying(): void {
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.retryTimer = null;
  }

  /** Reads wait while the database is being reopened, at most READ_WAIT_MS. */
  private async readable(): Promise<RocksDb> {
    if (this.recovering) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.recovering.catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, READ_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    return this.handle();
  }

  private ioError(what: string, err: Error): PosternError {
    return new PosternError('STORAGE_IO', `RocksDB ${what} failed at "${this.location}": ${err.message}`, { cause: err });
  }

  get(key: string): Promise<Buffer | null> {
    return this.reading((db) => this.getFrom(db, key));
  }

  /** A read on the open handle, or after the reopen in progress (readable()). */
  private reading<T>(read: (db: RocksDb) => Promise<T>): Promise<T> {
    if (this.recovering || !this.db) return this.readable().then(read);
    return read(this.handle());
  }

  /**
   * One key through the binding's get, not getMany: getMany takes a snapshot on the calling (event
   * loop) thread, which waits for RocksDB's database mutex; while synced group commits run that wait
   * reached milliseconds per call (4–6 ms at worst beside 1 MB synced batches; measured), and the
   * archiving path's single-key reads (intake data read back) stalled the loop. A miss arrives as a
   * NotFound error whose stack is never read (as cheap as getMany's miss, measured).
   */
  private getFrom(db: RocksDb, key: string): Promise<Buffer | null> {
    return new Promise((resolve, reject) =>
      db.get(key, { asBuffer: true }, (err, value) => {
        if (!err) resolve(value ?? null);
        else if (err.message.startsWith('NotFound')) resolve(null);
        else reject(this.ioError('get', err));
      }),
    );
  }

  getMany(keys: string[]): Promise<Array<Buffer | null>> {
    if (keys.length === 0) return Promise.resolve([]);
    return this.reading((db) => this.getManyFrom(db, keys));
  }

  private getManyFrom(db: RocksDb, keys: string[]): Promise<Array<Buffer | null>> {
    return new Promise((resolve, reject) =>
      db.getMany(keys, { asBuffer: true }, (err, values) => (err ? reject(this.ioError('get', err)) : resolve(keys.map((_, i) => values?.[i] ?? null)))),
    );
  }

  write(ops: KvOp[], options: { sync: boolean }): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    if (this.options.exclusiveReader) return Promise.reject(new PosternError('STORAGE_IO', `Database "${this.location}" is open read-only (exclusive reader); nothing may be written to it`));
    // An unsynced write made while a synced group is being written rides the next group (one batch
    // call and one write-ahead log record fewer; synced is only stronger). Otherwise it goes at once.
    if (!options.sync && !this.writing) return this.unsynced(ops);
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, sync: options.sync, resolve, reject });
      this.flush();
    });
  }

  private async unsynced(ops: KvOp[]): Promise<void> {
    if (this.failure || this.recovering) await this.recover();
    try {
      await this.batch(ops, false);
    } catch (err) {
      if (isIoError(err)) this.fail(err as Error);
      throw err;
    }
  }

  // async: a closed handle must reject, not throw, or flush() would leave `writing` set for good.
  private async batch(ops: KvOp[], sync: boolean): Promise<void> {
    return this.batchOn(this.handle(), ops, sync);
  }

  private batchOn(db: RocksDb, ops: KvOp[], sync: boolean): Promise<void> {
    // KvOps already have the binding's shape (abstract-leveldown copies each op itself): no second copy.
    return new Promise((resolve, reject) => db.batch(ops, { sync }, (err) => (err ? reject(this.ioError('write', err)) : resolve())));
  }

  private flush(): void {
    if (this.writing || this.queue.length === 0) return;
    if (this.failure) {
      // Nothing is written to a handle whose write failed: reopen first, or refuse what waits.
      this.writing = true;
      this.recover().then(() => {
        this.writing = false;
        this.flush();
      }, (err: Error) => {
        for (const w of this.queue.splice(0)) w.reject(err);
        this.writing = false;
      });
      return;
    }
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
    const seq = this.seq + 1;
    const ops = group.flatMap((g) => g.ops);
    ops.push({ type: 'put', key: SEQ_KEY, value: encodeSeq(seq) });
    this.batch(ops, true).then(
      () => {
        this.seq = seq;
        if (this.options.onGroupCommit) {
          let callers = 0;
          for (const g of group) if (g.sync) callers++;
          if (callers > 0) this.options.onGroupCommit(callers, Number(process.hrtime.bigint() - started) / 1e9);
        }
        for (const g of group) g.resolve();
      },
      (err: Error) => {
        if (isIoError(err)) this.fail(err);
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
    // The engine's own keys (ENGINE_PREFIX) are never handed out; the limit counts only what is.
    const { limit } = range;
    const it = (await this.readable()).iterator({ ...range, ...(limit !== undefined ? { limit: limit + 2 } : {}), keyAsBuffer: false, valueAsBuffer: true });
    let yielded = 0;
    this.iterating++;
    try {
      while (limit === undefined || yielded < limit) {
        const item = await new Promise<[string, Buffer] | null>((resolve, reject) =>
          it.next((err, key, value) => (err ? reject(this.ioError('iterate', err)) : resolve(key === undefined ? null : [key, value as Buffer]))),
        );
        if (item === null) return;
        if (item[0].startsWith(ENGINE_PREFIX)) continue;
        yielded++;
        yield item;
      }
    } finally {
      this.iterating--;
      await new Promise<void>((resolve) => it.end(() => resolve()));
    }
  }
}

/**
 * A write the database itself failed (I/O error, full disk, corruption): not a closed or recovering
 * handle, and not a batch the binding refused before writing anything (an invalid key).
 */
function isIoError(err: unknown): boolean {
  if (!(err instanceof PosternError) || err.code !== 'STORAGE_IO') return false;
  const cause = errorMessage(err.cause);
  return !/cannot be (an empty|`null`|null|undefined)|^Invalid argument/i.test(cause);
}
