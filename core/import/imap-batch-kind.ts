// Job kind "import-imap-batch": many mailboxes of one IMAP server in one job, each into its archive
// user's archive (folders kept). The mailboxes come from a CSV file (login, password or password
// file, address, archive user; users created when missing if createUsers) or from the user directory
// (the job's targets, resolved at run time), logged in to with a master account (SASL PLAIN with the
// mailbox as authorisation identity: Dovecot master users, Exchange) or an OAuth2 token per mailbox.
// Each mailbox runs the single-mailbox import step with its own checkpoints (job state keyed by
// login), at most `concurrency` at once; a failing mailbox is recorded in its row and never fails
// the others. The result's summary lists every mailbox with its outcome and counts.
import { z } from 'zod';
import { errorMessage } from '../errors.ts';
import type { JobKind, JobRunContext } from '../jobs/types.ts';
import { describeTargets, resolveTargets, targetsSchema } from '../jobs/targets.ts';
import { readCsvMailboxes } from './batch-csv.ts';
import {
  IMAP_CREDENTIALS, foldersOption, importMailbox, type FolderRow, type ImapState, type MailboxAuth, type MailboxOptions,
} from './imap-kind.ts';
import { oauth2Schema } from './oauth2.ts';
import type { RunReport } from './report-mail.ts';
import { RunTally, checkCommon, resolvePassword, sourceOptions, type ImportDeps } from './source.ts';

const { mode: _mode, user: _user, username: _username, ...shared } = sourceOptions;

const batchSchema = z.strictObject({
  ...shared,
  port: sourceOptions.port.default(993),
  folders: foldersOption,
  /** csv: the mailboxes listed in csvFile; directory: the archive users named by targets. */
  mailboxes: z.enum(['csv', 'directory']),
  csvFile: z.string().min(1).optional(),
  /** csv: create an archive user (with the row's address) when the row names one that does not exist. */
  createUsers: z.boolean().default(false),
  /** directory: which users (default every user with an address). */
  targets: targetsSchema.optional(),
  /** directory: the mailbox login of a user, their first address or their user name. */
  login: z.enum(['address', 'name']).default('address'),
  /** directory with a password: the master account (the mailbox is the authorisation identity). */
  username: z.string().min(1).max(255).optional(),
  /** directory: OAuth2 tokens per mailbox instead of a master account. */
  oauth2: oauth2Schema.optional(),
  /** Mailboxes imported at the same time. */
  concurrency: z.number().int().min(1).max(32).default(4),
}).superRefine((o, ctx) => {
  checkCommon(o, ctx);
  const issue = (path: string, message: string): void => ctx.addIssue({ code: 'custom', path: [path], message });
  const passwords = [o.password, o.passwordFile, o.passwordEnv].filter((v) => v !== undefined).length;
  if (o.mailboxes === 'csv') {
    if (o.csvFile === undefined) issue('csvFile', 'a CSV batch needs csvFile');
    for (const k of ['targets', 'username', 'oauth2', 'password', 'passwordFile', 'passwordEnv'] as const) {
      if (o[k] !== undefined) issue(k, 'the CSV file holds the logins and passwords; only meaningful with mailboxes "directory"');
    }
  } else {
    if (o.csvFile !== undefined) issue('csvFile', 'only meaningful with mailboxes "csv"');
    if (o.createUsers) issue('createUsers', 'only meaningful with mailboxes "csv" (directory targets are existing users)');
    if (o.oauth2 !== undefined) {
      if (passwords > 0 || o.username !== undefined) issue('oauth2', 'log in with OAuth2 or with a master account, not both');
    } else {
      if (o.username === undefined) issue('username', 'a directory batch needs the master account (username) or oauth2');
      if (passwords !== 1) issue('password', 'give exactly one of password, passwordFile, passwordEnv (the master account\'s)');
    }
  }
});

export type ImapBatchOptions = z.infer<typeof batchSchema>;

interface BatchState { mailboxes: Record<string, ImapState> }

interface Mailbox { login: string; user: string; address: string; auth: () => Promise<MailboxAuth> }

export interface MailboxResult {
  login: string;
  user: string;
  status: 'succeeded' | 'completed-with-errors' | 'failed' | 'not run';
  found: number;
  archived: number;
  duplicates: number;
  failed: number;
  errors: string[];
}

