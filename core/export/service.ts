// The `exports` service: creates exports (access checked, selection checked, at most maxConcurrent at
// once), runs each as the job export-<id> (progress in `postern jobs show`), keeps its files in
// <dataDir>/exports/<id>/ with export.json beside them, serves them to the one who asked, and deletes
// them keepHours after the export ended (or on request). Every export is audited: the request (with
// who and what), the end (with the manifest's SHA-256 and counts) and each download.
// Trusts its own export.json files; validates ids; hands files out only to their creator.
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PosternError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { AuditEvent, AuditLog } from '../audit/types.ts';
import type { JobService } from '../jobs/service.ts';
import type { JobRunContext, JobRunOutcome } from '../jobs/types.ts';
import { TOKEN_PRINCIPAL } from '../compliance/access.ts';
import type { ArchiveStore } from '../storage/types.ts';
import { authorizeExport } from './access.ts';
import { MANIFEST_VERSION, describeSelection } from './manifest.ts';
import { checkSelection, selectEntries, type SelectionDeps } from './selection.ts';
import type { ExportFileInfo, ExportFormat, ExportRecord, ExportSelection } from './types.ts';
import { writeExport } from './writer.ts';

export const EXPORT_ID = /^[0-9a-f]{16}$/;
const RECORD = 'export.json';
const MAX_ERRORS = 100;
const SWEEP_MS = 10 * 60 * 1000;

export interface ExportSettings {
  /** Hours an export's files are kept after it ended. */
  keepHours: number;
  /** Exports running (or queued) at once. */
  maxConcurrent: number;
  /** Exports kept on the server at once (finished ones count until they expire or are deleted). */
  maxKept: number;
}

export interface ExportServiceDeps {
  dataDir: string;
  archive: ArchiveStore;
  jobs: JobService;
  audit: () => AuditLog | null;
  log: Logger;
  selection: SelectionDeps;
  previewBlocking: boolean;
  settings: ExportSettings;
}

/** Too many exports running or kept: try again later (HTTP 429). */
export class ExportsBusyError extends PosternError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

const jobName = (id: string): string => `export-${id}`;
const running = (r: ExportRecord): boolean => r.status === 'queued' || r.status === 'running';

