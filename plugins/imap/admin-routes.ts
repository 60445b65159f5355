// Admin API route of the imap plugin: switch IMAP access (PUT users/:name/imap, body { enabled };
// switching it on sends the provisioning notification when configured). The body is validated.
// Passwords are set through the core account route (PUT account/password, core/compliance/routes.ts).
// Access through a group (accessGroups) is announced by the plugin's `userChanged` hook (index.ts) when a
// user is added with, or moved into, such a group through the admin API; users seeded from the config
// file get no mail.
import { z } from 'zod';
import type { AdminRoutes } from '../../core/admin/routes.ts';
import { HttpError, readJson, validated } from '../../core/admin/http.ts';
import { publicUser } from '../../core/admin/server.ts';
import type { Logger } from '../../core/log.ts';
import type { ArchiveStore, UserRecord } from '../../core/storage/types.ts';

const imapBody = z.strictObject({ enabled: z.boolean() });

/** Called when IMAP access was switched on for a user; returns what happened to the notification. */
export type AccessEnabled = (user: UserRecord) => Promise<string>;

export function addImapRoutes(routes: AdminRoutes, archive: ArchiveStore, log: Logger, owner: string, hasAccess: (u: UserRecord | null) => boolean, onEnabled: AccessEnabled): void {
  routes.add('PUT', 'users/:name/imap', async ({ params, req }) => {
    const name = params.name ?? '';
    const body = validated(imapBody, await readJson(req));
    const before = await archive.getUser(name);
    if (!before) throw new HttpError(404, `User "${name}" does not exist`);
    const user = await archive.updateUser(name, { imapAccess: body.enabled });
    log.info('IMAP access changed', { user: user.name, enabled: body.enabled });
    const notification = !hasAccess(before) && hasAccess(user) ? await onEnabled(user) : 'not sent (access did not change to on)';
    return { body: { user: publicUser(user), notification } };
  }, owner, { summary: 'Switch a user\'s IMAP access on or off (on may send the provisioning mail)', access: ['admin'], body: imapBody, responses: { 200: 'the user and what happened to the notification', 400: 'invalid body', 404: 'no such user', 413: 'body too large' } });
}
