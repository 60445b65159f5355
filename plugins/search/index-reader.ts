// Reads of the index, asynchronous: IndexReader runs each query on one of its reader threads
// (reader-worker-main.ts), each with its own read-only connection (WAL: readers never wait for the
// writer), so a query over a large index never blocks the main thread's event loop (SMTP replies,
// IMAP, the API keep flowing). A query past its deadline fails with UNAVAILABLE and its thread is
// replaced at once (SQLite cannot be interrupted from outside: the old thread ends when its query
// returns; while MAX_ABANDONED such threads remain, new queries are refused rather than piling up). inProcessReads() runs them on an IndexDb
// directly (tests, tools).
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { PosternError } from '../../core/errors.ts';
import Database from 'better-sqlite3';
import type { IndexDb } from './index-db.ts';
import { walk, type WalkRequest, type WalkResult } from './walk.ts';

export type SqlParam = string | number;

export interface IndexReads {
  all<T>(sql: string, params: SqlParam[]): Promise<T[]>;
  /** A newest-first search walk (walk.ts). */
  walk(req: WalkRequest): Promise<WalkResult>;
}

export type ReaderRequest = { id: number; sql: string; params: SqlParam[] } | { id: number; walk: WalkRequest };
export type ReaderReply = { id: number; ok: true; rows: unknown[] } | { id: number; ok: false; error: string };

export function inProcessReads(db: IndexDb): IndexReads {
  let driverDb: Database.Database | null = null;
  return {
    all: async <T>(sql: string, params: SqlParam[]) => db.db.prepare<SqlParam[], T>(sql).all(...params),
    walk: async (req) => {
      driverDb ??= new Database(db.db.name, { readonly: true, fileMustExist: true });
      return walk(driverDb, db.db, req, (on, sql) => on.prepare(sql));
    },
  };
}

interface Pending {
  worker: Worker;
  resolve: (rows: unknown[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Threads left to finish a query past its deadline beyond which new queries are refused. */
const MAX_ABANDONED = 2;

class ReaderThread {
  private worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private ready: Promise<void>;
  private stopped = false;
  /** Threads whose query passed its deadline: asked to stop, they end when SQLite returns. */
  private readonly abandoned = new Set<Worker>();

  constructor(private readonly file: string, private readonly deadlineMs: number) {
    [this.worker, this.ready] = this.start();
  }

  get busy(): number {
    return this.pending.size;
  }

  private start(): [Worker, Promise<void>] {
    const worker = new Worker(new URL('./reader-worker.js', import.meta.url), { workerData: { file: this.file }, execArgv: [] });
    worker.unref();
    let started!: () => void;
    const ready = new Promise<void>((r) => (started = r));
    worker.on('message', (reply: ReaderReply) => {
      if (reply.id === 0) return started();
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      clearTimeout(p.timer);
      if (reply.ok) p.resolve(reply.rows);
      // An expression FTS5 cannot parse is the query's fault; anything else is the index's.
      else p.reject(new PosternError(/fts5: syntax error|unterminated string/i.test(reply.error) ? 'INVALID_INPUT' : 'STORAGE_IO', `Search failed: ${reply.error}`));
    });
    const fail = (err: Error): void => {
      this.rejectAll(worker, err);
      started();
      this.abandoned.delete(worker);
      if (!this.stopped && worker === this.worker) [this.worker, this.ready] = this.start();
    };
    worker.on('error', (err) => fail(new PosternError('STORAGE_IO', `Search reader failed: ${err.message}`)));
    worker.on('exit', () => fail(new PosternError('UNAVAILABLE', 'Search reader stopped')));
    return [worker, ready];
  }

  private rejectAll(worker: Worker, err: Error): void {
    for (const [id, p] of this.pending) {
      if (p.worker !== worker) continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
  }

  async all(sql: string, params: SqlParam[]): Promise<unknown[]> {
    return this.send({ sql, params });
  }

  async walk(req: WalkRequest): Promise<WalkResult> {
    return (await this.send({ walk: req }))[0] as WalkResult;
  }

  private async send(body: { sql: string; params: SqlParam[] } | { walk: WalkRequest }): Promise<unknown[]> {
    await this.ready;
    if (this.stopped) throw new PosternError('SHUTTING_DOWN', 'The search index is closed');
    if (this.abandoned.size >= MAX_ABANDONED) throw new PosternError('UNAVAILABLE', 'Search is busy finishing queries that ran too long; try again shortly');
    const worker = this.worker;
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        // SQLite cannot be interrupted from here: the thread is asked to stop (it ends when the query
        // returns) and a new one takes the next queries. Queries queued behind it fail too (they would
        // have waited as long).
        this.rejectAll(worker, new PosternError('UNAVAILABLE', `Search took longer than ${this.deadlineMs / 1000} s and was stopped; narrow the query`));
        if (worker === this.worker && !this.stopped) {
          this.abandoned.add(worker);
          [this.worker, this.ready] = this.start();
          void worker.terminate().catch(() => undefined);
        }
      }, this.deadlineMs);
      timer.unref();
      this.pending.set(id, { worker, resolve, reject, timer });
      worker.postMessage({ id, ...body } satisfies ReaderRequest);
    });
  }

  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.worker, ...this.abandoned].map((w) => w.terminate().catch(() => undefined)));
  }
}

export class IndexReader implements IndexReads {
  private readonly threads: ReaderThread[];

  constructor(dir: string, options: { threads?: number; deadlineMs?: number } = {}) {
    const file = join(dir, 'index.sqlite');
    this.threads = Array.from({ length: Math.max(1, options.threads ?? 2) }, () => new ReaderThread(file, options.deadlineMs ?? 30_000));
  }

  /** On the thread with the fewest queries waiting. */
  async all<T>(sql: string, params: SqlParam[]): Promise<T[]> {
    return (await this.idlest().all(sql, params)) as T[];
  }

  async walk(req: WalkRequest): Promise<WalkResult> {
    return this.idlest().walk(req);
  }

  private idlest(): ReaderThread {
    return this.threads.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}
