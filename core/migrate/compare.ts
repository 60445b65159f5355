// The verification of `postern migrate`: source and target compared after the copy.
// - Records: per key prefix (one PostgreSQL table each), the count of keys and a SHA-256 over every
//   (key, value) pair in key order, computed on each side from its own storage.
// - Objects: every source chunk's S3 object is read back whole and compared byte for byte with the
//   source's encoded chunk; the chunks of each blob are decoded (codec, cipher) and the SHA-256 of the
//   decoded bytes must equal the blob's id. Every object that must be retained is checked to carry a
//   COMPLIANCE retain-until at least as late as its entries ask.
// Reads only. Hands on a report; the caller decides the exit status.
import { createHash, type Hash } from 'node:crypto';
import { decodeChunk, type ChunkCipher } from '../storage/blob-codec.ts';
import type { KvEngine } from '../storage/kv.ts';
import { prefixEnd } from '../storage/kv-keys.ts';
import type { PgS3Engine } from '../storage/pg-s3-engine.ts';
import { TABLES } from '../storage/pg-schema.ts';
import { parseChunkKey } from './copy.ts';

const PARALLEL = 16;
/** Problems listed in the report at most (the counts say how many there were). */
const MAX_LISTED = 20;

export interface PrefixCheck {
  prefix: string;
  table: string;
  source: { count: number; sha256: string };
  target: { count: number; sha256: string };
  ok: boolean;
}

export interface MigrationReport {
  ok: boolean;
  records: PrefixCheck[];
  objects: { count: number; bytes: number; blobs: number; mismatched: number; retentionChecked: number; retentionMissing: number };
  problems: string[];
}

function pairHash(): { add(k: string, v: Buffer): void; count: number; digest(): string } {
  const h = createHash('sha256');
  const len = Buffer.alloc(4);
  let count = 0;
  return {
    add(k, v) {
      const kb = Buffer.from(k, 'utf8');
      len.writeUInt32BE(kb.length);
      h.update(len).update(kb);
      len.writeUInt32BE(v.length);
      h.update(len).update(v);
      count++;
    },
    get count() {
      return count;
    },
    digest: () => h.digest('hex'),
  };
}

async function hashRange(kv: KvEngine, prefix: string): Promise<{ count: number; sha256: string }> {
  const p = pairHash();
  const start = `${prefix}\u0000`;
  for await (const [k, v] of kv.entries({ gte: start, lt: prefixEnd(start) })) p.add(k, v);
  return { count: p.count, sha256: p.digest() };
}

export async function compareArchives(
  source: KvEngine, target: PgS3Engine, retention: Map<string, string>, cipher: ChunkCipher | undefined, onPhase: (what: string) => void = () => undefined,
): Promise<MigrationReport> {
  const problems: string[] = [];
  const problem = (p: string): void => void (problems.length < MAX_LISTED && problems.push(p));

  onPhase('comparing records');
  const records: PrefixCheck[] = [];
  for (const t of TABLES) {
    const [s, d] = [await hashRange(source, t.prefix), await hashRange(target.meta, t.prefix)];
    const ok = s.count === d.count && s.sha256 === d.sha256;
    if (!ok) problem(`Table ${t.table} (prefix "${t.prefix}"): source ${s.count} keys, target ${d.count}${s.count === d.count ? ' (same count, different content)' : ''}`);
    records.push({ prefix: t.prefix, table: t.table, source: s, target: d, ok });
  }

  onPhase('re-reading objects');
  const objects = { count: 0, bytes: 0, blobs: 0, mismatched: 0, retentionChecked: 0, retentionMissing: 0 };
  let blob: { sha256: string; next: number; hash: Hash; broken: boolean } | null = null;
  const finishBlob = (): void => {
    if (!blob) return;
    objects.blobs++;
    const got = blob.hash.digest('hex');
    if (!blob.broken && got !== blob.sha256) {
      objects.mismatched++;
      problem(`Blob ${blob.sha256}: its objects decode to bytes with SHA-256 ${got}`);
    }
    blob = null;
  };
  const check = async (key: string, stored: Buffer): Promise<{ key: string; stored: Buffer; object: Buffer | null; retainedUntil: string | null | undefined }> => {
    const { sha256, n } = parseChunkKey(key);
    const object = await target.blobs.get(sha256, n);
    const wanted = retention.get(sha256);
    let retainedUntil: string | null | undefined;
    if (wanted !== undefined && Date.parse(wanted) > Date.now()) retainedUntil = (await target.blobs.protection(sha256, n))?.retainUntil ?? null;
    return { key, stored, object, retainedUntil };
  };
  let window: Array<[string, Buffer]> = [];
  const drain = async (): Promise<void> => {
    const results = [];
    for (let i = 0; i < window.length; i += PARALLEL) results.push(...(await Promise.all(window.slice(i, i + PARALLEL).map(([k, v]) => check(k, v)))));
    window = [];
    for (const r of results) {
      const { sha256, n } = parseChunkKey(r.key);
      if (blob?.sha256 !== sha256) {
        finishBlob();
        blob = { sha256, next: 0, hash: createHash('sha256'), broken: false };
      }
      const b = blob as { sha256: string; next: number; hash: Hash; broken: boolean };
      objects.count++;
      objects.bytes += r.stored.length;
      if (n !== b.next && !b.broken) {
        b.broken = true;
        objects.mismatched++;
        problem(`Blob ${sha256}: chunk ${b.next} is missing from the source`);
      }
      b.next = n + 1;
      if (r.object === null || !r.object.equals(r.stored)) {
        if (!b.broken) objects.mismatched++;
        b.broken = true;
        problem(`Object of blob ${sha256} chunk ${n}: ${r.object === null ? 'missing' : `${r.object.length} bytes differ from the source's ${r.stored.length}`}`);
      } else if (!b.broken) {
        try {
          b.hash.update(decodeChunk(r.object, cipher));
        } catch (err) {
          b.broken = true;
          objects.mismatched++;
          problem(`Object of blob ${sha256} chunk ${n} does not decode: ${(err as Error).message}`);
        }
      }
      if (r.retainedUntil !== undefined) {
        objects.retentionChecked++;
        const wanted = retention.get(sha256) as string;
        if (r.retainedUntil === null || Date.parse(r.retainedUntil) < Date.parse(wanted)) {
          objects.retentionMissing++;
          problem(`Object of blob ${sha256} chunk ${n}: retained until ${r.retainedUntil ?? 'nothing'}, its entries ask ${wanted}`);
        }
      }
    }
  };
  for await (const entry of source.entries({ gte: 'c\u0000', lt: 'c\u0001' })) {
    window.push(entry);
    if (window.length >= PARALLEL * 8) await drain();
  }
  await drain();
  finishBlob();

  const ok = records.every((r) => r.ok) && objects.mismatched === 0 && objects.retentionMissing === 0;
  return { ok, records, objects, problems };
}
