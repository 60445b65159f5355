// What the IMAP and POP3 import kinds share: the option schema (server, TLS, credentials, mode,
// dates, pacing), credential resolution (definition, file or environment; never logged), throttling
// on the intake depth, abortable sleeps, and the submit step with duplicate detection and counts.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { CaptureService } from '../intake/capture.ts';
import type { Assignment } from '../intake/intake.ts';
import type { Logger } from '../log.ts';
import { PosternError } from '../errors.ts';
import { USER_NAME, blobIdentity, type ArchiveStore } from '../storage/types.ts';
import type { JobCounts } from '../jobs/types.ts';
import type { ReportMailer } from './report-mail.ts';
import type { OAuth2Tokens } from './oauth2.ts';
import type { Metrics } from '../metrics.ts';

const yyyymmdd = z.string().regex(/^(\d{8})?$/, 'must be yyyymmdd or empty')
  .refine((s) => !/^\d{8}$/.test(s) || dayStart(s).toISOString().slice(0, 10).replace(/-/g, '') === s, 'is not a calendar date');

export const sourceOptions = {
  server: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535),
  tls: z.enum(['implicit', 'starttls', 'none']).default('implicit'),
  /** Accept any certificate (a self-signed one on a trusted network). */
  acceptSelfSigned: z.boolean().default(false),
  /** Pin the server certificate by its SHA-256 fingerprint (hex, colons optional). */
  fingerprint: z.string().regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/).optional(),
  username: z.string().min(1).max(255),
  password: z.string().max(1024).optional(),
  passwordFile: z.string().min(1).optional(),
  passwordEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional(),
  /** journal: every message goes through the multidrop router; single-user: into `user`'s archive. */
  mode: z.enum(['journal', 'single-user']).default('journal'),
  user: z.string().regex(USER_NAME).optional(),
  startDate: yyyymmdd.default(''),
  endDate: yyyymmdd.default(''),
  delaySeconds: z.number().min(0).max(3600).default(0),
  maxQueueDepth: z.number().int().min(1).max(1_000_000).default(1000),
  timeoutSeconds: z.number().min(1).max(7 * 86400).default(3600),
  deleteAfterArchive: z.boolean().default(false),
  /** Deletion rule: delete only messages older than this many days (0 = any age; needs deleteAfterArchive). */
  deleteOlderThanDays: z.number().int().min(0).max(36_500).default(0),
  /** Deletion rule: never delete a message not yet read on the source (IMAP \\Seen unset). */
  deleteSkipUnread: z.boolean().default(false),
  reportTo: z.string().regex(/^[^\s@<>]+@[^\s@<>]+$/).optional(),
};

export const SOURCE_SECRETS = ['password'] as const;
/** Options that say where the password is sent (JobKind.secretScope): changing one needs it again. */
export const SOURCE_SECRET_SCOPE = ['server', 'port', 'tls', 'acceptSelfSigned', 'fingerprint', 'username'] as const;
/** Options naming a file or variable on the server host (JobKind.hostLocal): token or configuration only. */
export const SOURCE_HOST_LOCAL = ['passwordFile', 'passwordEnv'] as const;
/** The credential handling both mailbox import kinds declare (spread into their JobKind). */
export const SOURCE_CREDENTIALS = { secrets: SOURCE_SECRETS, hostLocal: SOURCE_HOST_LOCAL, secretScope: SOURCE_SECRET_SCOPE };

export interface SourceOptions {
  server: string; port: number; tls: 'implicit' | 'starttls' | 'none'; acceptSelfSigned: boolean; fingerprint?: string | undefined;
  username: string; password?: string | undefined; passwordFile?: string | undefined; passwordEnv?: string | undefined;
  mode: 'journal' | 'single-user'; user?: string | undefined; startDate: string; endDate: string;
  delaySeconds: number; maxQueueDepth: number; timeoutSeconds: number; deleteAfterArchive: boolean;
  deleteOlderThanDays: number; deleteSkipUnread: boolean; reportTo?: string | undefined;
}

/** The deletion options of a source (what `mayDelete` decides on). */
export type DeletionRules = Pick<SourceOptions, 'deleteAfterArchive' | 'deleteOlderThanDays' | 'deleteSkipUnread'>;

/**
 * Whether an archived message may be deleted from the source under the job's deletion rules. A rule
 * that cannot be checked (no date known, read state unknown) keeps the message.
 */
export function mayDelete(o: DeletionRules, m: { date: Date | null; unread: boolean | null }, now = Date.now()): boolean {
  if (!o.deleteAfterArchive) return false;
  if (o.deleteSkipUnread && m.unread !== false) return false;
  if (o.deleteOlderThanDays > 0) {
    if (!m.date || Number.isNaN(m.date.getTime())) return false;
    if (m.date.getTime() > now - o.deleteOlderThanDays * 86_400_000) return false;
  }
  return true;
}

/** Cross-field rules of a source definition (apply with superRefine). */
export function checkSource(o: SourceOptions & { oauth2?: unknown }, ctx: z.RefinementCtx, withOauth = false): void {
  checkCredentials(o, ctx, withOauth);
  checkCommon(o, ctx);
  if (o.mode === 'single-user' && !o.user) ctx.addIssue({ code: 'custom', path: ['user'], message: 'single-user mode needs the archive user' });
  if (o.mode === 'journal' && o.user) ctx.addIssue({ code: 'custom', path: ['user'], message: 'only meaningful in single-user mode' });
}

