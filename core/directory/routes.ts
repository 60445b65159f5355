// Admin API of the user directory beyond the core user routes: POST /api/v1/users/:name/rename (the
// archive, retention, holds and stored policies move with the user; recorded in the audit log as
// user.rename with both names; `userChanged` announced). The directory sync itself runs as the job
// "directory-sync" through the jobs routes. Validates the body at the edge.
import { z } from 'zod';
import type { AdminRoutes } from '../admin/routes.ts';
import { publicUser } from '../admin/core-routes.ts';
import { readJson, validated } from '../admin/http.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { AuditLog } from '../audit/types.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ArchiveStore } from '../storage/types.ts';

const renameBody = z.strictObject({
  to: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit'),
});

export function addDirectoryRoutes(routes: AdminRoutes, deps: { archive: ArchiveStore; hooks: HookRegistry; log: Logger; audit: () => AuditLog | null }): void {
  routes.add('POST', 'users/:name/rename', async ({ params, req, principal }) => {
    const from = params.name ?? '';
    const { to } = validated(renameBody, await readJson(req));
    const before = await deps.archive.getUser(from);
    const record = async (outcome: 'success' | 'failure', error?: string): Promise<void> => void await deps.audit()?.record({
      category: 'admin', action: 'user.rename', actor: principal, target: to, outcome,
      remote: req.socket?.remoteAddress ?? '', details: { from, to, ...(error ? { error } : {}) },
    });
    let user;
    try {
      user = await deps.archive.renameUser(from, to);
    } catch (err) {
      await record('failure', errorMessage(err).slice(0, 300));
      throw err;
    }
    await record('success');
    deps.log.info('User renamed; the archive moved with them', { from, to });
    await deps.hooks.notify('userChanged', { before, after: user, actor: principal }, deps.log);
    return { body: { user: publicUser(user), from } };
  }, 'core', {
    summary: 'Rename a user: their archive (folders, UIDs), retention, legal holds and stored policies follow in one atomic write',
    access: ['admin'], body: renameBody,
    responses: { 200: 'the renamed user', 400: 'invalid name or a system archive', 404: 'no such user', 409: 'the new name is a user, or still has an archive of its own', 413: 'body too large' },
  });
}
