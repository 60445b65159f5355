// The job contract: kinds of work that run on a schedule or on demand (imports, purge, verify).
// A kind registers once (with a zod schema for its definition); the scheduler owns timing, status,
// cancellation and the results history; a run reports progress and counts through its context.
import type { z } from 'zod';

export type JobStatus = 'scheduled' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'completed-with-errors';

export interface JobCounts {
  found: number;
  archived: number;
  duplicates: number;
  failed: number;
}

export interface JobRunContext {
  jobName: string;
  /** Aborted when the job is cancelled or the server shuts down; stop at the next safe point. */
  signal: AbortSignal;
  /** The command currently in progress and the latest detail, shown by `postern jobs show`. */
  progress(command: string, detail?: string): void;
  /** Add to the run's counts (found/archived/duplicates/failed). */
  count(delta: Partial<JobCounts>): void;
  /** Record one failure (kept, bounded, in the run's result). */
  error(message: string): void;
  /** Per-job persistent state (e.g. import checkpoints), JSON-serialisable. */
  loadState<T>(): Promise<T | null>;
  saveState(state: unknown): Promise<void>;
}

export interface JobRunOutcome {
  /** Extra result fields shown with the run (e.g. purge: deleted entries, skipped held). */
  summary?: Record<string, unknown>;
}

export interface JobKind<D = unknown> extends JobKindExtras<D> {
  kind: string;
  description: string;
  /** Validates a job definition's `options` (from config or the API). */
  schema: z.ZodType<D>;
  run(options: D, ctx: JobRunContext): Promise<JobRunOutcome | void>;
}

export interface JobRegistry {
  /** Add a kind of job; names are unique. Call during boot (plugin register or core wiring). */
  registerKind<D>(kind: JobKind<D>): void;
}

// ---- Extensions (compatible: every new member is optional for kinds) ------------------------------

/** A kind may name option keys that hold secrets: stored encrypted, redacted when shown, never logged. */
export interface JobKindExtras<D = unknown> {
  secrets?: readonly string[];
  /**
   * Option keys that name something on the server host (a file, an environment variable). Only the admin
   * token (or the configuration file) may set them: through a password-authenticated administrator they
   * would make the server read any file it can and send it to a host of the caller's choosing.
   */
  hostLocal?: readonly string[];
  /**
   * Options that say where the secrets go (server, port, user name, TLS). An update that changes any of
   * them keeps no stored secret: the caller gives it again, so a changed definition cannot send a stored
   * password to another host.
   */
  secretScope?: readonly string[];
  /** A dry run: what a run would do (e.g. folders and message counts), without changing anything. */
  list?(options: D, ctx: JobListContext): Promise<unknown>;
}

export interface JobListContext {
  jobName: string;
  signal: AbortSignal;
}

/** One job as stored: its definition plus the status fields shown by `postern jobs show`. */
export interface JobRecord {
  name: string;
  kind: string;
  /** Cron expression, interval ("15m", "1h", "30s", "1d") or null for on demand only. */
  schedule: string | null;
  options: Record<string, unknown>;
  enabled: boolean;
  /** "config" jobs come from the configuration file; "api" jobs were created through the API/CLI. */
  source: 'config' | 'api';
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  updatedBy: string;
  status: JobStatus;
  /** The command in progress and the latest detail (progress text) of the current or last run. */
  command: string;
  detail: string;
  /** Count of successful submissions over all runs. */
  sequence: number;
  lastRunAt: string | null;
  lastRunId: string | null;
  nextRunAt: string | null;
  /** A definition change received while the job ran; applied when the run ends. */
  pending: JobDefinition | null;
}

export interface JobDefinition {
  name: string;
  kind: string;
  schedule: string | null;
  options: Record<string, unknown>;
  enabled: boolean;
}

/** One finished run in the results history. */
export interface JobResult {
  id: string;
  job: string;
  kind: string;
  startedAt: string;
  endedAt: string;
  status: Exclude<JobStatus, 'scheduled' | 'running'>;
  trigger: 'schedule' | 'manual' | 'boot';
  counts: JobCounts;
  errors: string[];
  summary: Record<string, unknown>;
}
