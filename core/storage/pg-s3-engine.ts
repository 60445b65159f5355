// The engine under storage.backend: postgres-s3: archive records in PostgreSQL (pg-kv-engine.ts), blob
// chunks (the `c\0<sha256>\0<n>` keys of KEYS.md) as objects in S3 (s3-blob-store.ts). The archive code
// above is the embedded archive's, unchanged: a batch's chunk puts are PUT first (in parallel), then its
// records commit in one PostgreSQL transaction, then chunks it deletes are removed from S3. A PUT whose
// commit then fails leaves an object no record points at: a later commit of the same bytes writes it
// again (a new version), and `sweepOrphans` removes such objects once they are older than a grace period.
// Trusts: the archive's keys and protections. Hands on: KvEngine, SharedKv, ObjectLock.
import { PosternError, errorMessage } from '../errors.ts';
import type { BlobProtection, KvEngine, KvOp, KvRange, ObjectLock, SharedKv } from './kv.ts';
import { PgKvEngine } from './pg-kv-engine.ts';
import { S3BlobStore, type ObjectProtection } from './s3-blob-store.ts';

const CHUNK_KEY = /^c\u0000([0-9a-f]{64})\u0000([0-9a-f]{6})$/;
/** Concurrent S3 requests of one batch. */
const PARALLEL = 16;

function chunkOf(key: string): { sha256: string; n: number } | null {
  const m = CHUNK_KEY.exec(key);
  return m ? { sha256: m[1] as string, n: parseInt(m[2] as string, 16) } : null;
}

async function inParallel<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, run));
}

export interface PgS3EngineEvents {
  /** An S3 deletion after a committed batch failed: the object stays until the orphan sweep. */
  onDeleteFailure?: (sha256: string, err: Error) => void;
}

export class PgS3Engine implements KvEngine {
  readonly shared: SharedKv;
  readonly objectLock: ObjectLock;

  constructor(readonly meta: PgKvEngine, readonly blobs: S3BlobStore, private readonly events: PgS3EngineEvents = {}) {
    this.shared = meta.shared;
    this.objectLock = {
      writeProtected: (ops, options, protect) => this.writeWith(ops, options, protect),
      setLegalHold: (sha, chunks, on) => this.setLegalHold(sha, chunks, on),
    };
  }

  async open(): Promise<void> {
    await this.blobs.open();
    await this.meta.open();
  }

  async close(): Promise<void> {
    await this.meta.close();
    this.blobs.close();
  }

  async get(key: string): Promise<Buffer | null> {
    const c = chunkOf(key);
    return c ? this.blobs.get(c.sha256, c.n) : this.meta.get(key);
  }

  async getMany(keys: string[]): Promise<Array<Buffer | null>> {
    const out: Array<Buffer | null> = new Array<Buffer | null>(keys.length).fill(null);
    const metaAt: number[] = [];
    await Promise.all(keys.map(async (k, i) => {
      const c = chunkOf(k);
      if (c) out[i] = await this.blobs.get(c.sha256, c.n);
      else metaAt.push(i);
    }));
    const found = await this.meta.getMany(metaAt.map((i) => keys[i] as string));
    metaAt.forEach((at, j) => {
      out[at] = found[j] ?? null;
    });
    return out;
  }

  entries(range: KvRange): AsyncIterable<[string, Buffer]> {
    const lower = range.gte ?? range.gt ?? '';
    if (lower.startsWith('c\u0000')) throw new PosternError('STORAGE_IO', 'Blob chunks live in S3 and cannot be range-scanned through the archive engine');
    return this.meta.entries(range);
  }

  write(ops: KvOp[], options: { sync: boolean }): Promise<void> {
    return this.writeWith(ops, options, []);
  }

  private async writeWith(ops: KvOp[], options: { sync: boolean }, protect: BlobProtection[]): Promise<void> {
    const wanted = new Map<string, BlobProtection>();
    for (const p of protect) {
      const prev = wanted.get(p.sha256);
      wanted.set(p.sha256, prev ? {
        ...p,
        retainUntil: [prev.retainUntil, p.retainUntil].filter((x): x is string => x !== null).sort().pop() ?? null,
        legalHold: prev.legalHold || p.legalHold,
      } : p);
    }
    const now = new Date().toISOString();
    const lockOf = (sha: string): ObjectProtection | undefined => {
      const p = wanted.get(sha);
      if (!p) return undefined;
      return { retainUntil: p.retainUntil !== null && p.retainUntil > now ? p.retainUntil : null, legalHold: p.legalHold };
    };
    const puts: Array<{ sha256: string; n: number; value: Buffer }> = [];
    const dels: Array<{ sha256: string; n: number }> = [];
    const rest: KvOp[] = [];
    for (const op of ops) {
      const c = chunkOf(op.key);
      if (!c) rest.push(op);
      else if (op.type === 'put') puts.push({ ...c, value: op.value });
      else dels.push(c);
    }
    // 1. Bytes first, protected at their PUT; blobs already stored get their protection extended.
    const putShas = new Set(puts.map((p) => p.sha256));
    await inParallel(puts, (p) => this.blobs.put(p.sha256, p.n, p.value, lockOf(p.sha256)));
    const existing = [...wanted.values()].filter((p) => !putShas.has(p.sha256));
    await inParallel(existing.flatMap((p) => Array.from({ length: p.chunks }, (_, n) => ({ p, n }))), async ({ p, n }) => {
      const lock = lockOf(p.sha256) as ObjectProtection;
      if (lock.retainUntil) await this.blobs.retain(p.sha256, n, lock.retainUntil);
      if (lock.legalHold) await this.blobs.legalHold(p.sha256, n, true);
    });
    // 2. The records, in one transaction.
    await this.meta.write(rest, options);
    // 3. Bytes no record references any more. Failing here loses nothing: the object is an orphan.
    await inParallel(dels, async (d) => {
      try {
        await this.blobs.delete(d.sha256, d.n);
      } catch (err) {
        this.events.onDeleteFailure?.(d.sha256, err instanceof Error ? err : new Error(errorMessage(err)));
      }
    });
  }

  private async setLegalHold(sha256: string, chunks: number, on: boolean): Promise<boolean> {
    let changed = false;
    for (let n = 0; n < chunks; n++) {
      const current = await this.blobs.protection(sha256, n);
      if (current === null || current.legalHold === on) continue;
      await this.blobs.legalHold(sha256, n, on);
      changed = true;
    }
    return changed;
  }
}
