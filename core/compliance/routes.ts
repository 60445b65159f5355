// Admin API routes for retention, legal hold, deletion, purge, auditors and privileges (/api/v1/…):
//   GET    policies                      list (compliance, auditor)        POST policies      add (compliance)
//   DELETE policies/:name                remove (compliance)
//   GET    holds[?all=1]                 list (compliance, auditor)        POST holds         create (compliance)
//   GET    holds/:name                   show (compliance, auditor)        POST holds/:name/release (compliance)
//   GET    hold-everything               state                             PUT  hold-everything {on} (compliance)
//   GET    retention/:user/:uid?folder=  retention and hold status (compliance, delete, auditor)
//   POST   retention/:user/:uid/extend   {folder, retainUntil} (compliance)
//   POST   entries/delete                {entries: [{user, folder, uid}]} (delete) — 423 when held
//   POST   purge                         {dryRun, batchSize} (delete)
//   POST   auditors                      create auditor-YYYYMMDD-HHMMSS, password returned once (admin)
//   PATCH  privileges/:user              {add, remove} (admin)
//   PUT    account/password              {password, user?}: one's own (not auditors), or anyone's (admin)
// Validates bodies with zod at the edge; privileges come from core/compliance/access.ts.
import { z } from 'zod';
import { HttpError, defined, readJson, validated } from '../admin/http.ts';
import type { AdminRoutes, RouteContext, RouteDoc } from '../admin/routes.ts';
import { PosternError } from '../errors.ts';
import { PRIVILEGES, USER_NAME, type ArchiveStore } from '../storage/types.ts';
import { COMPLIANCE_AREAS, TOKEN_PRINCIPAL, requirePrivilege } from './access.ts';
import type { ComplianceService } from './service.ts';
import type { EntryRef, HoldScope, PolicyMatch } from './types.ts';

const names = z.array(z.string().min(1).max(320)).min(1).max(1000);
const policyBody = z.strictObject({
  name: z.string().min(1).max(64),
  match: z.strictObject({
    users: names.optional(), groups: names.optional(), addresses: names.optional(), domains: names.optional(),
    folders: names.optional(), direction: z.enum(['received', 'sent']).optional(),
  }).default({}),
  minimum: z.string().min(1).max(16),
  maximum: z.string().min(1).max(16).optional(),
});
const holdBody = z.strictObject({
  name: z.string().min(1).max(64),
  description: z.string().max(2000).optional(),
  scope: z.strictObject({
    users: names.optional(),
    addresses: names.optional(),
    dateRange: z.strictObject({ from: z.string().max(64).optional(), to: z.string().max(64).optional(), field: z.enum(['date', 'archivedAt']).default('date') }).optional(),
    query: z.string().min(1).max(1000).optional(),
  }),
});
const entryRef = z.strictObject({ user: z.string().regex(USER_NAME), folder: z.string().min(1).max(1000), uid: z.number().int().min(1).max(0xffffffff) });
const deleteBody = z.strictObject({ entries: z.array(entryRef).min(1).max(10000) });
const purgeBody = z.strictObject({ dryRun: z.boolean().default(false), batchSize: z.number().int().min(1).max(10000).default(500) });
const extendBody = z.strictObject({ folder: z.string().min(1).max(1000).default('Inbox'), retainUntil: z.string().min(10).max(64) });
const privilegesBody = z.strictObject({ add: z.array(z.enum(PRIVILEGES)).max(16).default([]), remove: z.array(z.enum(PRIVILEGES)).max(16).default([]) });
const holdEverythingBody = z.strictObject({ on: z.boolean() });
const holdsQuery = z.object({ all: z.enum(['1', 'true']).optional().describe('include released holds') });
const folderQuery = z.object({ folder: z.string().optional().describe('folder name (default Inbox)') });
const passwordBody = z.strictObject({ password: z.string().min(8, 'must be at least 8 characters').max(1024, 'must be at most 1024 characters'), user: z.string().regex(USER_NAME).optional() });

function uidOf(raw: string | undefined): number {
  if (!raw || !/^\d{1,10}$/.test(raw) || Number(raw) < 1 || Number(raw) > 0xffffffff) throw new HttpError(400, `UID "${raw ?? ''}" must be a number from 1 to 4294967295`);
  return Number(raw);
}


