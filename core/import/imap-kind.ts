// Job kind "import-imap": pulls a journal/multidrop mailbox (or one user's mailbox, folders kept)
// from an IMAP server with imapflow. Per folder it keeps a checkpoint (UIDVALIDITY + last UID) in the
// job state, saved after each message's intake commit, so an interrupted run resumes and a repeated
// run fetches nothing old; a UIDVALIDITY change restarts the folder (dedup absorbs the copies).
// Deletes from the source only when enabled, only after the commit and only what the deletion rules
// allow (older than N days by internal date, read). Logs in with a password or an OAuth2 token
// (XOAUTH2); `importMailbox` is also the per-mailbox step of the batch kind. Trusts nothing the
// server sends beyond imapflow's parsing; every message is bounded by the capture limit.
import { ImapFlow, type ListResponse } from 'imapflow';
import { z } from 'zod';
import { errorMessage } from '../errors.ts';
import type { JobKind, JobRunContext } from '../jobs/types.ts';
import {
  RunTally, SOURCE_CREDENTIALS, checkSource, dayStart, mayDelete, resolvePassword, sleep, sourceOptions, submitMessage,
  type ImportDeps,
} from './source.ts';
import { oauth2Schema } from './oauth2.ts';
import type { RunReport } from './report-mail.ts';
import { tlsOptionsFor } from './tls-pin.ts';

/** Folders to import (IMAP paths), or "all" (every selectable folder). */
export const foldersOption = z.union([z.literal('all'), z.array(z.string().min(1).max(1000)).min(1)]).default('all');

const imapSchema = z.strictObject({
  ...sourceOptions,
  port: sourceOptions.port.default(993),
  folders: foldersOption,
  /** Log in with an OAuth2 access token (XOAUTH2) instead of a password. */
  oauth2: oauth2Schema.optional(),
}).superRefine((o, ctx) => checkSource(o, ctx, true));

export type ImapImportOptions = z.infer<typeof imapSchema>;

/** Everything of a definition that says how a mailbox is read, but not who logs in. */
export type MailboxOptions = Omit<ImapImportOptions, 'username' | 'password' | 'passwordFile' | 'passwordEnv' | 'oauth2'>;

/** How one mailbox is logged in to: a password (with an authorisation identity: a master user), or a token. */
export type MailboxAuth = { user: string; pass: string; authzid?: string } | { user: string; accessToken: string };

interface FolderCheckpoint { uidValidity: string; lastUid: number }
export interface ImapState { folders: Record<string, FolderCheckpoint> }
export type FolderRow = RunReport['folders'][number];

const DELETE_BATCH = 50;

/** A logged-in client, closed when the signal aborts; `done` logs out and detaches from the signal. */
async function connect(o: MailboxOptions, auth: MailboxAuth, signal: AbortSignal): Promise<{ client: ImapFlow; done(): Promise<void> }> {
  const tls = await tlsOptionsFor(o.server, o.port, o, 'imap');
  const client = new ImapFlow({
    host: o.server,
    port: o.port,
    secure: o.tls === 'implicit',
    doSTARTTLS: o.tls === 'starttls' ? true : o.tls === 'none' ? false : undefined,
    tls,
    auth: 'accessToken' in auth ? { user: auth.user, accessToken: auth.accessToken }
      : { user: auth.user, pass: auth.pass, ...(auth.authzid !== undefined ? { authzid: auth.authzid } : {}) },
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: 30_000,
    greetingTimeout: 15_000,
    socketTimeout: 120_000,
  });
  client.on('error', () => undefined);
  const onAbort = (): void => client.close();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
  } catch (err) {
    signal.removeEventListener('abort', onAbort);
    const e = err as Error & { responseText?: string; authenticationFailed?: boolean };
    throw new Error(`Cannot log in to ${o.server}:${o.port}: ${e.authenticationFailed ? 'authentication failed' : e.responseText ?? e.message}`);
  }
  return {
    client,
    async done() {
      signal.removeEventListener('abort', onAbort);
      await client.logout().catch(() => client.close());
    },
  };
}

async function selectableFolders(client: ImapFlow, o: Pick<MailboxOptions, 'folders'>): Promise<ListResponse[]> {
  const all = (await client.list()).filter((f) => !f.flags.has('\\Noselect') && !f.flags.has('\\NonExistent'));
  if (o.folders === 'all') return all;
  return o.folders.map((p) => all.find((f) => f.path === p) ?? { path: p, name: p, delimiter: '/', flags: new Set<string>(), parent: [], parentPath: '', pathAsListed: p, listed: false, subscribed: false });
}

