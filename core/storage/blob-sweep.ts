// The orphan sweep of the postgres-s3 backend: a batch PUTs its blob objects before its records commit
// in PostgreSQL, so a commit that fails after the PUT (PostgreSQL down, the process killed) leaves an
// object no `b\0<sha256>` manifest points at. Such an object is invisible (no message references it) and
// reused if the same bytes come again; this sweep removes the ones older than a grace period (default
// one hour, far longer than any commit takes, so an in-flight commit is never raced). Only versions
// written before the cutoff are deleted: a new version PUT meanwhile by a commit of the same bytes stays.
// Object Lock refusals (an orphan PUT with a retain-until) are counted and logged, not errors.
// Trusts: the bucket listing and the manifests. Hands on: counts for the `blob-sweep` job.
import { isPosternError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { keys } from './kv-keys.ts';
import type { PgS3Engine } from './pg-s3-engine.ts';
import type { BlobVersion } from './s3-blob-store.ts';

export const DEFAULT_SWEEP_GRACE_SECONDS = 3600;
/** Blobs whose manifests are looked up in one query. */
const BATCH = 500;

export interface SweepOptions {
  /** Only versions written longer ago than this are candidates (default 3600). */
  olderThanSeconds?: number;
  signal?: AbortSignal;
  log?: Logger;
  /** Called after each batch of blobs with the counts so far. */
  onBatch?: (counts: SweepCounts) => void;
}

export interface SweepCounts {
  /** Distinct blobs with objects in the bucket. */
  blobs: number;
  /** Blobs with at least one old version and no manifest. */
  orphans: number;
  /** Versions (and delete markers) removed. */
  deletedVersions: number;
  /** Versions the store refused to delete (Object Lock retention or legal hold). */
  refusedVersions: number;
}

export async function sweepOrphanBlobs(engine: PgS3Engine, options: SweepOptions = {}): Promise<SweepCounts> {
  const cutoff = Date.now() - (options.olderThanSeconds ?? DEFAULT_SWEEP_GRACE_SECONDS) * 1000;
  const counts: SweepCounts = { blobs: 0, orphans: 0, deletedVersions: 0, refusedVersions: 0 };
  // Listing is in key order, so all objects of one blob (`blobs/<sha>` then `blobs/<sha>.<n>`) are adjacent.
  let batch = new Map<string, BlobVersion[]>();
  const flush = async (): Promise<void> => {
    const shas = [...batch.keys()];
    const manifests = await engine.meta.getMany(shas.map((sha) => keys.blob(sha)));
    for (const [i, sha] of shas.entries()) {
      if (manifests[i] !== null && manifests[i] !== undefined) continue;
      const old = (batch.get(sha) ?? []).filter((v) => v.lastModified < cutoff);
      if (old.length === 0) continue;
      counts.orphans += 1;
      for (const v of old) {
        try {
          await engine.blobs.deleteVersion(v.key, v.versionId);
          counts.deletedVersions += 1;
        } catch (err) {
          if (!isPosternError(err, 'HELD')) throw err;
          counts.refusedVersions += 1;
          options.log?.warn('Orphan blob object kept: Object Lock refuses its deletion until its retention ends', { sha256: sha, key: v.key, versionId: v.versionId });
        }
      }
    }
    batch = new Map();
    options.onBatch?.({ ...counts });
  };
  for await (const v of engine.blobs.listBlobVersions()) {
    let versions = batch.get(v.sha256);
    if (!versions) {
      if (batch.size >= BATCH) {
        options.signal?.throwIfAborted();
        await flush();
      }
      versions = [];
      batch.set(v.sha256, versions);
      counts.blobs += 1;
    }
    versions.push(v);
  }
  if (batch.size > 0) await flush();
  if (counts.orphans > 0) options.log?.info('Orphan blob objects swept', { ...counts });
  return counts;
}
