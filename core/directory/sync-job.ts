// The job kind "directory-sync": read the LDAP / AD directory (directory.ldap), plan the changes
// (sync-plan.ts) and apply them to the user directory: renames first (the archive moves with the user),
// then users gone from the directory disabled or removed (never their archives), then address removals,
// then the other changes and new users, so an address moving between two accounts finds its way. Each
// change is one directory write, recorded in the audit log (actor "directory-sync") and announced on the
// `userChanged` hook; one user's failure is counted and reported without stopping the others. The dry
// run (JobKind.list, `postern directory sync --dry-run`) returns the plan and changes nothing. Results
// (counts and the lists of names) go to the jobs history.
import { z } from 'zod';
import type { AuditLog } from '../audit/types.ts';
import type { HookRegistry } from '../app/hooks.ts';
import { PosternError, errorMessage } from '../errors.ts';
import type { JobKind, JobRunContext } from '../jobs/types.ts';
import type { Logger } from '../log.ts';
import type { ArchiveStore, UserChange, UserRecord } from '../storage/types.ts';
import { readDirectory } from './ldap-accounts.ts';
import { openSyncClient, type LdapSettings } from './ldap-connection.ts';
import { planSync, type SyncPlan } from './sync-plan.ts';

export const DIRECTORY_SYNC_KIND = 'directory-sync';
export const DIRECTORY_SYNC_JOB = 'directory-sync';
const ACTOR = 'directory-sync';

export interface DirectorySyncDeps {
  settings: LdapSettings | null;
  archive: ArchiveStore;
  hooks: HookRegistry;
  log: Logger;
  audit: () => AuditLog | null;
}

export interface SyncPreview extends SyncPlan {
  accounts: number;
  groups: number;
}

/** Read the directory and plan; nothing is changed. */
export async function previewSync(deps: DirectorySyncDeps): Promise<SyncPreview> {
  const s = deps.settings;
  if (!s) throw new PosternError('CONFIG_INVALID', 'directory.ldap is not configured');
  const client = await openSyncClient(s);
  let read;
  try {
    read = await readDirectory(client, s);
  } finally {
    await client.unbind().catch(() => undefined);
  }
  const plan = planSync(read.accounts, await deps.archive.listUsers(), s);
  return { ...plan, problems: [...read.problems, ...plan.problems], accounts: read.accounts.length, groups: read.groups };
}

export function directorySyncKind(deps: DirectorySyncDeps): JobKind<Record<string, never>> {
  return {
    kind: DIRECTORY_SYNC_KIND,
    description: 'synchronise users from the LDAP / Active Directory server in directory.ldap',
    schema: z.strictObject({}),
    list: () => previewSync(deps),
    run: async (_options, ctx) => ({ summary: await applySync(deps, ctx) }),
  };
}

async function applySync(deps: DirectorySyncDeps, ctx: JobRunContext): Promise<Record<string, unknown>> {
  ctx.progress('reading the directory');
  const plan = await previewSync(deps);
  ctx.count({ found: plan.accounts });
  for (const p of plan.problems) ctx.error(p);
  const done = { created: [] as string[], renamed: [] as string[], updated: [] as string[], disabled: [] as string[], removed: [] as string[] };
  const { archive } = deps;
  const record = async (action: string, target: string, ok: boolean, details: Record<string, unknown>): Promise<void> => {
    try {
      await deps.audit()?.record({ category: 'admin', action, actor: ACTOR, target, outcome: ok ? 'success' : 'failure', details: { source: 'directory', ...details } });
    } catch (err) {
      deps.log.error('Audit record of a directory sync change failed', { err: errorMessage(err) });
    }
  };
  const step = async (action: string, target: string, details: Record<string, unknown>, fn: () => Promise<{ before: UserRecord | null; after: UserRecord } | null>): Promise<boolean> => {
    if (ctx.signal.aborted) return false;
    try {
      const changed = await fn();
      await record(action, target, true, details);
      if (changed) await deps.hooks.notify('userChanged', { ...changed, actor: ACTOR }, deps.log);
      return true;
    } catch (err) {
      ctx.count({ failed: 1 });
      ctx.error(`${action} "${target}": ${errorMessage(err)}`);
      await record(action, target, false, { ...details, error: errorMessage(err).slice(0, 300) });
      return false;
    }
  };
  const update = async (name: string, change: UserChange): Promise<{ before: UserRecord | null; after: UserRecord }> => {
    const before = await archive.getUser(name);
    return { before, after: await archive.updateUser(name, change) };
  };

  ctx.progress('applying', `${plan.rename.length} renames, ${plan.create.length} new, ${plan.update.length} changed, ${plan.disable.length + plan.remove.length} gone`);
  for (const r of plan.rename) {
    if (await step('user.rename', r.to, { from: r.from, to: r.to }, async () => {
      const before = await archive.getUser(r.from);
      return { before, after: await archive.renameUser(r.from, r.to) };
    })) done.renamed.push(`${r.from} -> ${r.to}`);
  }
  for (const name of plan.disable) {
    if (await step('user.disable', name, { reason: 'gone from the directory' }, () => update(name, { disabled: true }))) done.disabled.push(name);
  }
  for (const name of plan.remove) {
    if (await step('user.remove', name, { reason: 'gone from the directory', archive: 'kept' }, async () => {
      await archive.removeUser(name);
      return null;
    })) done.removed.push(name);
  }
  // Addresses leaving a user first, so one moving to another account is free when it arrives there.
  const failed = new Set<string>();
  for (const u of plan.update) {
    if (!u.change.removeAddresses) continue;
    if (!(await step('user.update', u.name, { changes: u.what.filter((w) => w.startsWith('-address')) }, () => update(u.name, { removeAddresses: u.change.removeAddresses ?? [] })))) failed.add(u.name);
  }
  for (const u of plan.update) {
    if (failed.has(u.name)) continue;
    const { removeAddresses: _, ...rest } = u.change;
    const ok = Object.keys(rest).length === 0 || await step('user.update', u.name, { changes: u.what.filter((w) => !w.startsWith('-address')) }, () => update(u.name, rest));
    if (ok) done.updated.push(u.name);
  }
  for (const n of plan.create) {
    if (await step('user.create', n.name, { dn: n.dn, addresses: n.addresses.length, groups: n.groups ?? [] }, async () => ({ before: null, after: await archive.addUser(n) }))) done.created.push(n.name);
  }
  deps.log.info('Directory sync applied', {
    accounts: plan.accounts, created: done.created.length, renamed: done.renamed.length, updated: done.updated.length,
    disabled: done.disabled.length, removed: done.removed.length, unchanged: plan.unchanged, problems: plan.problems.length,
  });
  return { accounts: plan.accounts, groups: plan.groups, unchanged: plan.unchanged, ...done };
}