/** The mailboxes a run imports (and the rows that could not become one). */
async function mailboxesOf(o: ImapBatchOptions, deps: ImportDeps, signal: AbortSignal): Promise<{ list: Mailbox[]; bad: MailboxResult[]; targets?: string }> {
  if (o.mailboxes === 'csv') {
    const list: Mailbox[] = [];
    const bad: MailboxResult[] = [];
    for (const r of readCsvMailboxes(o.csvFile ?? '')) {
      if (!r.ok) {
        bad.push({ login: r.login, user: '', status: 'failed', found: 0, archived: 0, duplicates: 0, failed: 0, errors: [r.reason] });
        continue;
      }
      const m = r.mailbox;
      list.push({ login: m.login, user: m.user, address: m.address, auth: async () => ({ user: m.login, pass: resolvePassword(m) }) });
    }
    return { list, bad };
  }
  const targets = o.targets ?? { mode: 'all' as const };
  const users = resolveTargets(targets, await deps.archive.listUsers());
  const list = users.map((u): Mailbox => {
    const login = o.login === 'address' ? (u.addresses[0] as string) : u.name;
    const auth = o.oauth2
      ? async (): Promise<MailboxAuth> => ({ user: login, accessToken: await deps.tokens.get(o.oauth2 as NonNullable<typeof o.oauth2>, login, signal) })
      : async (): Promise<MailboxAuth> => ({ user: o.username ?? '', pass: resolvePassword(o), authzid: login });
    return { login, user: u.name, address: u.addresses[0] ?? '', auth };
  });
  return { list, bad: [], targets: describeTargets(targets) };
}

