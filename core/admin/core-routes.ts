// The admin API's own routes, in the same route table as everyone else's: status, the user directory,
// archive listings and message reads, the intake list. Bodies are validated with the schemas declared
// beside each route (the OpenAPI document shows the same ones); privileges come from
// core/compliance/access.ts before a handler runs, preview blocking through ctx.headersOnly.
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { Intake } from '../intake/intake.ts';
import { PosternError } from '../errors.ts';
import { GROUP_NAME, type ArchiveStore, type UserRecord } from '../storage/types.ts';
import { headersOnlyMessage } from '../compliance/access.ts';
import { HttpError, defined, readJson, validated } from './http.ts';
import type { AdminRoutes } from './routes.ts';

export interface StatusSource {
  status(): Promise<Record<string, unknown>>;
}

const identities = z.array(z.string().min(1).max(320)).max(1000);
const groupNames = z.array(z.string().regex(GROUP_NAME, 'must be lower-case letters, digits, ".", "_" or "-"')).max(100);
export const newUserBody = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit'),
  addresses: identities,
  domains: identities.optional(),
  pop3Users: identities.optional(),
  groups: groupNames.optional(),
  fullName: z.string().max(256).optional(),
}).refine((u) => u.addresses.length + (u.domains?.length ?? 0) > 0, 'a user needs at least one address or domain');
export const userChangeBody = z.strictObject({
  addAddresses: identities.optional(),
  removeAddresses: identities.optional(),
  addDomains: identities.optional(),
  removeDomains: identities.optional(),
  addPop3Users: identities.optional(),
  removePop3Users: identities.optional(),
  addGroups: groupNames.optional(),
  removeGroups: groupNames.optional(),
  fullName: z.string().max(256).optional(),
});
const messagesQuery = z.object({
  folder: z.string().optional().describe('folder name (default Inbox)'),
  afterUid: z.string().regex(/^\d{1,10}$/).optional().describe('only entries with a larger UID'),
  limit: z.string().optional().describe('at most this many entries (default 1000, at most 10000)'),
});
const folderQuery = z.object({ folder: z.string().optional().describe('folder name (default Inbox)') });
const intakeQuery = z.object({ state: z.enum(['active', 'deferred', 'corrupt']).optional().describe('only entries in this state') });

/** A user as the API shows it: the password hash never leaves the server, only whether one is set. */
export function publicUser(u: UserRecord): Omit<UserRecord, 'passwordHash'> & { hasPassword: boolean } {
  const { passwordHash, ...rest } = u;
  return { ...rest, hasPassword: passwordHash !== null };
}

function uidParam(raw: string): number {
  const uid = Number(raw);
  if (!/^\d{1,10}$/.test(raw) || uid < 1 || uid > 0xffffffff) throw new HttpError(400, `UID "${raw}" must be a number from 1 to 4294967295`);
  return uid;
}

