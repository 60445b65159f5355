// The `blob-sweep` job kind (postgres-s3 backend only): removes blob objects in the bucket that no
// PostgreSQL manifest references, once older than `olderThanSeconds` (default 3600; see blob-sweep.ts).
// Options: { olderThanSeconds?: integer 0–31536000 }. Counts: found = orphan blobs, failed = versions
// Object Lock refused to delete; the summary has every count.
import { z } from 'zod';
import type { JobKind } from '../jobs/types.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_SWEEP_GRACE_SECONDS, sweepOrphanBlobs } from './blob-sweep.ts';
import type { PgS3Engine } from './pg-s3-engine.ts';

const options = z.strictObject({
  olderThanSeconds: z.number().int().min(0).max(365 * 86400).default(DEFAULT_SWEEP_GRACE_SECONDS),
});
export type BlobSweepJobOptions = z.infer<typeof options>;

export function blobSweepJobKind(engine: PgS3Engine, log: Logger): JobKind<BlobSweepJobOptions> {
  return {
    kind: 'blob-sweep',
    description: 'Orphan sweep (postgres-s3): delete S3 blob objects that no archive record references, older than a grace period',
    schema: options as unknown as z.ZodType<BlobSweepJobOptions>,
    async run(o, ctx) {
      let reported = { orphans: 0, refusedVersions: 0 };
      const counts = await sweepOrphanBlobs(engine, {
        olderThanSeconds: o.olderThanSeconds, signal: ctx.signal, log,
        onBatch: (c) => {
          ctx.count({ found: c.orphans - reported.orphans, failed: c.refusedVersions - reported.refusedVersions });
          reported = { orphans: c.orphans, refusedVersions: c.refusedVersions };
          ctx.progress('blob-sweep', `${c.blobs} blobs, ${c.orphans} orphans, ${c.deletedVersions} versions deleted, ${c.refusedVersions} refused`);
        },
      });
      return { summary: { ...counts } };
    },
  };
}
