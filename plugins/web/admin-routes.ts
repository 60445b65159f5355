// Admin API route of the web plugin: switch web access per user (PUT users/:name/web, body { enabled }),
// as the imap plugin switches IMAP access. `postern user web NAME on|off` calls it. Switching it off
// ends the user's open web sessions at once. The body is validated.
import { z } from 'zod';
import type { AdminRoutes } from '../../core/admin/routes.ts';
import { HttpError, readJson, validated } from '../../core/admin/http.ts';
import { publicUser } from '../../core/admin/server.ts';
import type { Logger } from '../../core/log.ts';
import type { ArchiveStore } from '../../core/storage/types.ts';

const webBody = z.strictObject({ enabled: z.boolean() });

export function addWebRoutes(routes: AdminRoutes, archive: ArchiveStore, log: Logger, onDisabled: (user: string) => void): void {
  routes.add('PUT', 'users/:name/web', async ({ params, req }) => {
    const name = params.name ?? '';
    const body = validated(webBody, await readJson(req));
    if (!(await archive.getUser(name))) throw new HttpError(404, `User "${name}" does not exist`);
    const user = await archive.updateUser(name, { webAccess: body.enabled });
    log.info('Web access changed', { user: user.name, enabled: body.enabled });
    if (!body.enabled) onDisabled(user.name);
    return { body: { user: publicUser(user) } };
  }, 'web', { summary: 'Switch a user\'s web access on or off (off ends their web sessions)', access: ['admin'], body: webBody, responses: { 200: 'the user', 400: 'invalid body', 404: 'no such user', 413: 'body too large' } });
}