export function addCoreRoutes(routes: AdminRoutes, deps: { archive: ArchiveStore; intake: Intake; status: StatusSource; log: Logger; hooks?: HookRegistry | undefined }): void {
  const { archive, log } = deps;
  const requireUser = async (name: string): Promise<void> => {
    if (!(await archive.getUser(name))) throw new HttpError(404, `User "${name}" does not exist`);
  };
  const param = (params: Record<string, string>, name: string): string => params[name] ?? '';

  routes.add('GET', 'status', async () => ({ body: await deps.status.status() }), 'core',
    { summary: 'Server status: listeners, plugins, intake, archive counts, flagged messages, storage health', access: ['admin', 'auditor'], responses: { 200: 'the status' } });

  routes.add('GET', 'users', async () => ({ body: { users: (await archive.listUsers()).map(publicUser) } }), 'core',
    { summary: 'List users (never their password hashes)', access: ['admin', 'auditor'], responses: { 200: 'the users' } });
  routes.add('POST', 'users', async ({ req, principal }) => {
    const user = await archive.addUser(defined(validated(newUserBody, await readJson(req))));
    log.info('User added', { user: user.name, addresses: user.addresses.length, domains: user.domains.length });
    await deps.hooks?.notify('userChanged', { before: null, after: user, actor: principal }, log);
    return { status: 201, body: { user: publicUser(user) } };
  }, 'core', { summary: 'Add a user', access: ['admin'], body: newUserBody, responses: { 201: 'the user added', 400: 'invalid body, or an address or domain someone else owns', 413: 'body too large' } });
  routes.add('GET', 'users/:name', async ({ params }) => {
    const name = param(params, 'name');
    const user = await archive.getUser(name);
    if (!user) throw new HttpError(404, `User "${name}" does not exist`);
    return { body: { user: publicUser(user), folders: await archive.folders(name) } };
  }, 'core', { summary: 'A user and their folders', access: ['admin', 'auditor', 'user'], accessNote: 'a user may read their own record', responses: { 200: 'the user', 404: 'no such user' } });
  routes.add('PATCH', 'users/:name', async ({ params, req, principal }) => {
    const name = param(params, 'name');
    const change = defined(validated(userChangeBody, await readJson(req)));
    const before = await archive.getUser(name);
    const user = await archive.updateUser(name, change);
    log.info('User changed', { user: user.name });
    await deps.hooks?.notify('userChanged', { before, after: user, actor: principal }, log);
    return { body: { user: publicUser(user) } };
  }, 'core', { summary: 'Change a user\'s addresses, domains, POP3 logins and groups', access: ['admin'], body: userChangeBody, responses: { 200: 'the changed user', 400: 'invalid body', 404: 'no such user', 409: 'an address or domain belongs to someone else', 413: 'body too large' } });
  routes.add('DELETE', 'users/:name', async ({ params }) => {
    const name = param(params, 'name');
    await archive.removeUser(name);
    log.info('User removed from the directory; the archive is kept', { user: name });
    return { body: { removed: name } };
  }, 'core', { summary: 'Remove a user from the directory (their archive is kept)', access: ['admin'], responses: { 200: 'removed', 404: 'no such user' } });
  routes.add('GET', 'users/:name/folders', async ({ params }) => {
    await requireUser(param(params, 'name'));
    return { body: { folders: await archive.folders(param(params, 'name')) } };
  }, 'core', { summary: 'A user\'s folders with counts', access: ['admin', 'auditor'], responses: { 200: 'the folders', 404: 'no such user' } });

  const archiveAccess = { access: ['archive', 'auditor', 'admin', 'user'], accessNote: 'users read their own archive; auditors every archive; administrators others\' under preview blocking (headers only)' } as const;
  routes.add('GET', 'archive/:user/messages', async ({ params, url }) => {
    const user = param(params, 'user');
    await requireUser(user);
    const folder = url.searchParams.get('folder') ?? 'Inbox';
    const after = url.searchParams.get('afterUid');
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 1000) || 1000, 10000);
    if (after !== null && !/^\d{1,10}$/.test(after)) throw new HttpError(400, `afterUid "${after}" must be a number`);
    const entries = await archive.listEntries(user, folder, { ...(after !== null ? { afterUid: Number(after) } : {}), limit });
    return { body: { entries } };
  }, 'core', { summary: 'List the entries of an archive folder by UID', ...archiveAccess, query: messagesQuery, responses: { 200: 'the entries', 400: 'bad afterUid', 404: 'no such user' } });
  const entryOf = async (params: Record<string, string>, url: URL): Promise<{ user: string; message: NonNullable<Awaited<ReturnType<ArchiveStore['getMessage']>>>; entry: NonNullable<Awaited<ReturnType<ArchiveStore['getEntry']>>> }> => {
    const user = param(params, 'user');
    await requireUser(user);
    const folder = url.searchParams.get('folder') ?? 'Inbox';
    const uid = param(params, 'uid');
    const entry = await archive.getEntry(user, folder, uidParam(uid));
    if (!entry) throw new HttpError(404, `No message with UID ${uid} in folder "${folder}" of user "${user}"`);
    const message = await archive.getMessage(entry.messageId);
    if (!message) throw new PosternError('STORAGE_IO', `Entry points to missing message "${entry.messageId}"`);
    return { user, entry, message };
  };
  routes.add('GET', 'archive/:user/messages/:uid', async ({ params, url, principal, headersOnly }) => {
    const { user, entry, message } = await entryOf(params, url);
    return { body: { entry, message: headersOnly !== false && user !== principal ? headersOnlyMessage(message) : message } };
  }, 'core', { summary: 'One archived message\'s entry and record', ...archiveAccess, query: folderQuery, responses: { 200: 'the entry and message (headers only under preview blocking)', 400: 'bad UID', 404: 'no such user or message' } });
  routes.add('GET', 'archive/:user/messages/:uid/raw', async ({ params, url, res }) => {
    const { message } = await entryOf(params, url);
    const blob = await archive.openBlob(message.blobId);
    if (!blob) throw new PosternError('STORAGE_IO', `Message "${message.id}" has no blob "${message.blobId}"`);
    res.writeHead(200, { 'content-type': 'message/rfc822', 'content-length': message.size });
    await pipeline(blob, res);
    return undefined;
  }, 'core', { summary: 'The original bytes of an archived message (audited when audit.recordMessageAccess is on)', ...archiveAccess, accessNote: 'users read their own archive; auditors every archive; administrators others\' only without preview blocking', query: folderQuery, produces: 'message/rfc822', responses: { 200: 'the message', 400: 'bad UID', 404: 'no such user or message' } });

  routes.add('GET', 'intake', async ({ url }) => {
    const state = url.searchParams.get('state');
    const all = await deps.intake.list(10000);
    return { body: { entries: all.filter((r) => !state || r.state === state) } };
  }, 'core', { summary: 'Intake entries not yet archived (first 10000)', access: ['admin'], query: intakeQuery, responses: { 200: 'the entries' } });
}
