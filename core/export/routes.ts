// Admin API routes of exports (/api/v1/…), each checking its own access (the area is reserved):
//   POST   exports                 {selection: {user, folder?} | {hold} | {query} | {targets} | {messages: [{user, folder, uid}]}, format: mbox|eml|zip} → 202 {export}
//   GET    exports                 the caller's exports (the admin token: every export)
//   GET    exports/:id             status, counts, file and manifest SHA-256 (creator, or the admin token)
//   GET    exports/:id/file        the export file, streamed (creator only; audited)
//   GET    exports/:id/manifest    the manifest (JSON lines), streamed (creator only; audited)
//   DELETE exports/:id             delete the files now, cancelling a running export (creator, or the admin token)
// Validates bodies with zod at the edge; the service checks privileges (core/export/access.ts).
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { HttpError, readJson, validated } from '../admin/http.ts';
import type { AdminRoutes, RouteContext, RouteDoc, RouteReply } from '../admin/routes.ts';
import { isPosternError } from '../errors.ts';
import { USER_NAME } from '../storage/types.ts';
import { ExportsBusyError, type ExportService } from './service.ts';
import { EXPORT_FORMATS, MAX_PICKS, type ExportSelection } from './types.ts';
import { targetsSchema } from '../jobs/targets.ts';

export const EXPORT_AREA = 'exports';

const selection = z.strictObject({
  user: z.string().regex(USER_NAME, 'must be a user name').optional(),
  folder: z.string().min(1).max(1000).optional(),
  hold: z.string().min(1).max(64).optional(),
  query: z.string().min(1).max(2000).optional(),
  targets: targetsSchema.optional(),
  messages: z.array(z.strictObject({
    user: z.string().regex(USER_NAME, 'must be a user name'), folder: z.string().min(1).max(1000), uid: z.number().int().min(1).max(0xffffffff),
  })).min(1).max(MAX_PICKS).optional(),
}).refine((s) => [s.user, s.hold, s.query, s.targets, s.messages].filter((v) => v !== undefined).length === 1, 'give exactly one of "user", "hold" or "query", or "targets" (several users\' archives), or "messages" (picked entries)')
  .refine((s) => s.folder === undefined || s.user !== undefined, '"folder" is only meaningful with "user"');
const createBody = z.strictObject({ selection, format: z.enum(EXPORT_FORMATS) });

function asSelection(s: z.infer<typeof selection>): ExportSelection {
  if (s.hold !== undefined) return { hold: s.hold };
  if (s.query !== undefined) return { query: s.query };
  if (s.targets !== undefined) return { targets: s.targets };
  if (s.messages !== undefined) return { messages: s.messages };
  return s.folder !== undefined ? { user: s.user as string, folder: s.folder } : { user: s.user as string };
}

async function guarded(ctx: RouteContext, fn: () => Promise<RouteReply | undefined>): Promise<RouteReply | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ExportsBusyError) {
      ctx.res.setHeader('retry-after', '30');
      throw new HttpError(429, err.message);
    }
    if (isPosternError(err, 'UNAVAILABLE') || isPosternError(err, 'SHUTTING_DOWN')) throw new HttpError(503, err.message);
    throw err;
  }
}

export function addExportRoutes(routes: AdminRoutes, service: ExportService): void {
  routes.reserve([EXPORT_AREA], 'export');
  const add = (method: 'GET' | 'POST' | 'DELETE', pattern: string, handler: (ctx: RouteContext) => Promise<RouteReply | undefined>, doc: RouteDoc): void =>
    routes.add(method, pattern, (ctx) => guarded(ctx, () => handler(ctx)), 'export', doc);
  const remote = (ctx: RouteContext): string => ctx.req.socket?.remoteAddress ?? '';
  const id = (ctx: RouteContext): string => ctx.params.id ?? '';

  add('POST', EXPORT_AREA, async (ctx) => {
    const b = validated(createBody, await readJson(ctx.req));
    const rec = await service.create(ctx.principal, remote(ctx), asSelection(b.selection), b.format);
    return { status: 202, body: { export: rec } };
  }, { summary: 'Start an export of an archive (folder), a legal hold or a search as mbox, eml or zip', access: ['export', 'admin', 'auditor'], accessNote: 'own archive with export; other archives, holds and searches per core/export/access.ts', body: createBody, responses: { 202: 'the export, running', 400: 'invalid body', 404: 'no such user, folder or hold', 413: 'body too large', 429: 'too many exports at once; see Retry-After', 503: 'shutting down' } });
  add('GET', EXPORT_AREA, async (ctx) => ({ body: { exports: service.list(ctx.principal) } }), { summary: 'The caller\'s exports (the admin token: every export)', access: ['user'], responses: { 200: 'the exports' } });
  add('GET', `${EXPORT_AREA}/:id`, async (ctx) => ({ body: { export: service.get(ctx.principal, id(ctx)) } }), { summary: 'An export\'s status, counts, file and manifest SHA-256', access: ['user'], accessNote: 'its creator, or the admin token', responses: { 200: 'the export', 404: 'no such export' } });
  for (const which of ['file', 'manifest'] as const) {
    add('GET', `${EXPORT_AREA}/:id/${which}`, async (ctx) => {
      const { info, stream } = await service.open(ctx.principal, id(ctx), which, remote(ctx));
      const ext = which === 'manifest' ? 'manifest.jsonl' : info.name.replace(/^export\./, '');
      ctx.res.writeHead(200, {
        'content-type': info.contentType, 'content-length': info.size, 'x-content-sha256': info.sha256,
        'content-disposition': `attachment; filename="postern-export-${id(ctx)}.${ext}"`,
      });
      await pipeline(stream, ctx.res);
      return undefined;
    }, { summary: `The export's ${which === 'file' ? 'file' : 'manifest (JSON lines)'}, streamed (audited)`, access: ['user'], accessNote: 'its creator only', produces: 'application/octet-stream', responses: { 200: `the ${which}`, 404: 'no such export', 409: 'not finished' } });
  }
  add('DELETE', `${EXPORT_AREA}/:id`, async (ctx) => {
    await service.remove(ctx.principal, id(ctx), remote(ctx));
    return { body: { removed: id(ctx) } };
  }, { summary: 'Delete an export\'s files now, cancelling it when running', access: ['user'], accessNote: 'its creator, or the admin token', responses: { 200: 'removed', 404: 'no such export' } });
}