export function imapBatchKind(deps: ImportDeps): JobKind<ImapBatchOptions> {
  return {
    kind: 'import-imap-batch',
    description: 'Import many mailboxes of one IMAP server (CSV list, or directory users through a master account or OAuth2), each into its user\'s archive',
    schema: batchSchema as unknown as z.ZodType<ImapBatchOptions>,
    secrets: IMAP_CREDENTIALS.secrets,
    hostLocal: [...IMAP_CREDENTIALS.hostLocal, 'csvFile'],
    secretScope: IMAP_CREDENTIALS.secretScope,
    async run(o, ctx) {
      const startedAt = new Date();
      const timeout = AbortSignal.timeout(o.timeoutSeconds * 1000);
      const signal = AbortSignal.any([ctx.signal, timeout]);
      ctx.progress('listing mailboxes', o.mailboxes === 'csv' ? o.csvFile : 'directory targets');
      const { list, bad, targets } = await mailboxesOf(o, deps, signal);
      for (const b of bad) ctx.error(b.errors[0] ?? '');
      const state = (await ctx.loadState<BatchState>()) ?? { mailboxes: {} };
      // Checkpoint saves of concurrent mailboxes are coalesced: while one write (synced) is in flight,
      // every further request waits for the single next write, which holds all of their progress.
      let inFlight: Promise<void> | null = null;
      let queued: Promise<void> | null = null;
      const write = (): Promise<void> => {
        const p: Promise<void> = ctx.saveState(state).finally(() => {
          if (inFlight === p) inFlight = null;
        });
        inFlight = p;
        return p;
      };
      const save = (): Promise<void> => {
        if (queued) return queued;
        if (!inFlight) return write();
        const q: Promise<void> = inFlight.catch(() => undefined).then(() => {
          queued = null;
          return write();
        });
        queued = q;
        return q;
      };
      const creating = new Map<string, Promise<void>>();
      const ensureUser = async (m: Mailbox): Promise<void> => {
        if (await deps.archive.getUser(m.user)) return;
        if (o.mailboxes !== 'csv' || !o.createUsers) throw new Error(`Archive user "${m.user}" does not exist (createUsers is off)`);
        if (m.address === '') throw new Error(`Archive user "${m.user}" does not exist and the row gives no address to create it with`);
        let p = creating.get(m.user);
        if (!p) {
          p = deps.archive.addUser({ name: m.user, addresses: [m.address] }).then(() => {
            deps.log.info('Archive user created by a batch import', { job: ctx.jobName, user: m.user });
          });
          creating.set(m.user, p);
        }
        await p;
      };
      const results: MailboxResult[] = list.map((m) => ({ login: m.login, user: m.user, status: 'not run', found: 0, archived: 0, duplicates: 0, failed: 0, errors: [] }));
      const base: Omit<MailboxOptions, 'mode' | 'user'> = o;
      let running = 0;
      let finished = 0;
      const one = async (m: Mailbox, row: MailboxResult): Promise<void> => {
        const mctx: JobRunContext = {
          ...ctx,
          progress: (command, detail) => ctx.progress(`${finished} of ${list.length} mailboxes done, ${running} running`, `${m.login}: ${command}${detail ? ` (${detail})` : ''}`),
          error: (message) => ctx.error(`${m.login}: ${message}`),
          saveState: save,
          loadState: async <T>() => (state.mailboxes[m.login] ?? null) as T | null,
        };
        const tally = new RunTally(mctx);
        const folders: FolderRow[] = [];
        try {
          const mstate = state.mailboxes[m.login] ?? { folders: {} };
          state.mailboxes[m.login] = mstate;
          // A missing user is created only once the login worked.
          await importMailbox({ ...base, mode: 'single-user', user: m.user }, await m.auth(), deps, mctx, mstate, tally, signal, folders, () => ensureUser(m));
          row.status = tally.counts.failed > 0 || tally.errors.length > 0 ? 'completed-with-errors' : 'succeeded';
        } catch (err) {
          if (signal.aborted) throw err;
          row.status = 'failed';
          tally.error(errorMessage(err));
        } finally {
          Object.assign(row, tally.counts);
          row.errors = tally.errors.slice(0, 20);
          if (row.status !== 'not run') deps.metrics.importMailboxes.inc({ outcome: row.status });
        }
      };
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < list.length && !signal.aborted) {
          const i = next++;
          running++;
          try {
            await one(list[i] as Mailbox, results[i] as MailboxResult);
          } finally {
            running--;
            finished++;
          }
        }
      };
      let outcome = 'succeeded';
      let fatal: unknown = null;
      const settled = await Promise.allSettled(Array.from({ length: Math.min(o.concurrency, Math.max(1, list.length)) }, worker));
      await (queued ?? inFlight ?? undefined);
      const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (rejected) {
        if (timeout.aborted && !ctx.signal.aborted) {
          outcome = 'timed out';
          ctx.error(`Timed out after ${o.timeoutSeconds} s; the next run continues from the checkpoints`);
        } else {
          outcome = ctx.signal.aborted ? 'cancelled' : 'failed';
          fatal = rejected.reason;
        }
      }
      const rows = [...bad, ...results];
      const totals = rows.reduce((t, r) => ({ found: t.found + r.found, archived: t.archived + r.archived, duplicates: t.duplicates + r.duplicates, failed: t.failed + r.failed }), { found: 0, archived: 0, duplicates: 0, failed: 0 });
      const failedBoxes = rows.filter((r) => r.status === 'failed').length;
      if (outcome === 'succeeded' && (failedBoxes > 0 || rows.some((r) => r.status === 'completed-with-errors'))) outcome = 'completed with errors';
      if (o.reportTo) {
        const why = await deps.mailer.send(o.reportTo, {
          job: ctx.jobName, kind: 'import-imap-batch', server: `${o.server}:${o.port}`, startedAt, endedAt: new Date(), outcome, counts: totals,
          errors: rows.flatMap((r) => r.errors.map((e) => (e.startsWith('CSV line') ? e : `${r.login}: ${e}`))),
          folders: rows.map((r): RunReport['folders'][number] => ({ folder: `${r.login} → ${r.user || '?'} (${r.status})`, found: r.found, archived: r.archived, duplicates: r.duplicates, failed: r.failed })),
        });
        if (why) ctx.error(`Results report to ${o.reportTo} not sent: ${why}`);
      }
      if (fatal) throw fatal;
      ctx.progress('done', `${outcome}: ${rows.length - failedBoxes} of ${rows.length} mailboxes imported`);
      return { summary: { ...(targets ? { targets } : {}), mailboxCount: rows.length, failedMailboxes: failedBoxes, mailboxes: rows } };
    },
  };
}
