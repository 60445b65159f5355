// The `jobs` service: registry of job kinds, job definitions (from the configuration and the admin
// API), timers for schedules, one run at a time per job with cancellation, live status, and the
// results history. Trusts registered kinds to honour their AbortSignal; validates every definition
// with the kind's schema; hands results to the job store and metrics to Prometheus.
import { randomUUID } from 'node:crypto';
import { PosternError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { JobStore } from '../storage/types.ts';
import { nextRun, parseSchedule } from './schedule.ts';
import { SecretBox, redactOptions } from './secrets.ts';
import type {
  JobCounts, JobDefinition, JobKind, JobRecord, JobRegistry, JobResult, JobRunContext, JobStatus,
} from './types.ts';

export const JOB_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const MAX_ERRORS = 200;
const MAX_DETAIL = 500;
const MAX_TIMER_MS = 2 ** 31 - 1;
export const MAX_JOBS = 1000;

type AnyKind = JobKind<unknown>;

interface Live {
  controller: AbortController;
  cancelled: boolean;
  done: Promise<void>;
}

export interface JobServiceDeps {
  store: JobStore;
  log: Logger;
  metrics: Metrics;
  secrets: SecretBox;
  /** Jobs the API may define (configuration jobs count too); default MAX_JOBS. */
  maxJobs?: number;
  /**
   * A shared archive's arbiter of scheduled runs: true for the one node that may run this slot (the job
   * and the instant its schedule named). Without it every scheduled slot runs here.
   */
  claimSlot?: (job: string, slot: string) => Promise<boolean>;
}

export class JobService implements JobRegistry {
  private readonly kinds = new Map<string, AnyKind>();
  private readonly moduleJobs: JobDefinition[] = [];
  private readonly records = new Map<string, JobRecord>();
  private readonly live = new Map<string, Live>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private started = false;
  private stopping = false;

  constructor(private readonly deps: JobServiceDeps) {}

  registerKind<D>(kind: JobKind<D>): void {
    if (this.kinds.has(kind.kind)) throw new PosternError('PLUGIN_CONFLICT', `Job kind "${kind.kind}" is registered twice`);
    this.kinds.set(kind.kind, kind as unknown as AnyKind);
  }

  listKinds(): Array<{ kind: string; description: string; list: boolean }> {
    return [...this.kinds.values()].map((k) => ({ kind: k.kind, description: k.description, list: k.list !== undefined }));
  }

  /**
   * A job a module defines from its own settings (e.g. the search plugin's nightly reconcile), applied
   * at start like a configuration job; one in the configuration's `jobs` with the same name wins.
   */
  defineConfigJob(def: JobDefinition): void {
    if (this.started) throw new PosternError('CONFLICT', `Job "${def.name}" must be defined before the scheduler starts`);
    this.moduleJobs.push(def);
  }

  /** Load stored jobs, apply the configuration's definitions, mark runs a crash interrupted, arm timers. */
  async start(fromConfig: readonly JobDefinition[]): Promise<void> {
    const configJobs = [...fromConfig, ...this.moduleJobs.filter((d) => !fromConfig.some((c) => c.name === d.name))];
    const now = new Date().toISOString();
    for (const r of await this.deps.store.listJobs()) this.records.set(r.name, r);
    for (const def of configJobs) {
      try {
        this.validate(def);
      } catch (err) {
        throw new PosternError('CONFIG_INVALID', `jobs: "${def.name}": ${errorMessage(err)}`);
      }
    }
    const names = new Set(configJobs.map((d) => d.name));
    for (const r of [...this.records.values()]) {
      if (r.source === 'config' && !names.has(r.name)) {
        this.records.delete(r.name);
        await this.deps.store.deleteJob(r.name);
      }
    }
    for (const def of configJobs) {
      const prev = this.records.get(def.name);
      const options = this.deps.secrets.sealOptions(def.options, this.kindOf(def.kind).secrets ?? []);
      const same = prev && prev.kind === def.kind && prev.schedule === def.schedule && prev.enabled === def.enabled
        && JSON.stringify(this.openOptions(prev)) === JSON.stringify(def.options);
      const rec: JobRecord = prev
        ? { ...prev, ...(same ? {} : { kind: def.kind, schedule: def.schedule, enabled: def.enabled, options, updatedAt: now, updatedBy: 'config' }), source: 'config' }
        : this.newRecord(def, options, 'config', 'config', now);
      this.records.set(def.name, rec);
      await this.deps.store.putJob(rec);
    }
    for (const r of this.records.values()) {
      if (r.status === 'running') {
        await this.finishInterrupted(r);
      }
    }
    this.started = true;
    for (const r of this.records.values()) await this.arm(r.name);
  }

  /** Cancel running jobs and wait for them (bounded), stop timers. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const l of this.live.values()) l.controller.abort(new PosternError('SHUTTING_DOWN', 'The server is shutting down'));
    const all = Promise.all([...this.live.values()].map((l) => l.done));
    await Promise.race([all, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  list(): JobRecord[] {
    return [...this.records.values()].sort((a, b) => a.name.localeCompare(b.name)).map((r) => this.shown(r));
  }

  show(name: string): JobRecord {
    return this.shown(this.get(name));
  }

  async create(def: JobDefinition, by: string): Promise<JobRecord> {
    if (this.records.has(def.name)) throw new PosternError('CONFLICT', `Job "${def.name}" already exists`);
    const max = this.deps.maxJobs ?? MAX_JOBS;
    if (this.records.size >= max) throw new PosternError('INVALID_INPUT', `There can be at most ${max} jobs; delete one first`);
    this.validate(def);
    const rec = this.newRecord(def, this.deps.secrets.sealOptions(def.options, this.kindOf(def.kind).secrets ?? []), 'api', by, new Date().toISOString());
    this.records.set(def.name, rec);
    await this.deps.store.putJob(rec);
    await this.arm(def.name);
    this.deps.log.info('Job created', { job: def.name, kind: def.kind, by });
    return this.shown(this.get(def.name));
  }

  /**
   * Change a job; options given replace the old ones. Secrets left out or given as "(secret)" keep their
   * stored value, unless an option of the kind's secretScope (where the secret is sent) changes.
   */
  async update(name: string, change: Partial<Omit<JobDefinition, 'name' | 'kind'>>, by: string): Promise<JobRecord> {
    const rec = this.get(name);
    if (rec.source === 'config') throw new PosternError('CONFLICT', `Job "${name}" is defined in the configuration file; change it there`);
    const kind = this.kindOf(rec.kind);
    const secretNames = kind.secrets ?? [];
    const base = rec.pending ?? { name, kind: rec.kind, schedule: rec.schedule, options: rec.options, enabled: rec.enabled };
    let options = base.options;
    if (change.options) {
      options = { ...change.options };
      const next = options;
      const moved = (kind.secretScope ?? []).some((k) => JSON.stringify(next[k]) !== JSON.stringify(base.options[k]));
      for (const s of secretNames) if (options[s] === undefined || options[s] === '(secret)') {
        if (base.options[s] !== undefined && !moved) options[s] = base.options[s];
        else delete options[s];
      }
    }
    const def: JobDefinition = {
      name, kind: rec.kind, options,
      schedule: change.schedule !== undefined ? change.schedule : base.schedule,
      enabled: change.enabled ?? base.enabled,
    };
    this.validate({ ...def, options: this.deps.secrets.openOptions(def.options, secretNames) });
    def.options = this.deps.secrets.sealOptions(def.options, secretNames);
    const now = new Date().toISOString();
    const next: JobRecord = this.live.has(name)
      ? { ...rec, pending: def, updatedAt: now, updatedBy: by }
      : { ...rec, schedule: def.schedule, options: def.options, enabled: def.enabled, pending: null, updatedAt: now, updatedBy: by };
    this.records.set(name, next);
    await this.deps.store.putJob(next);
    if (!this.live.has(name)) await this.arm(name);
    this.deps.log.info('Job changed', { job: name, by, deferred: this.live.has(name) });
    return this.shown(this.get(name));
  }

  async remove(name: string, by: string): Promise<void> {
    const rec = this.get(name);
    if (rec.source === 'config') throw new PosternError('CONFLICT', `Job "${name}" is defined in the configuration file; remove it there`);
    if (this.live.has(name)) throw new PosternError('CONFLICT', `Job "${name}" is running; cancel it first`);
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
    this.records.delete(name);
    await this.deps.store.deleteJob(name);
    this.deps.log.info('Job removed', { job: name, by });
  }

  /** Start a run now; resolves when it has started (the run continues in the background). */
  async run(name: string, trigger: JobResult['trigger'], by: string): Promise<JobRecord> {
    if (!this.started || this.stopping) throw new PosternError('UNAVAILABLE', 'Jobs are not running (server starting or stopping)');
    const rec = this.get(name);
    if (this.live.has(name)) throw new PosternError('CONFLICT', `Job "${name}" is already running`);
    const kind = this.kindOf(rec.kind);
    const options = kind.schema.parse(this.openOptions(rec));
    const startedAt = new Date();
    const id = randomUUID();
    const counts: JobCounts = { found: 0, archived: 0, duplicates: 0, failed: 0 };
    const errors: string[] = [];
    let droppedErrors = 0;
    const controller = new AbortController();
    const running: JobRecord = {
      ...rec, status: 'running', command: 'starting', detail: `${trigger} by ${by}`, lastRunAt: startedAt.toISOString(), lastRunId: id, nextRunAt: null,
    };
    this.records.set(name, running);
    await this.deps.store.putJob(running);
    const { metrics, log } = this.deps;
    const ctx: JobRunContext = {
      jobName: name,
      signal: controller.signal,
      progress: (command, detail) => {
        const r = this.records.get(name);
        if (r) this.records.set(name, { ...r, command: command.slice(0, MAX_DETAIL), detail: (detail ?? '').slice(0, MAX_DETAIL) });
      },
      count: (delta) => {
        for (const k of ['found', 'archived', 'duplicates', 'failed'] as const) {
          const n = delta[k] ?? 0;
          if (n === 0) continue;
          counts[k] += n;
          metrics.jobMessages.inc({ kind: rec.kind, result: k }, n);
        }
        const submitted = (delta.archived ?? 0) + (delta.duplicates ?? 0);
        const r = this.records.get(name);
        if (submitted > 0 && r) this.records.set(name, { ...r, sequence: r.sequence + submitted });
      },
      error: (message) => {
        if (errors.length < MAX_ERRORS) errors.push(message.slice(0, 1000));
        else droppedErrors++;
      },
      loadState: async <T>() => (await this.deps.store.getState(name)) as T | null,
      saveState: (state) => this.deps.store.putState(name, state),
    };
    const live: Live = { controller, cancelled: false, done: Promise.resolve() };
    this.live.set(name, live);
    log.info('Job started', { job: name, kind: rec.kind, trigger, by, run: id });
    live.done = (async () => {
      let status: JobResult['status'];
      let summary: Record<string, unknown> = {};
      try {
        const outcome = await kind.run(options, ctx);
        summary = outcome?.summary ?? {};
        status = live.cancelled ? 'cancelled' : counts.failed > 0 || errors.length > 0 ? 'completed-with-errors' : 'succeeded';
      } catch (err) {
        if (controller.signal.aborted) status = live.cancelled ? 'cancelled' : 'failed';
        else status = 'failed';
        errors.push(errorMessage(err).slice(0, 1000));
      }
      if (controller.signal.aborted && !live.cancelled && status === 'succeeded') status = 'failed';
      if (droppedErrors > 0) errors.push(`… and ${droppedErrors} more errors`);
      const result: JobResult = {
        id, job: name, kind: rec.kind, startedAt: startedAt.toISOString(), endedAt: new Date().toISOString(),
        status, trigger, counts, errors, summary,
      };
      metrics.jobRuns.inc({ kind: rec.kind, outcome: status });
      log.info('Job finished', { job: name, kind: rec.kind, run: id, status, ...counts });
      try {
        await this.deps.store.addResult(result);
        await this.finishRecord(name, status);
      } catch (err) {
        log.error('Job result could not be stored', { job: name, err: errorMessage(err) });
      }
      this.live.delete(name);
      if (!this.stopping) await this.arm(name).catch((err: unknown) => log.error('Job could not be scheduled', { job: name, err: errorMessage(err) }));
    })();
    return this.shown(running);
  }

  cancel(name: string, by: string): JobRecord {
    const rec = this.get(name);
    const l = this.live.get(name);
    if (!l) throw new PosternError('CONFLICT', `Job "${name}" is not running`);
    l.cancelled = true;
    l.controller.abort(new PosternError('SHUTTING_DOWN', `Job "${name}" was cancelled by ${by}`));
    this.deps.log.info('Job cancel requested', { job: name, by });
    return this.shown(rec);
  }

  /** Wait for a running job to finish (tests, `jobs run --wait`). */
  async waitFor(name: string): Promise<void> {
    await this.live.get(name)?.done;
  }

  /** Option keys of a kind that only the admin token may set (JobKind.hostLocal). */
  hostLocalOptions(kind: string): readonly string[] {
    return this.kindOf(kind).hostLocal ?? [];
  }

  /** A dry run: what the job would do now, without changing anything. */
  async dryList(name: string): Promise<unknown> {
    const rec = this.get(name);
    const kind = this.kindOf(rec.kind);
    if (!kind.list) throw new PosternError('INVALID_INPUT', `Job kind "${rec.kind}" has no list step`);
    const options = kind.schema.parse(this.openOptions(rec));
    return kind.list(options, { jobName: name, signal: AbortSignal.timeout(120_000) });
  }

  /** A dry list for a definition that is not stored (`postern import imap --list`). */
  async adhocList(kindName: string, options: Record<string, unknown>): Promise<unknown> {
    const kind = this.kindOf(kindName);
    if (!kind.list) throw new PosternError('INVALID_INPUT', `Job kind "${kindName}" has no list step`);
    const r = kind.schema.safeParse(options);
    if (!r.success) throw new PosternError('INVALID_INPUT', `Options: ${r.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ')}`);
    return kind.list(r.data, { jobName: '(ad hoc)', signal: AbortSignal.timeout(120_000) });
  }

  results(query: { from?: string; to?: string; job?: string; limit?: number }): Promise<JobResult[]> {
    return this.deps.store.listResults(query);
  }

  // ---- internals -------------------------------------------------------------------------------

  private get(name: string): JobRecord {
    const r = this.records.get(name);
    if (!r) throw new PosternError('NOT_FOUND', `Job "${name}" does not exist`);
    return r;
  }

  private kindOf(kind: string): AnyKind {
    const k = this.kinds.get(kind);
    if (!k) throw new PosternError('INVALID_INPUT', `Job kind "${kind}" is not known (known: ${[...this.kinds.keys()].join(', ') || 'none'})`);
    return k;
  }

  private openOptions(r: Pick<JobRecord, 'kind' | 'options'>): Record<string, unknown> {
    return this.deps.secrets.openOptions(r.options, this.kindOf(r.kind).secrets ?? []);
  }

  private validate(def: JobDefinition): void {
    if (!JOB_NAME.test(def.name)) throw new PosternError('INVALID_INPUT', `Job name "${def.name}" must be lower-case letters, digits, ".", "_" or "-"`);
    const kind = this.kindOf(def.kind);
    if (def.schedule !== null) parseSchedule(def.schedule);
    const r = kind.schema.safeParse(def.options);
    if (!r.success) {
      throw new PosternError('INVALID_INPUT', `Options of job "${def.name}": ${r.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ')}`);
    }
  }

  private newRecord(def: JobDefinition, options: Record<string, unknown>, source: JobRecord['source'], by: string, now: string): JobRecord {
    return {
      name: def.name, kind: def.kind, schedule: def.schedule, options, enabled: def.enabled, source,
      createdAt: now, createdBy: by, updatedAt: now, updatedBy: by,
      status: 'scheduled', command: '', detail: '', sequence: 0, lastRunAt: null, lastRunId: null, nextRunAt: null, pending: null,
    };
  }

  private shown(r: JobRecord): JobRecord {
    const names = this.kinds.get(r.kind)?.secrets ?? [];
    return {
      ...r,
      options: redactOptions(r.options, names),
      pending: r.pending ? { ...r.pending, options: redactOptions(r.pending.options, names) } : null,
    };
  }

  private async finishRecord(name: string, status: JobStatus): Promise<void> {
    const r = this.records.get(name);
    if (!r) return;
    const p = r.pending;
    const next: JobRecord = p
      ? { ...r, status, schedule: p.schedule, options: p.options, enabled: p.enabled, pending: null }
      : { ...r, status };
    this.records.set(name, next);
    await this.deps.store.putJob(next);
  }

  private async finishInterrupted(r: JobRecord): Promise<void> {
    const now = new Date().toISOString();
    const result: JobResult = {
      id: r.lastRunId ?? randomUUID(), job: r.name, kind: r.kind, startedAt: r.lastRunAt ?? now, endedAt: now, status: 'failed',
      trigger: 'schedule', counts: { found: 0, archived: 0, duplicates: 0, failed: 0 },
      errors: ['The server stopped while the job ran; the next run resumes from its checkpoint'], summary: {},
    };
    await this.deps.store.addResult(result);
    this.records.set(r.name, { ...r, status: 'failed', detail: result.errors[0] ?? '' });
    await this.finishRecord(r.name, 'failed');
  }

  /** (Re)arm the timer of a job from its schedule. */
  /** arm() from a timer: nobody awaits it, so a failure (the job store cannot be written) is logged here. */
  private rearm(name: string): void {
    this.arm(name).catch((err: unknown) => this.deps.log.error('Job could not be scheduled', { job: name, err: errorMessage(err) }));
  }

  /** A scheduled slot: run it, unless another node of a shared archive claimed it first. */
  private async runSlot(name: string, at: Date): Promise<void> {
    if (this.deps.claimSlot && !(await this.deps.claimSlot(name, at.toISOString()))) {
      this.deps.log.info('Scheduled run taken by another node', { job: name, slot: at.toISOString() });
      // That node's run moves lastRunAt; the next slot is computed from the stored record.
      // Counted as run here too (in memory), so this slot is not offered again while that record lags.
      const stored = (await this.deps.store.getJob(name)) ?? this.records.get(name);
      const slot = at.toISOString();
      if (stored && this.records.has(name)) this.records.set(name, { ...stored, lastRunAt: stored.lastRunAt !== null && stored.lastRunAt > slot ? stored.lastRunAt : slot });
      this.rearm(name);
      return;
    }
    await this.run(name, 'schedule', 'scheduler');
  }

  private async arm(name: string): Promise<void> {
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
    const r = this.records.get(name);
    if (!r || this.stopping) return;
    let at: Date | null = null;
    if (r.enabled && r.schedule !== null) {
      at = nextRun(parseSchedule(r.schedule), r.lastRunAt ? new Date(r.lastRunAt) : null, new Date());
    }
    const nextRunAt = at ? at.toISOString() : null;
    if (r.nextRunAt !== nextRunAt) {
      const next = { ...r, nextRunAt };
      this.records.set(name, next);
      await this.deps.store.putJob(next);
    }
    if (!at) return;
    const delay = Math.max(0, at.getTime() - Date.now());
    const timer = setTimeout(() => {
      this.timers.delete(name);
      if (delay > MAX_TIMER_MS || Date.now() < at.getTime()) {
        this.rearm(name);
        return;
      }
      void this.runSlot(name, at).catch((err: unknown) => {
        this.deps.log.warn('Scheduled job did not start', { job: name, err: errorMessage(err) });
        this.rearm(name);
      });
    }, Math.min(delay, MAX_TIMER_MS));
    timer.unref();
    this.timers.set(name, timer);
  }
}
