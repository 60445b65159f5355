// The mailboxes a logged-in user sees: their own archive folders (the received folder as INBOX, the
// sent folder with \Sent, any other folder by name), optional per-year children of large folders, and
// for auditors every user's folders under the shared namespace "Users/<name>/…". Names are encoded in
// modified UTF-7 with "/" as the hierarchy delimiter. Trusts the archive; a name from the client is
// resolved only against this list, so nobody reaches a folder they were not shown.
import type { ArchiveStore, FolderStatus } from '../../core/storage/types.ts';
import { encodeMailboxName } from './encode.ts';
import type { FolderIndexes } from './folder-index.ts';

export const DELIMITER = '/';
export const SHARED_PREFIX = 'Users';

export interface MailboxRef {
  /** The name as the client sees it (modified UTF-7). */
  name: string;
  owner: string;
  folder: string;
  /** Only messages of this year (a year child of a split folder). */
  year: number | null;
  /** Read through the auditor namespace. */
  shared: boolean;
}

export interface MailboxEntry {
  name: string;
  attributes: string[];
  /** Null for a \Noselect parent. */
  ref: MailboxRef | null;
}

export interface MailboxContext {
  archive: ArchiveStore;
  indexes: FolderIndexes;
  user: string;
  auditor: boolean;
  receivedFolder: string;
  sentFolder: string;
  splitByYearAbove: number;
}

async function ownerMailboxes(ctx: MailboxContext, owner: string, shared: boolean): Promise<MailboxEntry[]> {
  const folders: FolderStatus[] = [...(await ctx.indexes.folders(owner))];
  if (!shared && !folders.some((f) => f.folder === ctx.receivedFolder)) {
    folders.unshift({ user: owner, folder: ctx.receivedFolder, uidValidity: 1, uidNext: 1, messages: 0 });
  }
  const prefix = shared ? `${SHARED_PREFIX}${DELIMITER}${encodeMailboxName(owner)}${DELIMITER}` : '';
  const out: MailboxEntry[] = [];
  for (const f of folders) {
    const isInbox = !shared && f.folder === ctx.receivedFolder;
    const name = isInbox ? 'INBOX' : prefix + encodeMailboxName(f.folder);
    if (!isInbox && !shared && name.toUpperCase() === 'INBOX') continue;
    const attributes = !shared && f.folder === ctx.sentFolder ? ['\\Sent'] : [];
    out.push({ name, attributes, ref: { name, owner, folder: f.folder, year: null, shared } });
    if (ctx.splitByYearAbove > 0 && f.messages > ctx.splitByYearAbove) {
      const index = await ctx.indexes.get(owner, f.folder);
      for (const year of [...index.years.keys()].sort((a, b) => a - b)) {
        const child = `${name}${DELIMITER}${year}`;
        out.push({ name: child, attributes: [], ref: { name: child, owner, folder: f.folder, year, shared } });
      }
    }
  }
  return out;
}

/** Add \Noselect parents for hierarchy levels that are no folder of their own, and CHILDREN attributes. */
function withHierarchy(list: MailboxEntry[], roots: string[]): MailboxEntry[] {
  const byName = new Map(list.map((m) => [m.name, m]));
  for (const r of roots) if (!byName.has(r)) byName.set(r, { name: r, attributes: ['\\Noselect'], ref: null });
  for (const m of [...byName.values()]) {
    const parts = m.name.split(DELIMITER);
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join(DELIMITER);
      if (parent !== '' && !byName.has(parent)) byName.set(parent, { name: parent, attributes: ['\\Noselect'], ref: null });
    }
  }
  const names = [...byName.keys()];
  const hasChildren = new Set<string>();
  for (const n of names) {
    const cut = n.lastIndexOf(DELIMITER);
    if (cut > 0) hasChildren.add(n.slice(0, cut));
  }
  return [...byName.values()]
    .map((m) => ({ ...m, attributes: [...m.attributes, hasChildren.has(m.name) ? '\\HasChildren' : '\\HasNoChildren'] }))
    .sort((a, b) => (a.name === 'INBOX' ? -1 : b.name === 'INBOX' ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every mailbox the user may see. */
export async function listMailboxes(ctx: MailboxContext): Promise<MailboxEntry[]> {
  const list = await ownerMailboxes(ctx, ctx.user, false);
  const roots: string[] = [];
  if (ctx.auditor) {
    roots.push(SHARED_PREFIX);
    for (const u of await ctx.archive.listUsers()) {
      roots.push(`${SHARED_PREFIX}${DELIMITER}${encodeMailboxName(u.name)}`);
      list.push(...(await ownerMailboxes(ctx, u.name, true)));
    }
  }
  return withHierarchy(list, roots);
}

/** A mailbox by the client's name (INBOX case-insensitively), or null when the user cannot see it. */
export async function findMailbox(ctx: MailboxContext, name: string): Promise<MailboxEntry | null> {
  const canonical = /^inbox(?=$|\/)/i.test(name) ? 'INBOX' + name.slice(5) : name;
  let candidates: MailboxEntry[];
  const sharedPrefix = SHARED_PREFIX + DELIMITER;
  if (canonical.startsWith(sharedPrefix) || canonical === SHARED_PREFIX) {
    if (!ctx.auditor) return null;
    const owner = canonical.slice(sharedPrefix.length).split(DELIMITER)[0] ?? '';
    const user = owner === '' ? null : (await ctx.archive.listUsers()).find((u) => encodeMailboxName(u.name) === owner);
    candidates = withHierarchy(user ? await ownerMailboxes(ctx, user.name, true) : [], [SHARED_PREFIX]);
  } else {
    candidates = withHierarchy(await ownerMailboxes(ctx, ctx.user, false), []);
  }
  return candidates.find((m) => m.name === canonical) ?? null;
}

/** LIST pattern matching: "*" matches anything, "%" anything but the delimiter. */
export function patternMatcher(reference: string, pattern: string): (name: string) => boolean {
  const full = reference + pattern;
  const source = [...full].map((c) => (c === '*' ? '.*' : c === '%' ? '[^/]*' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  const re = new RegExp(`^${source}$`);
  const inboxRe = /^inbox/i.test(full) ? new RegExp(`^${'INBOX' + source.slice(5)}$`) : null;
  return (name) => re.test(name) || (inboxRe !== null && inboxRe.test(name));
}