/** Exactly one credential: a password (given, from a file or from a variable), or OAuth2 where the kind has it. */
export function checkCredentials(o: Pick<SourceOptions, 'password' | 'passwordFile' | 'passwordEnv'> & { oauth2?: unknown }, ctx: z.RefinementCtx, withOauth: boolean): void {
  const given = [o.password, o.passwordFile, o.passwordEnv, o.oauth2].filter((v) => v !== undefined).length;
  if (given !== 1) ctx.addIssue({ code: 'custom', path: ['password'], message: `give exactly one of password, passwordFile, passwordEnv${withOauth ? ', oauth2' : ''}` });
}

/** The cross-field rules that do not concern credentials. */
export function checkCommon(o: Pick<SourceOptions, keyof DeletionRules | 'startDate' | 'endDate' | 'acceptSelfSigned' | 'fingerprint' | 'tls'>, ctx: z.RefinementCtx): void {
  if (!o.deleteAfterArchive && (o.deleteOlderThanDays > 0 || o.deleteSkipUnread)) {
    ctx.addIssue({ code: 'custom', path: ['deleteAfterArchive'], message: 'deletion rules (deleteOlderThanDays, deleteSkipUnread) need deleteAfterArchive' });
  }
  if (o.startDate && o.endDate && o.startDate > o.endDate) ctx.addIssue({ code: 'custom', path: ['endDate'], message: 'is before startDate' });
  if (o.acceptSelfSigned && o.fingerprint) ctx.addIssue({ code: 'custom', path: ['fingerprint'], message: 'pin a fingerprint or accept any self-signed certificate, not both' });
  if (o.tls === 'none' && (o.acceptSelfSigned || o.fingerprint)) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'certificate options need tls implicit or starttls' });
}

export function resolvePassword(o: Pick<SourceOptions, 'password' | 'passwordFile' | 'passwordEnv'>): string {
  if (o.password !== undefined) return o.password;
  if (o.passwordEnv !== undefined) {
    const v = process.env[o.passwordEnv];
    if (v === undefined) throw new PosternError('CONFIG_INVALID', `Environment variable "${o.passwordEnv}" (the import password) is not set`);
    return v;
  }
  try {
    return readFileSync(o.passwordFile ?? '', 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new PosternError('CONFIG_INVALID', `Password file "${o.passwordFile}" cannot be read: ${(err as Error).message}`);
  }
}

export function dayStart(yyyymmdd: string): Date {
  return new Date(Date.UTC(Number(yyyymmdd.slice(0, 4)), Number(yyyymmdd.slice(4, 6)) - 1, Number(yyyymmdd.slice(6, 8))));
}

/** Whether a date lies in [startDate 00:00, endDate + 1 day) UTC; an unknown date passes. */
export function inRange(o: Pick<SourceOptions, 'startDate' | 'endDate'>, date: Date | null): boolean {
  if (!date || Number.isNaN(date.getTime())) return true;
  if (o.startDate && date < dayStart(o.startDate)) return false;
  if (o.endDate && date.getTime() >= dayStart(o.endDate).getTime() + 86_400_000) return false;
  return true;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export interface ImportDeps {
  capture: CaptureService;
  /** OAuth2 access tokens of IMAP sources, cached across runs. */
  tokens: OAuth2Tokens;
  metrics: Pick<Metrics, 'importMailboxes'>;
  archive: ArchiveStore;
  log: Logger;
  mailer: ReportMailer;
  maxBytes: number;
}

/** A run's counts and errors, kept locally for the results mail and mirrored into the job context. */
export class RunTally {
  readonly counts: JobCounts = { found: 0, archived: 0, duplicates: 0, failed: 0 };
  readonly errors: string[] = [];
  constructor(private readonly ctx: { count(d: Partial<JobCounts>): void; error(m: string): void }) {}
  count(d: Partial<JobCounts>): void {
    for (const k of ['found', 'archived', 'duplicates', 'failed'] as const) this.counts[k] += d[k] ?? 0;
    this.ctx.count(d);
  }
  error(m: string): void {
    if (this.errors.length < 200) this.errors.push(m);
    this.ctx.error(m);
  }
}

/**
 * Wait for room in the intake, then spool one message and resolve after the intake commit.
 * Returns whether identical bytes had been archived before (a duplicate).
 */
export async function submitMessage(deps: ImportDeps, o: Pick<SourceOptions, 'maxQueueDepth' | 'mode' | 'user' | 'server'>, bytes: Buffer, listener: string, origin: { folder?: string; sent?: boolean; job: string }, signal: AbortSignal): Promise<'archived' | 'duplicate'> {
  while (deps.capture.depth() >= o.maxQueueDepth) await sleep(100, signal);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const duplicate = (await deps.archive.messageByIdentity(blobIdentity(sha))) !== null;
  const assign: Assignment | undefined = o.mode === 'single-user' && o.user ? {
    user: o.user, direction: origin.sent ? 'sent' : 'received', exclusive: true, reason: `${listener} job ${origin.job}`,
    ...(origin.folder ? { folder: origin.folder } : {}),
  } : undefined;
  await deps.capture.submit(bytes, {
    listener,
    envelope: { mailFrom: '', rcptTo: [] },
    session: { remoteAddress: o.server, helo: listener, user: null },
    ...(assign ? { assign } : {}),
  }, { maxBytes: deps.maxBytes });
  return duplicate ? 'duplicate' : 'archived';
}

/** The Date header of a message (first 64 KiB of the header), or null. */
export function headerDate(bytes: Buffer): Date | null {
  const head = bytes.subarray(0, 64 * 1024).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  const m = /^date:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)/im.exec(end < 0 ? head : head.slice(0, end));
  if (!m?.[1]) return null;
  const d = new Date(m[1].replace(/\r?\n/g, '').replace(/\([^)]*\)/g, '').trim());
  return Number.isNaN(d.getTime()) ? null : d;
}