export function addComplianceRoutes(routes: AdminRoutes, archive: ArchiveStore, service: ComplianceService): void {
  const store = archive.retention();
  routes.reserve(COMPLIANCE_AREAS, 'compliance');
  const add = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', pattern: string, doc: RouteDoc, handler: (ctx: RouteContext) => Promise<{ status?: number; body: unknown }>): void =>
    routes.add(method, pattern, handler, 'compliance', doc);
  const param = (ctx: RouteContext, name: string): string => ctx.params[name] ?? '';

  add('GET', 'policies', { summary: 'Retention policies (configured and stored)', access: ['compliance', 'auditor'], responses: { 200: 'the policies' } }, async ({ principal }) => {
    await requirePrivilege(archive, principal, 'compliance', 'auditor');
    return { body: { policies: await store.listPolicies() } };
  });
  add('POST', 'policies', { summary: 'Add a retention policy', access: ['compliance'], body: policyBody, responses: { 201: 'the policy', 400: 'invalid body or period', 409: 'a policy with that name exists', 413: 'body too large' } }, async ({ principal, req }) => {
    await requirePrivilege(archive, principal, 'compliance');
    const b = validated(policyBody, await readJson(req));
    const policy = await service.addPolicy(principal, { name: b.name, match: defined(b.match) as PolicyMatch, minimum: b.minimum, ...(b.maximum ? { maximum: b.maximum } : {}) });
    return { status: 201, body: { policy } };
  });
  add('DELETE', 'policies/:name', { summary: 'Remove a stored retention policy (configured ones stay)', access: ['compliance'], responses: { 200: 'removed', 403: 'a configured policy', 404: 'no such policy' } }, async (ctx) => {
    await requirePrivilege(archive, ctx.principal, 'compliance');
    await service.removePolicy(ctx.principal, param(ctx, 'name'));
    return { body: { removed: param(ctx, 'name') } };
  });

  add('GET', 'holds', { summary: 'Legal holds (?all=1 includes released ones) and the hold-everything state', access: ['compliance', 'auditor'], query: holdsQuery, responses: { 200: 'the holds' } }, async ({ principal, url }) => {
    await requirePrivilege(archive, principal, 'compliance', 'auditor');
    const all = url.searchParams.get('all');
    return { body: { holds: await store.listHolds({ includeReleased: all === '1' || all === 'true' }), holdEverything: await store.holdEverything() } };
  });
  add('POST', 'holds', { summary: 'Create a legal hold by users, addresses, date range or search', access: ['compliance'], body: holdBody, responses: { 201: 'the hold', 400: 'invalid body or query', 409: 'a hold with that name exists', 413: 'body too large' } }, async ({ principal, req }) => {
    await requirePrivilege(archive, principal, 'compliance');
    const b = validated(holdBody, await readJson(req));
    const scope = defined({ ...b.scope, ...(b.scope.dateRange ? { dateRange: defined(b.scope.dateRange) } : {}) }) as HoldScope;
    const hold = await service.createHold(principal, { name: b.name, scope, ...(b.description !== undefined ? { description: b.description } : {}) });
    return { status: 201, body: { hold } };
  });
  add('GET', 'holds/:name', { summary: 'One legal hold', access: ['compliance', 'auditor'], responses: { 200: 'the hold', 404: 'no such hold' } }, async (ctx) => {
    await requirePrivilege(archive, ctx.principal, 'compliance', 'auditor');
    const hold = await store.getHold(param(ctx, 'name'));
    if (!hold) throw new HttpError(404, `Hold "${param(ctx, 'name')}" does not exist`);
    return { body: { hold } };
  });
  add('POST', 'holds/:name/release', { summary: 'Release a legal hold (kept for the record)', access: ['compliance'], responses: { 200: 'the released hold', 404: 'no such hold', 409: 'already released' } }, async (ctx) => {
    await requirePrivilege(archive, ctx.principal, 'compliance');
    return { body: { hold: await service.releaseHold(ctx.principal, param(ctx, 'name')) } };
  });
  add('GET', 'hold-everything', { summary: 'Whether every entry is held', access: ['compliance', 'auditor'], responses: { 200: 'the state' } }, async ({ principal }) => {
    await requirePrivilege(archive, principal, 'compliance', 'auditor');
    return { body: await store.holdEverything() };
  });
  add('PUT', 'hold-everything', { summary: 'Hold every entry, or stop', access: ['compliance'], body: holdEverythingBody, responses: { 200: 'the state', 400: 'invalid body', 413: 'body too large' } }, async ({ principal, req }) => {
    await requirePrivilege(archive, principal, 'compliance');
    const { on } = validated(holdEverythingBody, await readJson(req));
    await service.setHoldEverything(principal, on);
    return { body: await store.holdEverything() };
  });

  add('GET', 'retention/:user/:uid', { summary: 'Retention and hold status of one entry', access: ['compliance', 'delete', 'auditor'], query: folderQuery, responses: { 200: 'the status', 400: 'bad UID', 404: 'no such entry' } }, async (ctx) => {
    await requirePrivilege(archive, ctx.principal, 'compliance', 'delete', 'auditor');
    const ref: EntryRef = { user: param(ctx, 'user'), folder: ctx.url.searchParams.get('folder') ?? 'Inbox', uid: uidOf(ctx.params.uid) };
    return { body: { entry: ref, ...(await store.holdStatus(ref)) } };
  });
  add('POST', 'retention/:user/:uid/extend', { summary: 'Extend the retention of one entry (never shorten)', access: ['compliance'], body: extendBody, responses: { 200: 'the new retention', 400: 'invalid body or UID', 403: 'an earlier date', 404: 'no such entry', 413: 'body too large' } }, async (ctx) => {
    await requirePrivilege(archive, ctx.principal, 'compliance');
    const b = validated(extendBody, await readJson(ctx.req));
    const ref: EntryRef = { user: param(ctx, 'user'), folder: b.folder, uid: uidOf(ctx.params.uid) };
    await service.extendRetention(ctx.principal, ref, b.retainUntil);
    return { body: { entry: ref, retention: await store.getRetention(ref) } };
  });

  add('POST', 'entries/delete', { summary: 'Delete entries; the whole call is refused when one is held or retained', access: ['delete'], body: deleteBody, responses: { 200: 'what was deleted', 400: 'invalid body', 404: 'no such entry', 413: 'body too large', 423: 'an entry is under hold or retention' } }, async ({ principal, req }) => {
    await requirePrivilege(archive, principal, 'delete');
    const { entries } = validated(deleteBody, await readJson(req));
    return { body: await service.deleteEntries(principal, entries, req.socket.remoteAddress ?? '') };
  });
  add('POST', 'purge', { summary: 'Delete entries whose retention ended (dryRun: only count)', access: ['delete'], body: purgeBody, responses: { 200: 'the purge run', 400: 'invalid body', 409: 'a purge is running', 413: 'body too large' } }, async ({ principal, req }) => {
    await requirePrivilege(archive, principal, 'delete');
    const b = validated(purgeBody, await readJson(req));
    return { body: await service.purge(principal, { dryRun: b.dryRun, batchSize: b.batchSize }) };
  });

  add('POST', 'auditors', { summary: 'Create an auditor account auditor-YYYYMMDD-HHMMSS; the password is shown only in this answer', access: ['admin'], responses: { 201: 'the auditor and password' } }, async ({ principal }) => {
    await requirePrivilege(archive, principal, 'admin');
    const { user, password } = await service.createAuditor(principal);
    return { status: 201, body: { name: user.name, privileges: user.privileges, password } };
  });
  add('PATCH', 'privileges/:user', { summary: 'Grant or take privileges', access: ['admin'], body: privilegesBody, responses: { 200: 'the user\'s privileges', 400: 'invalid body', 404: 'no such user', 413: 'body too large' } }, async (ctx) => {
    await requirePrivilege(archive, ctx.principal, 'admin');
    const b = validated(privilegesBody, await readJson(ctx.req));
    const user = await service.changePrivileges(ctx.principal, param(ctx, 'user'), b.add, b.remove);
    return { body: { name: user.name, privileges: user.privileges } };
  });
  add('PUT', 'account/password', { summary: 'Set one\'s own password, or (administrators) anyone\'s; ends that user\'s API sessions', access: ['user', 'admin'], accessNote: 'one\'s own password (not auditors); administrators and the admin token any user\'s', body: passwordBody, responses: { 200: 'set', 400: 'invalid body, or the admin token without a user', 404: 'no such user', 413: 'body too large' } }, async ({ principal, req }) => {
    const b = validated(passwordBody, await readJson(req));
    const target = b.user ?? principal;
    if (target === TOKEN_PRINCIPAL) throw new HttpError(400, 'The admin token has no password; name a "user"');
    if (target !== principal) await requirePrivilege(archive, principal, 'admin');
    else if ((await archive.getUser(principal))?.privileges.includes('auditor')) {
      throw new PosternError('FORBIDDEN', 'Auditors cannot change their own password; an administrator can');
    }
    await service.setPassword(principal, target, b.password);
    return { body: { user: target, passwordSet: true } };
  });
}
