// Who may use the web access and what they see, exactly as the admin API decides for its users
// (core/compliance/access.ts): everyone reads their own archive; auditors read every archive; holders of
// `admin` read every archive, but under preview blocking only from/to/subject/date of other users' mail
// (no body, attachments or original). Web access itself: the user's webAccess flag, a group listed in
// accessGroups, or the auditor or compliance privilege; never for a disabled user. Who may export an
// archive (the button; core/export decides). Pure functions over the user record.
import type { UserRecord } from '../../core/storage/types.ts';

export interface Viewer {
  name: string;
  auditor: boolean;
  admin: boolean;
  compliance: boolean;
  export: boolean;
}

/** How much of one archive a viewer sees. */
export type ReadLevel = 'full' | 'headers' | 'none';

export function hasWebAccess(user: UserRecord | null, accessGroups: readonly string[]): boolean {
  if (!user || user.disabled) return false;
  return user.webAccess || user.privileges.includes('auditor') || user.privileges.includes('compliance')
    || user.groups.some((g) => accessGroups.includes(g));
}

export function viewerOf(user: UserRecord): Viewer {
  const has = (p: string): boolean => (user.privileges as string[]).includes(p);
  return { name: user.name, auditor: has('auditor'), admin: has('admin'), compliance: has('compliance'), export: has('export') };
}

export function readLevel(viewer: Viewer, owner: string, previewBlocking: boolean): ReadLevel {
  if (owner === viewer.name || viewer.auditor) return 'full';
  if (viewer.admin) return previewBlocking ? 'headers' : 'full';
  return 'none';
}

/** Whether a viewer may list and search every archive (auditors, administrators). */
export function seesEveryArchive(viewer: Viewer): boolean {
  return viewer.auditor || viewer.admin;
}

/**
 * Whether the viewer may export `owner`'s archive (or a folder of it), as core/export/access.ts decides:
 * the export privilege and their own archive, or any archive for auditors, and for administrators
 * unless preview blocking is on. Only decides whether the button is shown; the export service checks again.
 */
export function mayExportArchive(viewer: Viewer, owner: string, previewBlocking: boolean): boolean {
  if (!viewer.export) return false;
  return owner === viewer.name || viewer.auditor || (viewer.admin && !previewBlocking);
}

/** The legal-hold cases page: compliance officers and auditors (as the API's GET holds). */
export function seesHolds(viewer: Viewer): boolean {
  return viewer.compliance || viewer.auditor || viewer.admin;
}
