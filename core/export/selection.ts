// What an export contains: the entries of one user's archive (or one folder), of the archives job
// targets name (resolved when the export runs), of every archive a legal hold covers, of a full-text query's hits (through the `search` service, looked up at call time),
// or of messages picked one by one. Checks a selection before an export is created (user, folder, hold,
// each picked entry exist; search enabled and the query well-formed) and then yields its entries one at a time, in archive order (user, folder, UID)
// or the search's order, with bounded memory: folders are read in pages, holds and hits streamed.
import { PosternError } from '../errors.ts';
import type { SearchService } from '../app/search-service.ts';
import { holdCovers } from '../compliance/hold-scope.ts';
import type { AddressRules } from '../router/address-rules.ts';
import type { ArchiveEntry, ArchiveStore, MessageRecord } from '../storage/types.ts';
import { MAX_PICKS, type ExportPick, type ExportSelection } from './types.ts';
import { resolveTargets } from '../jobs/targets.ts';

export const SEARCH_DISABLED = 'Full-text search is not enabled (plugin search)';
const PAGE = 500;

export interface SelectionDeps {
  archive: ArchiveStore;
  /** The search service when a plugin provides it (asked at call time). */
  search: () => SearchService | null;
  addressRules: AddressRules;
  folders: { received: string; sent: string };
}

/** One selected entry; the message record when the selection already read it. */
export type Selected =
  | { ok: true; entry: ArchiveEntry; message: MessageRecord | null }
  | { ok: false; user: string; folder: string; uid: number; error: string };

/** The archive folder `wanted` names (exact, INBOX for the received folder, or a unique case-insensitive match). */
export function resolveFolderName(wanted: string, known: readonly string[], names: SelectionDeps['folders'], user: string): string {
  const all = [...new Set([names.received, names.sent, ...known])];
  if (all.includes(wanted)) return wanted;
  if (wanted.toUpperCase() === 'INBOX') return names.received;
  const folded = all.filter((f) => f.toLowerCase() === wanted.toLowerCase());
  if (folded.length === 1) return folded[0] as string;
  if (folded.length > 1) throw new PosternError('INVALID_INPUT', `Folder "${wanted}" of user "${user}" is ambiguous: ${folded.map((f) => `"${f}"`).join(', ')} differ only in letter case`);
  throw new PosternError('NOT_FOUND', `User "${user}" has no folder "${wanted}"; the folders are ${all.map((f) => `"${f}"`).join(', ')}`);
}

/**
 * The selection as the export will run it (folder name resolved), or a typed error: NOT_FOUND for an
 * unknown user, folder or hold, INVALID_INPUT for a query the search refuses or search not enabled.
 */
export async function checkSelection(deps: SelectionDeps, sel: ExportSelection, scope: string[] | 'all'): Promise<ExportSelection> {
  if ('targets' in sel) {
    // Checked now (an "only" list naming unknown users fails at once); resolved again when the export runs.
    resolveTargets(sel.targets, await deps.archive.listUsers());
    return sel;
  }
  if ('query' in sel) {
    const search = deps.search();
    if (!search) throw new PosternError('INVALID_INPUT', SEARCH_DISABLED);
    await search.search(sel.query, { users: scope, limit: 1 });
    return sel;
  }
  if ('hold' in sel) {
    if (!(await deps.archive.retention().getHold(sel.hold))) throw new PosternError('NOT_FOUND', `Hold "${sel.hold}" does not exist`);
    return sel;
  }
  if ('messages' in sel) {
    const seen = new Set<string>();
    const picks: ExportPick[] = [];
    for (const p of sel.messages) {
      const key = `${p.user}\u0000${p.folder}\u0000${p.uid}`;
      if (seen.has(key)) continue;
      seen.add(key);
      picks.push({ user: p.user, folder: p.folder, uid: p.uid });
    }
    if (picks.length === 0) throw new PosternError('INVALID_INPUT', 'No messages were picked');
    if (picks.length > MAX_PICKS) throw new PosternError('INVALID_INPUT', `At most ${MAX_PICKS} messages can be picked for one export, not ${picks.length}`);
    for (const p of picks) {
      if (!(await deps.archive.getEntry(p.user, p.folder, p.uid))) throw new PosternError('NOT_FOUND', `User "${p.user}" has no message with UID ${p.uid} in folder "${p.folder}"`);
    }
    return { messages: picks };
  }
  const folders = (await deps.archive.folders(sel.user)).map((f) => f.folder);
  if (folders.length === 0 && !(await deps.archive.getUser(sel.user))) throw new PosternError('NOT_FOUND', `User "${sel.user}" does not exist and has no archive`);
  if (sel.folder === undefined) return { user: sel.user };
  return { user: sel.user, folder: resolveFolderName(sel.folder, folders, deps.folders, sel.user) };
}

