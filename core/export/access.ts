// Who may export what (the `export` privilege, MailStore's rules): a user with it exports their own
// archive only; auditors and administrators with it any archive (every export is audited); under
// preview blocking administrators, and the admin token, may not export other users' mail (they read
// only headers there), so they export only their own archive and the token nothing. Exports by legal
// hold span archives and need the right to read all of them; picked messages need the right to export
// every archive they come from. Returns the archives a query may hit.
import { PosternError } from '../errors.ts';
import { TOKEN_PRINCIPAL, privilegesOf } from '../compliance/access.ts';
import type { ArchiveStore } from '../storage/types.ts';
import type { ExportSelection } from './types.ts';

/** The archives whose raw mail a principal may export: "all", or a list (their own, or none). */
export async function exportableArchives(archive: ArchiveStore, principal: string, previewBlocking: boolean): Promise<string[] | 'all'> {
  const token = principal === TOKEN_PRINCIPAL;
  const have = await privilegesOf(archive, principal);
  if (!have.has('export')) throw new PosternError('FORBIDDEN', `"${principal}" needs the "export" privilege`);
  if (have.has('auditor')) return 'all';
  if (token || have.has('admin')) {
    if (!previewBlocking) return 'all';
    return token ? [] : [principal];
  }
  return [principal];
}

/**
 * FORBIDDEN unless principal may export the selection; the archives a query may then search.
 * previewBlocking is compliance.previewBlocking of the configuration.
 */
export async function authorizeExport(archive: ArchiveStore, principal: string, selection: ExportSelection, previewBlocking: boolean): Promise<string[] | 'all'> {
  const scope = await exportableArchives(archive, principal, previewBlocking);
  if (scope === 'all') return scope;
  const have = await privilegesOf(archive, principal);
  const blocked = previewBlocking && (principal === TOKEN_PRINCIPAL || have.has('admin'));
  const refuse = (what: string): never => {
    if (blocked) {
      throw new PosternError('FORBIDDEN', principal === TOKEN_PRINCIPAL
        ? 'Preview blocking is on: the admin token may not export archived mail; an auditor with the "export" privilege can (--as)'
        : `Preview blocking is on: administrators may export only their own archive, not ${what}`);
    }
    throw new PosternError('FORBIDDEN', `"${principal}" may export only their own archive, not ${what}`);
  };
  if ('user' in selection && !scope.includes(selection.user)) refuse(`the archive of "${selection.user}"`);
  if ('messages' in selection) {
    for (const user of new Set(selection.messages.map((p) => p.user))) if (!scope.includes(user)) refuse(`the archive of "${user}"`);
  }
  if ('hold' in selection) refuse('by legal hold (that needs the "auditor" or "admin" privilege)');
  if ('query' in selection && scope.length === 0) refuse('by query');
  if ('targets' in selection) refuse('several archives by job targets (that needs the "auditor" or "admin" privilege)');
  return scope;
}
