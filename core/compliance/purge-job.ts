// The `purge` job kind: the retention purge on a schedule or on demand through the jobs service.
// Options: { dryRun?: boolean, batchSize?: number (1–10000, default 500) }. Counts go to the run
// (found = entries past their maximum, archived = 0, failed = 0) and the summary (deleted, skipped held …);
// metrics are updated by the compliance service. Stops between batches when the run is cancelled.
import { z } from 'zod';
import type { JobKind } from '../jobs/types.ts';
import type { ComplianceService } from './service.ts';

const options = z.strictObject({
  dryRun: z.boolean().default(false),
  batchSize: z.number().int().min(1).max(10000).default(500),
});
export type PurgeJobOptions = z.infer<typeof options>;

export function purgeJobKind(service: ComplianceService): JobKind<PurgeJobOptions> {
  return {
    kind: 'purge',
    description: 'Retention purge: delete archive entries past their maximum retention in bounded batches, skipping held ones',
    schema: options as unknown as z.ZodType<PurgeJobOptions>,
    async run(o, ctx) {
      let reported = 0;
      const run = await service.purge(`job:${ctx.jobName}`, {
        dryRun: o.dryRun, batchSize: o.batchSize, signal: ctx.signal,
        onBatch: (r) => {
          ctx.count({ found: r.deleted + r.skippedHeld + r.skippedVetoed - reported });
          reported = r.deleted + r.skippedHeld + r.skippedVetoed;
          ctx.progress(o.dryRun ? 'purge (dry run)' : 'purge', `${r.batches} batches, ${r.deleted} ${o.dryRun ? 'eligible' : 'deleted'}, ${r.skippedHeld} held`);
        },
      });
      const { sample, ...counts } = run;
      return { summary: { ...counts, sample: sample.slice(0, 20).map((e) => `${e.user}/${e.folder}/${e.uid}`) } };
    },
  };
}
