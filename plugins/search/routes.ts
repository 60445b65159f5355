// Admin API routes of the search plugin, under the reserved area `search` (its routes check access
// themselves, so every signed-in user reaches them):
//   GET  /api/v1/search?q=…&user=…&limit=…&cursor=…   a page of hits (own archive; auditors and
//        administrators any archive; every search by an auditor or administrator is audited with its query)
//   GET  /api/v1/search/status                          index status (admin, auditor)
//   POST /api/v1/search/reindex {user?}                 rebuild online (admin)
// Trusts the API's authentication (principal); validates every parameter.
import { z } from 'zod';
import type { AdminRoutes, RouteContext, RouteDoc } from '../../core/admin/routes.ts';
import { HttpError, readJson } from '../../core/admin/http.ts';
import { privilegesOf, requirePrivilege, TOKEN_PRINCIPAL } from '../../core/compliance/access.ts';
import { PosternError } from '../../core/errors.ts';
import type { AuditLog } from '../../core/audit/types.ts';
import type { ArchiveStore } from '../../core/storage/types.ts';
import { USER_NAME } from '../../core/storage/types.ts';
import type { SearchService } from '../../core/app/search-service.ts';

export interface SearchRoutesDeps {
  routes: AdminRoutes;
  archive: ArchiveStore;
  search: SearchService;
  audit: () => AuditLog | null;
  status(): Promise<unknown>;
  reindex(user: string | null): Promise<{ users: string[] }>;
}

const searchQuery = z.object({
  q: z.string().min(1).describe('the query (search language)'), user: z.string().optional().describe('only this archive'),
  limit: z.string().regex(/^\d{1,4}$/).optional().describe('1 to 1000 hits (default 50)'), cursor: z.string().optional().describe('the next page, from the previous answer'),
});
const reindexBody = z.strictObject({ user: z.string().regex(USER_NAME).or(z.string().regex(/^_[a-z0-9._-]{1,63}$/)).optional() });

/** Which archives a principal may search: all, or their own. */
async function scopeOf(archive: ArchiveStore, principal: string): Promise<{ all: boolean; audited: boolean }> {
  if (principal === TOKEN_PRINCIPAL) return { all: true, audited: true };
  const p = await privilegesOf(archive, principal);
  if (p.has('auditor') || p.has('admin')) return { all: true, audited: true };
  return { all: false, audited: false };
}

export function addSearchRoutes(deps: SearchRoutesDeps): void {
  const { routes, archive } = deps;
  routes.reserve(['search'], 'search');
  const add = (method: 'GET' | 'POST', pattern: string, handler: (ctx: RouteContext) => Promise<{ status?: number; body: unknown }>, doc: RouteDoc): void =>
    routes.add(method, pattern, handler, 'search', doc);

  add('GET', 'search', async ({ principal, url, req }) => {
    const q = url.searchParams.get('q') ?? '';
    if (q.trim() === '') throw new HttpError(400, 'Parameter "q" (the query) is required');
    const limitText = url.searchParams.get('limit') ?? '50';
    if (!/^\d{1,4}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > 1000) throw new HttpError(400, 'Parameter "limit" must be a number from 1 to 1000');
    const user = url.searchParams.get('user');
    const cursor = url.searchParams.get('cursor');
    const scope = await scopeOf(archive, principal);
    let users: readonly string[] | 'all';
    if (user !== null) {
      if (!scope.all && user !== principal) throw new PosternError('FORBIDDEN', `"${principal}" may search only their own archive`);
      users = [user];
    } else users = scope.all ? 'all' : [principal];
    const page = await deps.search.search(q, { users, limit: Number(limitText), ...(cursor ? { cursor } : {}) });
    if (scope.audited) {
      await deps.audit()?.record({
        category: 'access', action: 'search.query', actor: principal, target: user ?? '*', outcome: 'success',
        remote: req.socket.remoteAddress ?? '', details: { query: q.slice(0, 2000), hits: page.total },
      });
    }
    return { body: page };
  }, { summary: 'Search archives: a page of hits', access: ['user'], accessNote: 'one\'s own archive; auditors and administrators every archive (audited with the query)', query: searchQuery, responses: { 200: 'a page of hits', 400: 'missing or bad query, limit or cursor' } });

  add('GET', 'search/status', async ({ principal }) => {
    await requirePrivilege(archive, principal, 'admin', 'auditor');
    return { body: await deps.status() };
  }, { summary: 'Search index status (lag, size, failures)', access: ['admin', 'auditor'], responses: { 200: 'the status' } });

  add('POST', 'search/reindex', async ({ principal, req }) => {
    await requirePrivilege(archive, principal, 'admin');
    const parsed = reindexBody.safeParse(await readJson(req));
    if (!parsed.success) throw new HttpError(400, 'Body must be {} or {"user": NAME}');
    const result = await deps.reindex(parsed.data.user ?? null);
    await deps.audit()?.record({ category: 'admin', action: 'search.reindex', actor: principal, target: parsed.data.user ?? '*', outcome: 'success' });
    return { status: 202, body: result };
  }, { summary: 'Rebuild the search index online, of one archive or all', access: ['admin'], body: reindexBody, responses: { 202: 'started', 400: 'invalid body', 413: 'body too large' } });
}
