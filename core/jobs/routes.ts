// Admin API routes of the jobs service: kinds, list/show/create/update/delete, run (or a dry list),
// cancel and the results history. Validates bodies and queries at the edge; maps typed errors to
// HTTP statuses; hands secrets only in (the service seals them), never out.
import { z } from 'zod';
import type { AdminRoutes, RouteContext, RouteDoc, RouteReply } from '../admin/routes.ts';
import { HttpError, readJson, validated } from '../admin/http.ts';
import { PosternError, isPosternError } from '../errors.ts';
import { TOKEN_PRINCIPAL } from '../compliance/access.ts';
import type { JobService } from './service.ts';

const definition = z.strictObject({
  name: z.string().min(1).max(64),
  kind: z.string().min(1).max(64),
  schedule: z.string().min(1).max(200).nullable().default(null),
  enabled: z.boolean().default(true),
  options: z.record(z.string(), z.unknown()).default({}),
  by: z.string().max(100).optional(),
});
const change = z.strictObject({
  schedule: z.string().min(1).max(200).nullable().optional(),
  enabled: z.boolean().optional(),
  options: z.record(z.string(), z.unknown()).optional(),
  by: z.string().max(100).optional(),
});
const runBody = z.strictObject({ list: z.boolean().default(false), by: z.string().max(100).optional() });
const adhocBody = z.strictObject({ kind: z.string().min(1).max(64), options: z.record(z.string(), z.unknown()) });
const resultsQuery = z.object({
  from: z.string().optional().describe('yyyy-mm-dd or ISO time'), to: z.string().optional().describe('yyyy-mm-dd or ISO time'),
  job: z.string().optional().describe('only this job'), limit: z.string().regex(/^\d+$/).optional().describe('1 to 10000'),
});
const removeQuery = z.object({ by: z.string().optional().describe('who asked, for the record') });
const JOBS: Pick<RouteDoc, 'access'> = { access: ['admin'] };
const ISO_DAY_OR_TIME = /^\d{4}-\d{2}-\d{2}(T[\d:.]+Z?)?$/;

function who(ctx: RouteContext, by: string | undefined): string {
  return by ? `${ctx.principal} (${by.replace(/[^\w.@ -]/g, '')})` : ctx.principal;
}

/** FORBIDDEN when a principal other than the token sets an option naming a server file or variable. */
function refuseHostLocal(ctx: RouteContext, jobs: JobService, kind: string, options: Record<string, unknown> | undefined): void {
  if (ctx.principal === TOKEN_PRINCIPAL || !options) return;
  const named = jobs.hostLocalOptions(kind).filter((k) => options[k] !== undefined);
  if (named.length > 0) {
    throw new PosternError('FORBIDDEN', `Options ${named.map((k) => `"${k}"`).join(', ')} name files or variables on the server host: set them only with the admin token or in the configuration file`);
  }
}

async function guarded(fn: () => Promise<RouteReply>): Promise<RouteReply> {
  try {
    return await fn();
  } catch (err) {
    if (!isPosternError(err)) throw err;
    const status = err.code === 'FORBIDDEN' ? 403 : err.code === 'NOT_FOUND' ? 404 : err.code === 'CONFLICT' ? 409 : err.code === 'UNAVAILABLE' || err.code === 'SHUTTING_DOWN' ? 503 : err.code === 'DIRECTORY_FAILED' ? 502 : 400;
    throw new HttpError(status, err.message);
  }
}

