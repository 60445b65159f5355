// The `verify` job kind: integrity verification on a schedule (jobs service). Options: none. Each problem
// becomes a run error (bounded by the scheduler), so a damaged archive ends "completed-with-errors"; the
// summary carries counts by kind and per user and folder. Hands the run to VerifyService.
import { z } from 'zod';
import type { JobKind } from '../jobs/types.ts';
import { summarizeReport, type VerifyService } from './service.ts';

export function verifyJobKind(service: VerifyService): JobKind<Record<string, never>> {
  return {
    kind: 'verify',
    description: 'Integrity verification: re-read and re-hash every blob, check message and entry references and reference counts',
    schema: z.strictObject({}) as unknown as z.ZodType<Record<string, never>>,
    async run(_options, ctx) {
      const report = await service.run(`job:${ctx.jobName}`, { signal: ctx.signal, progress: (phase, detail) => ctx.progress(phase, detail) });
      ctx.count({ found: report.checked.blobs + report.checked.messages + report.checked.entries, failed: report.total });
      for (const p of report.details.slice(0, 200)) {
        const where = p.entries.map((e) => `${e.user}/${e.folder}/${e.uid}`).join(', ');
        ctx.error(`${p.kind}: ${p.detail}${where ? ` (affects ${p.affected} entries: ${where})` : ''}`);
      }
      return { summary: summarizeReport(report) };
    },
  };
}
