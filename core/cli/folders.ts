// Folder names on the command line: the archive's names ("Inbox", "Sent", "Work/Projects"), the IMAP
// name INBOX for the received folder, and any of them in another letter case. An unknown folder is an
// error naming the folders the user has, never an empty listing. Asks the admin API for the folders.
import type { FolderStatus } from '../storage/types.ts';
import { AdminClientError, callJson, type AdminTarget } from './client.ts';

export interface FolderNames {
  /** routing.receivedFolder (IMAP INBOX) and routing.sentFolder: exist for every user, empty at first. */
  received: string;
  sent: string;
}

/** The archive folder `wanted` names for `user` (default: the received folder). */
export async function resolveFolder(target: AdminTarget, user: string, wanted: string | undefined, names: FolderNames): Promise<string> {
  if (wanted === undefined) return names.received;
  const res = await callJson<{ folders: FolderStatus[] }>(target, 'GET', `/api/v1/users/${encodeURIComponent(user)}/folders`);
  const known = [...new Set([names.received, names.sent, ...res.folders.map((f) => f.folder)])];
  if (known.includes(wanted)) return wanted;
  if (wanted.toUpperCase() === 'INBOX') return names.received;
  const folded = known.filter((f) => f.toLowerCase() === wanted.toLowerCase());
  if (folded.length === 1) return folded[0] as string;
  const list = known.map((f) => `"${f}"`).join(', ');
  throw new AdminClientError(folded.length > 1
    ? `Folder "${wanted}" of user "${user}" is ambiguous: ${folded.map((f) => `"${f}"`).join(', ')} differ only in letter case; give the exact name`
    : `User "${user}" has no folder "${wanted}"; the folders are ${list}`, null);
}