/** The archive folder a source folder maps to in single-user mode (INBOX → the user's received folder). */
function archiveFolder(f: ListResponse): string | undefined {
  if (f.path.toUpperCase() === 'INBOX') return undefined;
  return f.delimiter ? f.path.split(f.delimiter).join('/') : f.path;
}

function searchQuery(o: MailboxOptions, lastUid: number): Record<string, unknown> {
  const q: Record<string, unknown> = { uid: `${lastUid + 1}:*` };
  if (o.startDate) q.since = dayStart(o.startDate);
  if (o.endDate) q.before = new Date(dayStart(o.endDate).getTime() + 86_400_000);
  return q;
}

async function importFolder(client: ImapFlow, f: ListResponse, o: MailboxOptions, deps: ImportDeps, ctx: JobRunContext, state: ImapState, tally: RunTally, signal: AbortSignal): Promise<FolderRow> {
  const row = { folder: f.path, found: 0, archived: 0, duplicates: 0, failed: 0 };
  const lock = await client.getMailboxLock(f.path, { readOnly: !o.deleteAfterArchive });
  try {
    const box = client.mailbox;
    if (!box) throw new Error(`Folder "${f.path}" could not be opened`);
    const uidValidity = String(box.uidValidity);
    let cp = state.folders[f.path];
    if (cp && cp.uidValidity !== uidValidity) {
      ctx.error(`Folder "${f.path}": UIDVALIDITY changed (${cp.uidValidity} → ${uidValidity}); importing it again (duplicates are recognised)`);
      cp = undefined;
    }
    const lastUid = cp?.lastUid ?? 0;
    const found = box.exists === 0 ? [] : ((await client.search(searchQuery(o, lastUid), { uid: true })) || []).filter((u) => u > lastUid).sort((a, b) => a - b);
    row.found = found.length;
    tally.count({ found: found.length });
    const toDelete: number[] = [];
    const flush = async (): Promise<void> => {
      if (toDelete.length === 0) return;
      await client.messageDelete(toDelete.join(','), { uid: true });
      toDelete.length = 0;
    };
    for (const [i, uid] of found.entries()) {
      if (signal.aborted) throw signal.reason as Error;
      ctx.progress(`importing ${f.path}`, `message ${i + 1} of ${found.length} (UID ${uid})`);
      // The size first: an oversized message is never downloaded.
      const meta = await client.fetchOne(String(uid), { size: true, uid: true, flags: true, internalDate: true }, { uid: true });
      const tooBig = meta !== false && (meta.size ?? 0) > deps.maxBytes;
      const msg = meta && !tooBig ? await client.fetchOne(String(uid), { source: true, uid: true }, { uid: true }) : false;
      const source = msg ? msg.source : undefined;
      const problem = tooBig || (source && source.length > deps.maxBytes) ? `message is larger than ${deps.maxBytes} bytes`
        : !source ? 'the server returned no message' : null;
      if (problem !== null || !source) {
        row.failed++;
        tally.count({ failed: 1 });
        tally.error(`${f.path} UID ${uid}: ${problem ?? 'the server returned no message'}`);
      } else {
        const result = await submitMessage(deps, o, source, 'import-imap', {
          job: ctx.jobName, sent: f.specialUse === '\\Sent', ...(o.mode === 'single-user' ? defined(archiveFolder(f)) : {}),
        }, signal);
        row[result === 'archived' ? 'archived' : 'duplicates']++;
        tally.count(result === 'archived' ? { archived: 1 } : { duplicates: 1 });
        if (meta && mayDelete(o, { date: meta.internalDate ? new Date(meta.internalDate) : null, unread: meta.flags ? !meta.flags.has('\\Seen') : null })) toDelete.push(uid);
      }
      // The checkpoint moves only after the intake commit (or a recorded failure) of this UID.
      state.folders[f.path] = { uidValidity, lastUid: uid };
      await ctx.saveState(state);
      if (toDelete.length >= DELETE_BATCH) await flush();
      if (o.delaySeconds > 0) await sleep(o.delaySeconds * 1000, signal);
    }
    await flush();
    if (!state.folders[f.path]) {
      state.folders[f.path] = { uidValidity, lastUid };
      await ctx.saveState(state);
    }
  } finally {
    lock.release();
  }
  return row;
}

function defined(folder: string | undefined): { folder?: string } {
  return folder === undefined ? {} : { folder };
}

