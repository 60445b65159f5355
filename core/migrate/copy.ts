// The copying phases of `postern migrate`, each resumable from its checkpoint (state.ts):
// 1. chunks: every blob chunk `c\0<sha256>\0<n>` of the source becomes its S3 object, the encoded bytes
//    unchanged (same codec and cipher), PUT with the COMPLIANCE retain-until its entries give it;
// 2. records: every other key goes to its PostgreSQL table, in batches of one transaction each.
// Chunks come first, so no record copied ever points at a missing object. After each batch is durable
// in the target, the checkpoint moves to its last key. Trusts: the source (our own archive); the target's
// engine refuses a key with no table, which stops the migration (nothing is skipped silently).
import type { KvEngine, KvOp, KvRange } from '../storage/kv.ts';
import type { PgS3Engine } from '../storage/pg-s3-engine.ts';
import type { Checkpoint, MigrationState } from './state.ts';

const CHUNK_START = 'c\u0000';
const CHUNK_END = 'c\u0001';
/** Concurrent S3 PUTs. */
const PARALLEL = 16;
/** A records batch is written once it holds this many bytes, whatever its count. */
const BATCH_BYTES = 4 * 1024 * 1024;

export interface CopyProgress {
  phase: 'chunks' | 'records';
  copied: number;
  bytes: number;
}

export interface CopyOptions {
  /** Keys per PostgreSQL transaction, and chunks per checkpoint. */
  batch: number;
  onProgress?: (p: CopyProgress) => void;
}

const CHUNK_KEY = /^c\u0000([0-9a-f]{64})\u0000([0-9a-f]{6})$/;

/** The (sha256, n) of a chunk key; a malformed one stops the migration. */
export function parseChunkKey(key: string): { sha256: string; n: number } {
  const m = CHUNK_KEY.exec(key);
  if (!m) throw new Error(`Source key ${JSON.stringify(key.slice(0, 100))} is in the chunk range but is not a chunk key`);
  return { sha256: m[1] as string, n: parseInt(m[2] as string, 16) };
}

/** A range after the checkpoint's key (exclusive), or from the start. */
function after(range: { gte: string; lt?: string }, last: string | null): KvRange {
  const { lt } = range;
  if (last !== null && last >= range.gte) return { gt: last, ...(lt !== undefined ? { lt } : {}) };
  return range.gte === '' ? (lt !== undefined ? { lt } : {}) : range;
}

export async function copyChunks(
  source: KvEngine, target: PgS3Engine, retention: Map<string, string>, state: MigrationState, checkpoint: Checkpoint, options: CopyOptions,
): Promise<CopyProgress> {
  const progress: CopyProgress = { phase: 'chunks', copied: 0, bytes: 0 };
  const now = new Date().toISOString();
  let pending: Array<{ key: string; value: Buffer }> = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const items = pending;
    pending = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const { key, value } = items[next++] as { key: string; value: Buffer };
        const { sha256, n } = parseChunkKey(key);
        const until = retention.get(sha256);
        await target.blobs.put(sha256, n, value, { retainUntil: until !== undefined && until > now ? until : null, legalHold: false });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
    progress.copied += items.length;
    progress.bytes += items.reduce((s, i) => s + i.value.length, 0);
    checkpoint.lastKey = (items[items.length - 1] as { key: string }).key;
    await state.save(checkpoint);
    options.onProgress?.({ ...progress });
  };
  for await (const [key, value] of source.entries(after({ gte: CHUNK_START, lt: CHUNK_END }, checkpoint.lastKey))) {
    pending.push({ key, value });
    if (pending.length >= options.batch) await flush();
  }
  await flush();
  return progress;
}

export async function copyRecords(source: KvEngine, target: PgS3Engine, state: MigrationState, checkpoint: Checkpoint, options: CopyOptions): Promise<CopyProgress> {
  const progress: CopyProgress = { phase: 'records', copied: 0, bytes: 0 };
  let ops: KvOp[] = [];
  let bytes = 0;
  const flush = async (): Promise<void> => {
    if (ops.length === 0) return;
    await target.meta.write(ops, { sync: true });
    progress.copied += ops.length;
    progress.bytes += bytes;
    checkpoint.lastKey = (ops[ops.length - 1] as KvOp).key;
    ops = [];
    bytes = 0;
    await state.save(checkpoint);
    options.onProgress?.({ ...progress });
  };
  // Everything but the chunk range, in key order: the keys before `c\0`, then those after it.
  const ranges: Array<{ gte: string; lt?: string }> = [{ gte: '', lt: CHUNK_START }, { gte: CHUNK_END }];
  for (const range of ranges) {
    if (checkpoint.lastKey !== null && range.lt !== undefined && checkpoint.lastKey >= range.lt) continue;
    for await (const [key, value] of source.entries(after(range, checkpoint.lastKey))) {
      ops.push({ type: 'put', key, value });
      bytes += key.length + value.length;
      if (ops.length >= options.batch || bytes >= BATCH_BYTES) await flush();
    }
  }
  await flush();
  return progress;
}