export function addJobRoutes(routes: AdminRoutes, jobs: JobService): void {
  const name = (ctx: RouteContext): string => ctx.params.name ?? '';
  routes.add('GET', 'jobs', async () => ({ body: { jobs: jobs.list(), kinds: jobs.listKinds() } }), 'core', { summary: 'Jobs and job kinds', ...JOBS, responses: { 200: 'the jobs and kinds' } });
  routes.add('GET', 'job-results', async (ctx) => guarded(async () => {
    const q = ctx.url.searchParams;
    const query: { from?: string; to?: string; job?: string; limit?: number } = {};
    for (const k of ['from', 'to'] as const) {
      const v = q.get(k);
      if (v === null || v === '') continue;
      if (!ISO_DAY_OR_TIME.test(v) || Number.isNaN(Date.parse(v))) throw new HttpError(400, `The "${k}" date "${v}" is not yyyy-mm-dd or an ISO time`);
      query[k] = new Date(v).toISOString();
    }
    const job = q.get('job');
    if (job) query.job = job;
    const limit = q.get('limit');
    if (limit !== null) {
      const n = Number(limit);
      if (!Number.isInteger(n) || n < 1 || n > 10000) throw new HttpError(400, `The limit "${limit}" must be a whole number from 1 to 10000`);
      query.limit = n;
    }
    return { body: { results: await jobs.results(query) } };
  }), 'core', { summary: 'Results history of every job', ...JOBS, query: resultsQuery, responses: { 200: 'the results', 400: 'bad date or limit' } });
  routes.add('POST', 'job-list', async (ctx) => guarded(async () => {
    const b = validated(adhocBody, await readJson(ctx.req));
    refuseHostLocal(ctx, jobs, b.kind, b.options);
    return { body: { list: await jobs.adhocList(b.kind, b.options) } };
  }), 'core', { summary: 'What a job of this kind would process now (a dry list; nothing runs)', ...JOBS, accessNote: 'options naming server files or variables only with the admin token', body: adhocBody, responses: { 200: 'the list', 400: 'invalid body or options', 413: 'body too large', 503: 'not available now' } });
  routes.add('GET', 'jobs/:name', async (ctx) => guarded(async () => ({ body: { job: jobs.show(name(ctx)) } })), 'core', { summary: 'One job with its status', ...JOBS, responses: { 200: 'the job', 404: 'no such job' } });
  routes.add('POST', 'jobs', async (ctx) => guarded(async () => {
    const b = validated(definition, await readJson(ctx.req));
    refuseHostLocal(ctx, jobs, b.kind, b.options);
    const job = await jobs.create({ name: b.name, kind: b.kind, schedule: b.schedule, enabled: b.enabled, options: b.options }, who(ctx, b.by));
    return { status: 201, body: { job } };
  }), 'core', { summary: 'Create a job', ...JOBS, accessNote: 'options naming server files or variables only with the admin token', body: definition, responses: { 201: 'the job', 400: 'invalid body, kind, schedule or options', 409: 'a job with that name exists', 413: 'body too large' } });
  routes.add('PATCH', 'jobs/:name', async (ctx) => guarded(async () => {
    const b = validated(change, await readJson(ctx.req));
    refuseHostLocal(ctx, jobs, jobs.show(name(ctx)).kind, b.options);
    const c: { schedule?: string | null; enabled?: boolean; options?: Record<string, unknown> } = {};
    if (b.schedule !== undefined) c.schedule = b.schedule;
    if (b.enabled !== undefined) c.enabled = b.enabled;
    if (b.options !== undefined) c.options = b.options;
    return { body: { job: await jobs.update(name(ctx), c, who(ctx, b.by)) } };
  }), 'core', { summary: 'Change a job\'s schedule, options or whether it is enabled', ...JOBS, accessNote: 'options naming server files or variables only with the admin token', body: change, responses: { 200: 'the job', 400: 'invalid body', 404: 'no such job', 413: 'body too large' } });
  routes.add('DELETE', 'jobs/:name', async (ctx) => guarded(async () => {
    await jobs.remove(name(ctx), who(ctx, ctx.url.searchParams.get('by') ?? undefined));
    return { body: { removed: name(ctx) } };
  }), 'core', { summary: 'Remove a job (configured jobs cannot be removed)', ...JOBS, query: removeQuery, responses: { 200: 'removed', 400: 'a configured job', 404: 'no such job', 409: 'the job is running' } });
  routes.add('POST', 'jobs/:name/run', async (ctx) => guarded(async () => {
    const b = validated(runBody, await readJson(ctx.req));
    if (b.list) return { body: { list: await jobs.dryList(name(ctx)) } };
    return { status: 202, body: { job: await jobs.run(name(ctx), 'manual', who(ctx, b.by)) } };
  }), 'core', { summary: 'Run a job now (202), or with list: true only list what it would process', ...JOBS, body: runBody, responses: { 200: 'the dry list', 202: 'started', 400: 'invalid body', 404: 'no such job', 409: 'already running', 413: 'body too large', 502: 'the dry list needs a server that did not answer (the directory)', 503: 'shutting down' } });
  routes.add('POST', 'jobs/:name/cancel', async (ctx) => guarded(async () => {
    const b = validated(runBody, await readJson(ctx.req));
    return { body: { job: jobs.cancel(name(ctx), who(ctx, b.by)) } };
  }), 'core', { summary: 'Cancel a running job', ...JOBS, body: runBody, responses: { 200: 'the job', 400: 'invalid body', 404: 'no such job', 409: 'not running', 413: 'body too large' } });
  routes.add('GET', 'jobs/:name/results', async (ctx) => guarded(async () => {
    jobs.show(name(ctx));
    return { body: { results: await jobs.results({ job: name(ctx), limit: 1000 }) } };
  }), 'core', { summary: 'Results history of one job (last 1000)', ...JOBS, responses: { 200: 'the results', 404: 'no such job' } });
}