async function* folderEntries(archive: ArchiveStore, user: string, folder: string, signal: AbortSignal): AsyncGenerator<ArchiveEntry> {
  let after = 0;
  for (;;) {
    signal.throwIfAborted();
    const page = await archive.listEntries(user, folder, { afterUid: after, limit: PAGE });
    for (const e of page) yield e;
    if (page.length < PAGE) return;
    after = (page[page.length - 1] as ArchiveEntry).uid;
  }
}

async function* userEntries(archive: ArchiveStore, user: string, folder: string | undefined, signal: AbortSignal): AsyncGenerator<ArchiveEntry> {
  const folders = folder !== undefined ? [folder] : (await archive.folders(user)).map((f) => f.folder);
  for (const f of folders) yield* folderEntries(archive, user, f, signal);
}

async function* wrap(entries: AsyncIterable<ArchiveEntry>): AsyncGenerator<Selected> {
  for await (const entry of entries) yield { ok: true, entry, message: null };
}

/** Every entry of the selection, in order; entries that cannot be read are yielded as failures. */
export async function* selectEntries(deps: SelectionDeps, sel: ExportSelection, scope: string[] | 'all', signal: AbortSignal): AsyncGenerator<Selected> {
  const { archive } = deps;
  if ('targets' in sel) {
    for (const u of resolveTargets(sel.targets, await archive.listUsers())) yield* wrap(userEntries(archive, u.name, undefined, signal));
    return;
  }
  if ('user' in sel) {
    for await (const entry of userEntries(archive, sel.user, sel.folder, signal)) yield { ok: true, entry, message: null };
    return;
  }
  if ('messages' in sel) {
    for (const p of sel.messages) {
      signal.throwIfAborted();
      if (scope !== 'all' && !scope.includes(p.user)) continue; // never outside the requester's archives
      const entry = await archive.getEntry(p.user, p.folder, p.uid);
      if (entry) yield { ok: true, entry, message: null };
      else yield { ok: false, user: p.user, folder: p.folder, uid: p.uid, error: 'The picked entry is no longer in the archive' };
    }
    return;
  }
  if ('hold' in sel) {
    const hold = await archive.retention().getHold(sel.hold);
    if (!hold) throw new PosternError('NOT_FOUND', `Hold "${sel.hold}" does not exist`);
    const covered = async function* (entries: AsyncIterable<ArchiveEntry>): AsyncGenerator<Selected> {
      for await (const entry of entries) {
        signal.throwIfAborted();
        const message = await archive.getMessage(entry.messageId);
        if (!message) {
          yield { ok: false, user: entry.user, folder: entry.folder, uid: entry.uid, error: `Entry points to missing message "${entry.messageId}"` };
          continue;
        }
        if (holdCovers(hold.scope, entry.user, message, deps.addressRules)) yield { ok: true, entry, message };
      }
    };
    if (hold.scope.users) {
      for (const user of hold.scope.users) yield* covered(userEntries(archive, user, undefined, signal));
      return;
    }
    // Every archive, also of users no longer in the directory and the unrouted one (a hold covers them too).
    const unreadable: Selected[] = [];
    const all = async function* (): AsyncGenerator<ArchiveEntry> {
      for await (const s of archive.integrity().entries()) {
        if (s.ok) yield s.value;
        else if (unreadable.length < 1000) unreadable.push({ ok: false, user: '', folder: s.where, uid: 0, error: `Unreadable archive entry: ${s.error}` });
      }
    };
    yield* covered(all());
    yield* unreadable;
    return;
  }
  const search = deps.search();
  if (!search) throw new PosternError('INVALID_INPUT', SEARCH_DISABLED);
  for await (const hit of search.all(sel.query, scope, signal)) {
    signal.throwIfAborted();
    if (scope !== 'all' && !scope.includes(hit.user)) continue; // never outside the requester's archives
    const entry = await archive.getEntry(hit.user, hit.folder, hit.uid);
    if (!entry || entry.messageId !== hit.messageId) {
      yield { ok: false, user: hit.user, folder: hit.folder, uid: hit.uid, error: 'The search index names an entry the archive no longer holds' };
      continue;
    }
    yield { ok: true, entry, message: null };
  }
}
