// The `export` job kind: runs one export the exports service created (options { id }), so its progress
// and counts show in `postern jobs show export-<id>` (found = selected, archived = exported, failed).
// A definition made by hand through the jobs API runs nothing: the service refuses an id that is not
// its own queued export of that job name.
import { z } from 'zod';
import type { JobKind } from '../jobs/types.ts';
import { EXPORT_ID, type ExportService } from './service.ts';

const options = z.strictObject({ id: z.string().regex(EXPORT_ID, 'must be an export id (16 hex digits)') });
export type ExportJobOptions = z.infer<typeof options>;

export function exportJobKind(service: ExportService): JobKind<ExportJobOptions> {
  return {
    kind: 'export',
    description: 'Export: writes the messages of one export (POST /api/v1/exports, `postern export`) with their manifest; created by the exports service',
    schema: options as unknown as z.ZodType<ExportJobOptions>,
    run: (o, ctx) => service.run(o.id, ctx),
  };
}
