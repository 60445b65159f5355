// Runs integrity verification for the API, the CLI and the job scheduler: one run at a time (a second
// caller joins the run in progress), the last report kept for `GET /api/v1/verify`, the result in metrics
// (postern_verify_problems{kind}, last-run time and duration) and in the audit log. Trusts verifyArchive;
// hands on VerifyReports.
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { ArchiveStore } from '../storage/types.ts';
import type { AuditLog } from '../audit/types.ts';
import { VERIFY_PROBLEM_KINDS, verifyArchive, type VerifyOptions, type VerifyReport } from './verify.ts';

export interface VerifyServiceDeps {
  archive: ArchiveStore;
  metrics: Metrics;
  log: Logger;
  audit: AuditLog;
  /** Acknowledged writes the databases found lost (reported as 'lost-writes' problems). */
  writeLosses?: () => NonNullable<VerifyOptions['writeLosses']>;
}

export class VerifyService {
  private current: Promise<VerifyReport> | null = null;
  private lastReport: VerifyReport | null = null;
  private lastFailure: string | null = null;
  private readonly stopping = new AbortController();

  constructor(private readonly deps: VerifyServiceDeps) {
    for (const kind of VERIFY_PROBLEM_KINDS) deps.metrics.verifyProblems.set({ kind }, 0);
    deps.metrics.verifyLastRun.set(0);
  }

  get running(): boolean {
    return this.current !== null;
  }

  last(): VerifyReport | null {
    return this.lastReport;
  }

  /** Why the last run failed (an error, not problems found), or null. */
  lastError(): string | null {
    return this.lastFailure;
  }

  /** Verify the archive, or join the run in progress. `actor` is who asked (audit). */
  run(actor: string, options: VerifyOptions = {}): Promise<VerifyReport> {
    const signal = options.signal ? AbortSignal.any([options.signal, this.stopping.signal]) : this.stopping.signal;
    this.current ??= this.runNow(actor, { ...options, signal }).finally(() => {
      this.current = null;
    });
    return this.current;
  }

  /** Stops a run in progress at its next item (shutdown) and waits for it. */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.current?.catch(() => undefined);
  }

  private async runNow(actor: string, options: VerifyOptions): Promise<VerifyReport> {
    const { metrics, log } = this.deps;
    const started = Date.now();
    log.info('Integrity verification started', { actor });
    let report: VerifyReport;
    try {
      report = await verifyArchive(this.deps.archive, { ...options, writeLosses: this.deps.writeLosses?.() ?? [] });
    } catch (err) {
      this.lastFailure = errorMessage(err);
      log.error('Integrity verification failed', { err: errorMessage(err) });
      await this.audit(actor, 'failure', { error: errorMessage(err) });
      throw err;
    }
    this.lastReport = report;
    this.lastFailure = null;
    if (!report.cancelled) {
      for (const kind of VERIFY_PROBLEM_KINDS) metrics.verifyProblems.set({ kind }, report.problems[kind]);
      metrics.verifyLastRun.set(Math.floor(Date.now() / 1000));
      metrics.verifyDuration.set((Date.now() - started) / 1000);
      metrics.verifyCheckedBytes.set(report.checked.blobBytes);
    }
    const found = Object.fromEntries(Object.entries(report.problems).filter(([, n]) => n > 0));
    (report.ok ? log.info : log.warn).call(log, report.ok ? 'Integrity verification found no problems' : 'Integrity verification found problems', {
      ...report.checked, problems: report.total, cancelled: report.cancelled, ...found,
    });
    await this.audit(actor, report.ok ? 'success' : 'failure', { checked: report.checked, problems: found, cancelled: report.cancelled });
    return report;
  }

  private async audit(actor: string, outcome: 'success' | 'failure', details: Record<string, unknown>): Promise<void> {
    try {
      await this.deps.audit.record({ category: 'admin', action: 'verify.run', actor, target: 'archive', outcome, details });
    } catch (err) {
      this.deps.log.error('Audit record of a verification failed', { err: errorMessage(err) });
    }
  }
}

/** The report in the shape of a job result summary and a short text (CLI, logs). */
export function summarizeReport(r: VerifyReport, maxFolders = 100): Record<string, unknown> {
  return {
    ok: r.ok,
    checked: r.checked,
    problems: Object.fromEntries(Object.entries(r.problems).filter(([, n]) => n > 0)),
    total: r.total,
    byFolder: r.byFolder.slice(0, maxFolders),
    cancelled: r.cancelled,
  };
}