export class ExportService {
  readonly dir: string;
  private readonly records = new Map<string, ExportRecord>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: ExportServiceDeps) {
    this.dir = join(deps.dataDir, 'exports');
  }

  /** Load the exports kept from earlier runs (one the server stopped during is failed), sweep, arm the sweeper. */
  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const id of await readdir(this.dir)) {
      if (!EXPORT_ID.test(id)) continue;
      let rec: ExportRecord;
      try {
        rec = JSON.parse(await readFile(join(this.dir, id, RECORD), 'utf8')) as ExportRecord;
      } catch {
        await rm(join(this.dir, id), { recursive: true, force: true });
        continue;
      }
      if (running(rec)) {
        const now = new Date();
        rec = { ...rec, status: 'failed', endedAt: now.toISOString(), expiresAt: this.expiry(now), errors: [...rec.errors, 'The server stopped while the export ran'].slice(-MAX_ERRORS) };
        await this.persist(rec);
      }
      this.records.set(id, rec);
    }
    await this.sweep();
    this.timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.deps.log.error('Export sweep failed', { err: errorMessage(err) }));
    }, SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Start an export for principal: FORBIDDEN, NOT_FOUND, INVALID_INPUT or ExportsBusyError when it cannot. */
  async create(principal: string, remote: string, selection: ExportSelection, format: ExportFormat): Promise<ExportRecord> {
    let scope: string[] | 'all';
    try {
      scope = await authorizeExport(this.deps.archive, principal, selection, this.deps.previewBlocking);
    } catch (err) {
      await this.audit({ action: 'export.request', actor: principal, target: describeSelection(selection), outcome: 'denied', remote, details: { format, selection, reason: errorMessage(err) } });
      throw err;
    }
    const checked = await checkSelection(this.deps.selection, selection, scope);
    const active = [...this.records.values()].filter(running).length;
    if (active >= this.deps.settings.maxConcurrent) {
      throw new ExportsBusyError(`${active} exports are running already (exports.maxConcurrent ${this.deps.settings.maxConcurrent}); try again when one has finished`);
    }
    if (this.records.size >= this.deps.settings.maxKept) await this.sweep();
    if (this.records.size >= this.deps.settings.maxKept) {
      throw new ExportsBusyError(`${this.records.size} exports are kept on the server (exports.maxKept); delete finished ones (DELETE /api/v1/exports/ID) or wait until they expire`);
    }
    const id = randomBytes(8).toString('hex');
    const rec: ExportRecord = {
      id, job: jobName(id), format, selection: checked, createdBy: principal, createdAt: new Date().toISOString(), remote, scope,
      status: 'queued', startedAt: null, endedAt: null, expiresAt: null, counts: { selected: 0, exported: 0, failed: 0, bytes: 0 },
      errors: [], file: null, manifest: null, auditSeq: null,
    };
    await mkdir(join(this.dir, id), { mode: 0o700 });
    this.records.set(id, rec);
    await this.persist(rec);
    try {
      // Every export is audited: no record, no export.
      await this.audit({ action: 'export.request', actor: principal, target: describeSelection(checked), outcome: 'success', remote, details: { id, format, selection: checked } }, true);
    } catch (err) {
      await this.drop(id);
      throw err;
    }
    try {
      await this.deps.jobs.create({ name: rec.job, kind: 'export', schedule: null, enabled: true, options: { id } }, principal);
      await this.deps.jobs.run(rec.job, 'manual', principal);
    } catch (err) {
      await this.finish(rec, { status: 'failed', errors: [`The export job could not start: ${errorMessage(err)}`] });
      await this.deps.jobs.remove(rec.job, 'export').catch(() => undefined);
      throw err;
    }
    this.deps.log.info('Export started', { id, by: principal, format, selection: describeSelection(checked) });
    return { ...rec };
  }

  /** The body of the `export` job kind. */
  async run(id: string, ctx: JobRunContext): Promise<JobRunOutcome> {
    const rec = this.records.get(id);
    if (!rec) throw new PosternError('NOT_FOUND', `Export "${id}" does not exist`);
    if (ctx.jobName !== rec.job) throw new PosternError('FORBIDDEN', `Export "${id}" runs only as job "${rec.job}"`);
    if (rec.status !== 'queued') throw new PosternError('CONFLICT', `Export "${id}" has run already; start a new export`);
    rec.status = 'running';
    rec.startedAt = new Date().toISOString();
    await this.persist(rec);
    const dir = join(this.dir, id);
    const selectionText = describeSelection(rec.selection);
    ctx.progress('export', `${rec.format} of ${selectionText}`);
    try {
      const result = await writeExport({
        archive: this.deps.archive, dir, format: rec.format, signal: ctx.signal,
        header: { type: 'export', version: MANIFEST_VERSION, id, format: rec.format, selection: rec.selection, createdAt: rec.createdAt, createdBy: rec.createdBy },
        entries: selectEntries(this.deps.selection, rec.selection, rec.scope, ctx.signal),
        progress: {
          selected: () => {
            rec.counts.selected++;
            ctx.count({ found: 1 });
          },
          exported: (bytes) => {
            rec.counts.exported++;
            rec.counts.bytes += bytes;
            ctx.count({ archived: 1 });
            ctx.progress('export', `${rec.counts.exported} exported, ${rec.counts.failed} failed, ${rec.counts.bytes} bytes (${rec.format} of ${selectionText})`);
          },
          failed: (where, error) => {
            rec.counts.failed++;
            ctx.count({ failed: 1 });
            ctx.error(`${where}: ${error}`);
            if (rec.errors.length < MAX_ERRORS) rec.errors.push(`${where}: ${error}`);
          },
        },
      });
      rec.counts = result.counts;
      await this.finish(rec, { status: result.counts.failed > 0 ? 'completed-with-errors' : 'succeeded', file: result.file, manifest: result.manifest });
    } catch (err) {
      const cancelled = ctx.signal.aborted;
      await this.discardFiles(id);
      await this.finish(rec, { status: cancelled ? 'cancelled' : 'failed', errors: [errorMessage(err)] });
      throw err;
    }
    return { summary: { export: id, status: rec.status, ...rec.counts, manifestSha256: rec.manifest?.sha256 ?? null, fileSha256: rec.file?.sha256 ?? null } };
  }

  /** One export, for its creator (the admin token sees every export's record, not its files). */
  get(principal: string, id: string): ExportRecord {
    const rec = EXPORT_ID.test(id) ? this.records.get(id) : undefined;
    if (!rec || (rec.createdBy !== principal && principal !== TOKEN_PRINCIPAL)) throw new PosternError('NOT_FOUND', `Export "${id}" does not exist (or has expired)`);
    return { ...rec, counts: { ...rec.counts }, errors: [...rec.errors] };
  }

  /** Exports of principal (every export for the admin token), newest first. */
  list(principal: string): ExportRecord[] {
    return [...this.records.values()].filter((r) => principal === TOKEN_PRINCIPAL || r.createdBy === principal)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt)).map((r) => this.get(principal, r.id));
  }

  /** The export file or its manifest, streamed, for the creator only; CONFLICT before it is written. */
  async open(principal: string, id: string, which: 'file' | 'manifest', remote: string): Promise<{ info: ExportFileInfo; stream: Readable }> {
    const rec = this.get(principal, id);
    if (rec.createdBy !== principal) throw new PosternError('FORBIDDEN', `Export "${id}" was made by "${rec.createdBy}"; only they may download it`);
    const info = which === 'file' ? rec.file : rec.manifest;
    if (!info) throw new PosternError('CONFLICT', `Export "${id}" is ${rec.status}; there is no file to download${running(rec) ? ' yet' : ''}`);
    const path = join(this.dir, id, info.name);
    if (!existsSync(path)) throw new PosternError('NOT_FOUND', `Export "${id}" has no file any more`);
    await this.audit({ action: 'export.download', actor: principal, target: describeSelection(rec.selection), outcome: 'success', remote, details: { id, what: which, sha256: info.sha256, size: info.size } });
    return { info, stream: createReadStream(path, { highWaterMark: 256 * 1024 }) };
  }

  /** Delete an export's files now (cancelling it when it runs); the creator or the admin token. */
  async remove(principal: string, id: string, remote: string): Promise<void> {
    const rec = this.get(principal, id);
    if (running(rec)) {
      try {
        this.deps.jobs.cancel(rec.job, principal);
      } catch {
        // not running as a job (yet, or any more)
      }
      await Promise.race([this.deps.jobs.waitFor(rec.job), new Promise((r) => setTimeout(r, 10_000).unref())]);
    }
    await this.drop(id);
    await this.audit({ action: 'export.delete', actor: principal, target: describeSelection(rec.selection), outcome: 'success', remote, details: { id } });
  }

  /** Delete expired exports and export jobs that have no export any more. */
  async sweep(now = new Date()): Promise<void> {
    for (const rec of [...this.records.values()]) {
      if (!running(rec) && rec.expiresAt !== null && Date.parse(rec.expiresAt) <= now.getTime()) {
        await this.drop(rec.id);
        this.deps.log.info('Export expired and deleted', { id: rec.id });
      }
    }
    for (const job of this.deps.jobs.list()) {
      if (job.kind !== 'export' || job.status === 'running') continue;
      const id = job.name.replace(/^export-/, '');
      if (!this.records.has(id)) await this.deps.jobs.remove(job.name, 'export').catch(() => undefined);
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  private expiry(end: Date): string {
    return new Date(end.getTime() + this.deps.settings.keepHours * 3600_000).toISOString();
  }

  private async finish(rec: ExportRecord, end: Pick<ExportRecord, 'status'> & Partial<Pick<ExportRecord, 'file' | 'manifest' | 'errors'>>): Promise<void> {
    const now = new Date();
    rec.status = end.status;
    rec.endedAt = now.toISOString();
    rec.expiresAt = this.expiry(now);
    if (end.file) rec.file = end.file;
    if (end.manifest) rec.manifest = end.manifest;
    if (end.errors) rec.errors = [...rec.errors, ...end.errors].slice(-MAX_ERRORS);
    const ok = rec.status === 'succeeded' || rec.status === 'completed-with-errors';
    const recorded = await this.audit({
      action: 'export.finish', actor: rec.createdBy, target: describeSelection(rec.selection), outcome: ok ? 'success' : 'failure', remote: rec.remote,
      details: {
        id: rec.id, format: rec.format, selection: rec.selection, status: rec.status, ...rec.counts,
        manifestSha256: rec.manifest?.sha256 ?? null, manifestSize: rec.manifest?.size ?? null, fileSha256: rec.file?.sha256 ?? null, fileSize: rec.file?.size ?? null,
      },
    });
    rec.auditSeq = recorded;
    if (ok && recorded === null && this.deps.audit()) {
      // The archive must be able to prove what it handed over: without the record, nothing is handed over.
      rec.status = 'failed';
      rec.errors = [...rec.errors, 'The audit record of the export could not be written; its files were deleted'].slice(-MAX_ERRORS);
      rec.file = null;
      rec.manifest = null;
      await this.discardFiles(rec.id);
    }
    await this.persist(rec);
    this.deps.log.info('Export finished', { id: rec.id, status: rec.status, ...rec.counts, manifestSha256: rec.manifest?.sha256 ?? null });
  }

  /** Record an export event (category access); its sequence number, or null when it could not be written (thrown when required). */
  private async audit(e: Omit<AuditEvent, 'category'>, required = false): Promise<number | null> {
    const log = this.deps.audit();
    if (!log) return null;
    try {
      return (await log.record({ category: 'access', ...e })).seq;
    } catch (err) {
      this.deps.log.error('Audit record of an export failed', { action: e.action, err: errorMessage(err) });
      if (required) throw new PosternError('UNAVAILABLE', `The audit log cannot record the export: ${errorMessage(err)}`);
      return null;
    }
  }

  private async persist(rec: ExportRecord): Promise<void> {
    const file = join(this.dir, rec.id, RECORD);
    await writeFile(`${file}.tmp`, JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }

  private async discardFiles(id: string): Promise<void> {
    const dir = join(this.dir, id);
    for (const f of await readdir(dir).catch(() => [] as string[])) if (f !== RECORD) await rm(join(dir, f), { force: true, recursive: true });
  }

  private async drop(id: string): Promise<void> {
    const rec = this.records.get(id);
    this.records.delete(id);
    await rm(join(this.dir, id), { recursive: true, force: true });
    if (!rec) return;
    // A run of the job may be under way (a refused re-run through the jobs API): let it end first.
    await Promise.race([this.deps.jobs.waitFor(rec.job), new Promise((r) => setTimeout(r, 10_000).unref())]);
    await this.deps.jobs.remove(rec.job, 'export').catch(() => undefined);
  }
}
