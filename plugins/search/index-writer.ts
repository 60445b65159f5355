// Writes to the index, asynchronous: IndexWriter runs them on the writer thread (writer-worker-main.ts),
// in order, one at a time; inProcessWrites() runs them on an IndexDb directly (tests, tools). Readers
// keep their own connection on the main thread (WAL: reads never wait for the writer).
import { Worker } from 'node:worker_threads';
import { PosternError } from '../../core/errors.ts';
import type { IndexDb, IndexDocument, IndexedEntry } from './index-db.ts';

export interface IndexWrites {
  write(user: string, folder: string, docs: IndexDocument[], entries: Array<IndexedEntry & { date: number }>, through: number): Promise<void>;
  removeEntries(user: string, folder: string, uids: number[]): Promise<void>;
  dropUser(user: string): Promise<void>;
  dropAll(): Promise<void>;
  dropOrphans(limit: number): Promise<number>;
  /** One step of keeping the field tables merged (IndexDb.mergeStep); true while there is more to do. */
  mergeStep(pages: number): Promise<boolean>;
}

export type WriteOp = 'write' | 'removeEntries' | 'dropUser' | 'dropAll' | 'dropOrphans' | 'mergeStep' | 'close';
export interface WriterRequest {
  id: number;
  op: WriteOp;
  args: unknown[];
}
export type WriterReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export function inProcessWrites(db: IndexDb): IndexWrites {
  return {
    write: async (...a) => db.write(...a),
    removeEntries: async (...a) => db.removeEntries(...a),
    dropUser: async (u) => db.dropUser(u),
    dropAll: async () => db.dropAll(),
    dropOrphans: async (n) => db.dropOrphans(n),
    mergeStep: async (pages) => db.mergeStep(pages),
  };
}

export class IndexWriter implements IndexWrites {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failed: Error | null = null;
  private readonly ready: Promise<void>;

  constructor(dir: string) {
    this.worker = new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: { dir }, execArgv: [] });
    this.worker.unref();
    let started!: () => void;
    this.ready = new Promise((r) => (started = r));
    this.worker.on('message', (reply: WriterReply) => {
      if (reply.id === 0) return started();
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.value);
      else p.reject(new PosternError('STORAGE_IO', `Search index write failed: ${reply.error}`));
    });
    const fail = (err: Error): void => {
      this.failed = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      started();
    };
    this.worker.on('error', (err) => fail(new PosternError('STORAGE_IO', `Search index writer failed: ${err.message}`)));
    this.worker.on('exit', () => fail(new PosternError('SHUTTING_DOWN', 'Search index writer stopped')));
  }

  private async call<T>(op: WriteOp, args: unknown[]): Promise<T> {
    await this.ready;
    if (this.failed) throw this.failed;
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, args } satisfies WriterRequest);
    });
  }

  write(user: string, folder: string, docs: IndexDocument[], entries: Array<IndexedEntry & { date: number }>, through: number): Promise<void> {
    return this.call('write', [user, folder, docs, entries, through]);
  }
  removeEntries(user: string, folder: string, uids: number[]): Promise<void> {
    return this.call('removeEntries', [user, folder, uids]);
  }
  dropUser(user: string): Promise<void> {
    return this.call('dropUser', [user]);
  }
  dropAll(): Promise<void> {
    return this.call('dropAll', []);
  }
  dropOrphans(limit: number): Promise<number> {
    return this.call('dropOrphans', [limit]);
  }
  mergeStep(pages: number): Promise<boolean> {
    return this.call('mergeStep', [pages]);
  }

  async close(): Promise<void> {
    if (!this.failed) await this.call('close', []).catch(() => undefined);
    await this.worker.terminate();
  }
}
