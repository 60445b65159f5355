// What the page modules of the web plugin share: services, settings and small helpers (the layout user,
// the access hook call, the read-level check). Built once by index.ts.
import type { SearchService } from '../../core/app/search-service.ts';
import type { HookRegistry } from '../../core/app/hooks.ts';
import type { AuditLog } from '../../core/audit/types.ts';
import type { ExportService } from '../../core/export/service.ts';
import type { SelectionDeps } from '../../core/export/selection.ts';
import type { Logger } from '../../core/log.ts';
import type { ArchiveStore } from '../../core/storage/types.ts';
import type { WebConfig } from './config.ts';
import { readLevel, seesHolds, type ReadLevel } from './access.ts';
import type { LayoutUser } from './html.ts';
import type { SignInDeps } from './sign-in.ts';
import type { SessionStore } from './sessions.ts';
import type { Ctx, WebServer } from './server.ts';
import { WebError } from './server.ts';

export interface WebDeps {
  config: WebConfig;
  archive: ArchiveStore;
  sessions: SessionStore;
  server: WebServer;
  signIn: SignInDeps;
  hooks: HookRegistry;
  log: Logger;
  search: () => SearchService | null;
  exports: () => ExportService | null;
  audit: () => AuditLog | null;
  selection: SelectionDeps;
  previewBlocking: boolean;
  unmatchedUser: string;
}

export function layoutUser(ctx: Ctx): LayoutUser {
  return { name: ctx.user.name, csrf: ctx.session.csrf, holds: seesHolds(ctx.viewer) };
}

/** How much of `owner`'s archive the signed-in user sees; 403 when nothing. */
export function requireRead(deps: WebDeps, ctx: Ctx, owner: string): Exclude<ReadLevel, 'none'> {
  const level = readLevel(ctx.viewer, owner, deps.previewBlocking);
  if (level === 'none') throw new WebError(403, `You may read only your own archive, not "${owner}".`);
  return level;
}

/** How long a viewed message's body frame counts as part of the same view. */
const VIEW_WINDOW_MS = 60_000;
const MAX_RECENT_VIEWS = 10_000;
/** Views reported lately, by viewer and message: the page and its sandboxed HTML frame are one view. */
const recentViews = new Map<string, number>();

/** Whether this viewer's view of this message was reported within the window (then it is not reported again). */
function seenLately(key: string, now: number): boolean {
  const at = recentViews.get(key);
  if (at !== undefined && now - at < VIEW_WINDOW_MS) return true;
  recentViews.delete(key);
  recentViews.set(key, now);
  if (recentViews.size > MAX_RECENT_VIEWS) recentViews.delete(recentViews.keys().next().value as string);
  return false;
}

/**
 * Report a read on the `access` hook (the audit log records reads of others' archives always, own ones
 * per audit.recordMessageAccess). A message page and the HTML frame it embeds are one view: the second
 * request within a minute by the same viewer is not reported again.
 */
export async function reportAccess(deps: WebDeps, ctx: Ctx, owner: string, folder: string, uid: number | null, what: 'list' | 'view' | 'download-original' | 'download-attachment'): Promise<void> {
  if (what === 'view' && seenLately(`${ctx.user.name}\u0000${owner}\u0000${folder}\u0000${uid ?? ''}`, Date.now())) return;
  await deps.hooks.notify('access', { user: ctx.user.name, auditor: owner !== ctx.user.name, target: owner, folder, uid, what, via: 'web' }, deps.log);
}

/** A positive integer from a query parameter, else a 400. */
export function uidParam(value: string | null, name: string): number {
  if (value === null || !/^\d{1,10}$/.test(value) || Number(value) < 1 || Number(value) > 0xffffffff) throw new WebError(400, `Parameter "${name}" must be a positive number.`);
  return Number(value);
}

export function textParam(value: string | null, name: string, max = 256): string {
  if (value === null || value === '' || value.length > max || /[\u0000-\u001f]/.test(value)) throw new WebError(400, `Parameter "${name}" is missing or not valid.`);
  return value;
}