/** The login of a single-mailbox definition: its password, or an OAuth2 token for its user name. */
async function loginFor(o: ImapImportOptions, deps: ImportDeps, signal: AbortSignal): Promise<MailboxAuth> {
  if (o.oauth2) return { user: o.username, accessToken: await deps.tokens.get(o.oauth2, o.username, signal) };
  return { user: o.username, pass: resolvePassword(o) };
}

/**
 * Import one mailbox: log in, then every selected folder from its checkpoint in `state` (saved through
 * ctx.saveState), once `loggedIn` (if given) has resolved after the login. Folder rows are appended to
 * `folders` as each ends. A folder the server refuses is an error of the run; a lost connection or an
 * abort throws.
 */
export async function importMailbox(o: MailboxOptions, auth: MailboxAuth, deps: ImportDeps, ctx: JobRunContext, state: ImapState, tally: RunTally, signal: AbortSignal, folders: FolderRow[], loggedIn?: () => Promise<void>): Promise<void> {
  ctx.progress('connecting', `${o.server}:${o.port}`);
  const { client, done } = await connect(o, auth, signal);
  try {
    await loggedIn?.();
    for (const f of await selectableFolders(client, o)) {
      if (signal.aborted) throw signal.reason as Error;
      try {
        folders.push(await importFolder(client, f, o, deps, ctx, state, tally, signal));
      } catch (err) {
        if (signal.aborted || !client.usable) throw err;
        tally.error(`Folder "${f.path}": ${(err as { responseText?: string }).responseText ?? errorMessage(err)}`);
      }
    }
  } finally {
    await done();
  }
}

/** The credential handling of IMAP kinds: the source's, plus the OAuth2 settings (they name host files). */
export const IMAP_CREDENTIALS = {
  secrets: SOURCE_CREDENTIALS.secrets,
  hostLocal: [...SOURCE_CREDENTIALS.hostLocal, 'oauth2'],
  secretScope: [...SOURCE_CREDENTIALS.secretScope, 'oauth2'],
};

export function imapImportKind(deps: ImportDeps): JobKind<ImapImportOptions> {
  return {
    kind: 'import-imap',
    description: 'Import a journal/multidrop or single-user mailbox from an IMAP server',
    schema: imapSchema as z.ZodType<ImapImportOptions>,
    ...IMAP_CREDENTIALS,
    async list(o, lctx) {
      const { client, done } = await connect(o, await loginFor(o, deps, lctx.signal), lctx.signal);
      try {
        const out: Array<{ folder: string; messages: number; uidValidity: string; uidNext: number }> = [];
        for (const f of await selectableFolders(client, o)) {
          const s = await client.status(f.path, { messages: true, uidValidity: true, uidNext: true });
          if (s) out.push({ folder: f.path, messages: s.messages ?? 0, uidValidity: String(s.uidValidity ?? ''), uidNext: s.uidNext ?? 0 });
        }
        return { server: `${o.server}:${o.port}`, folders: out };
      } finally {
        await done();
      }
    },
    async run(o, ctx) {
      const startedAt = new Date();
      const tally = new RunTally(ctx);
      const timeout = AbortSignal.timeout(o.timeoutSeconds * 1000);
      const signal = AbortSignal.any([ctx.signal, timeout]);
      const folders: RunReport['folders'] = [];
      let outcome = 'succeeded';
      let fatal: unknown = null;
      try {
        const state = (await ctx.loadState<ImapState>()) ?? { folders: {} };
        await importMailbox(o, await loginFor(o, deps, signal), deps, ctx, state, tally, signal, folders);
      } catch (err) {
        if (timeout.aborted && !ctx.signal.aborted) {
          outcome = 'timed out';
          tally.error(`Timed out after ${o.timeoutSeconds} s; the next run continues from the checkpoint`);
        } else {
          outcome = ctx.signal.aborted ? 'cancelled' : 'failed';
          fatal = err;
        }
      }
      if (outcome === 'succeeded' && (tally.counts.failed > 0 || tally.errors.length > 0)) outcome = 'completed with errors';
      if (o.reportTo) {
        const errors = fatal ? [...tally.errors, errorMessage(fatal)] : tally.errors;
        const why = await deps.mailer.send(o.reportTo, {
          job: ctx.jobName, kind: 'import-imap', server: `${o.server}:${o.port}`, startedAt, endedAt: new Date(), outcome, counts: tally.counts, errors, folders,
        });
        if (why) ctx.error(`Results report to ${o.reportTo} not sent: ${why}`);
      }
      if (fatal) throw fatal;
      ctx.progress('done', outcome);
      return { summary: { folders } };
    },
  };
}
