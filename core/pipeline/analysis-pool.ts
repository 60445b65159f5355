// The analysis pool: worker threads that run message-units.ts (header parsing, journal unwrapping,
// the plugins' analyzers) on untrusted bytes, each request under a deadline and each worker under a
// heap limit. A request that runs past its deadline or out of memory ends its worker (a new one
// starts) and fails with MESSAGE_BUDGET, so one message can never hang or exhaust the gateway.
// Requests queue in the pool (bounded by the queue manager's active window); each worker is handed up
// to PIPELINE_DEPTH of them at once and works through them in order, so it goes from one message to the
// next without waiting for the main thread (a cross-thread wake-up per message costs more than a small
// message's analysis on a busy machine). The deadline runs for the request the worker is on. Requests
// that may run long (a spooled message, one plugin's analyzer on demand such as text extraction) go
// only to an idle worker and nothing queues behind them: the archiver commits in order, so a message
// waiting behind one of them would hold up every commit after it.
// Trusts the workers' replies to be shaped as WorkerReply; hands on AnalysisResult.
import { Worker } from 'node:worker_threads';
import { PosternError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { AnalysisRequest, AnalysisResult, AnalysisWorkerData, AnalyzerOutcome, AnalyzerSpec, WorkerReply } from './analysis-types.ts';
import type { BlobCodecOptions } from '../storage/blob-codec.ts';

export interface AnalysisPoolOptions {
  workers: number;
  timeoutMs: number;
  memoryMb: number;
  /** Called for each request that exceeded its budget (metrics). */
  onBudgetExceeded?: (reason: 'timeout' | 'memory' | 'crash') => void;
  /** The archive's blob codec: the workers compress units that fit one chunk (AnalyzedUnit.packed). */
  codec?: BlobCodecOptions;
}

interface Job {
  request: Omit<AnalysisRequest, 'id'>;
  resolve: (r: AnalysisResult | AnalyzerOutcome) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Requests handed to this worker, in the order it works through them; the first is the one it is on. */
  jobs: Array<Job & { id: number }>;
  /** The deadline of jobs[0]. */
  timer: NodeJS.Timeout | null;
  /** The request whose deadline passed (ending 'timeout'). */
  timedOut?: number;
  /** Why this worker is being ended (set before terminate()). */
  ending: 'timeout' | 'memory' | 'crash' | 'close' | null;
}

const WORKER_URL = new URL('./analysis-worker.js', import.meta.url);
/** A worker that cannot start (a broken analyzer module) is retried at most this often. */
const RESTART_DELAY_MS = 1000;
/** Requests handed to one worker at a time (each is a copy of a message of at most the inline limit, or a spool path). */
export const PIPELINE_DEPTH = 4;

export class AnalysisPool {
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private startupError: string | null = null;

  constructor(private readonly specs: AnalyzerSpec[], private readonly options: AnalysisPoolOptions, private readonly log: Logger) {
    for (let i = 0; i < Math.max(1, options.workers); i++) this.spawn();
  }

  /** Analyze one intake entry. Rejects with MESSAGE_BUDGET when it exceeds the deadline or the heap limit. */
  analyze(request: Omit<AnalysisRequest, 'id' | 'only'>): Promise<AnalysisResult> {
    return this.submit(request) as Promise<AnalysisResult>;
  }

  /**
   * One plugin's analyzer on a stored message (data computed after archiving, e.g. for a message
   * archived before the plugin was enabled), under the same budget. Rejects with MESSAGE_BUDGET, or
   * INVALID_INPUT when the analyzer failed.
   */
  async analyzeWith(plugin: string, bytes: Buffer): Promise<unknown> {
    const outcome = (await this.submit({ source: { bytes }, size: bytes.length, only: plugin })) as AnalyzerOutcome;
    if (!outcome.ok) throw new PosternError('INVALID_INPUT', `Analyzer of plugin "${plugin}" failed: ${outcome.error}`);
    return outcome.value;
  }

  private submit(request: Omit<AnalysisRequest, 'id'>): Promise<AnalysisResult | AnalyzerOutcome> {
    if (this.closed) return Promise.reject(new PosternError('SHUTTING_DOWN', 'The analysis pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new PosternError('SHUTTING_DOWN', 'The analysis pool is closed'));
    await Promise.all([...this.slots].map((s) => {
      s.ending = 'close';
      return s.worker.terminate();
    }));
    this.slots.clear();
  }

  private spawn(): void {
    if (this.closed) return;
    const worker = new Worker(WORKER_URL, {
      workerData: { specs: this.specs, codec: this.options.codec ?? null } satisfies AnalysisWorkerData,
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: this.options.memoryMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(8, Math.floor(this.options.memoryMb / 8))) },
    });
    worker.unref(); // an idle worker does not keep the process alive; a busy one does (dispatch)
    const slot: Slot = { worker, ready: false, jobs: [], timer: null, ending: null };
    this.slots.add(slot);
    worker.on('message', (reply: WorkerReply) => this.onReply(slot, reply));
    worker.on('error', (err: Error & { code?: string }) => {
      if (slot.ending === null) slot.ending = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : 'crash';
      this.log.warn('Analysis worker failed', { reason: slot.ending, err: err.message });
    });
    worker.on('exit', () => this.onExit(slot));
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    if (reply.type === 'ready') {
      slot.ready = true;
      this.startupError = null;
      this.dispatch();
      return;
    }
    if (reply.type === 'startup-failed') {
      this.startupError = reply.error;
      this.log.error('Analysis worker could not start', { err: reply.error });
      // Nothing can be analysed until a worker starts: what waits fails now (and is retried later).
      for (const job of this.queue.splice(0)) job.reject(new PosternError('UNAVAILABLE', `No analysis worker could start: ${reply.error}`));
      slot.ending = 'crash';
      slot.worker.terminate().catch(() => undefined);
      return;
    }
    const at = slot.jobs.findIndex((j) => j.id === reply.id);
    if (at < 0) return;
    const [job] = slot.jobs.splice(at, 1) as [Job & { id: number }];
    if (at === 0) this.startDeadline(slot);
    if (slot.jobs.length === 0) slot.worker.unref();
    if (reply.type === 'done') job.resolve(reply.result);
    else if (reply.type === 'done-one') job.resolve(reply.outcome);
    else job.reject(new PosternError(reply.corrupt ? 'INTAKE_CORRUPT' : 'INVALID_INPUT', `Analysing the message failed: ${reply.error}`));
    this.dispatch();
  }

  private onExit(slot: Slot): void {
    this.slots.delete(slot);
    if (slot.timer) clearTimeout(slot.timer);
    const jobs = slot.jobs.splice(0);
    // The request charged with the worker's end: the one whose deadline passed (none if its reply came
    // in after all), or for a heap or crash end the one it was on (replies it posted before ending are
    // delivered before 'exit', so that is jobs[0]). The others go back to the front of the queue, in order.
    const culprit = slot.ending === 'close' ? undefined : slot.ending === 'timeout' ? jobs.find((j) => j.id === slot.timedOut) : jobs[0];
    const others = jobs.filter((j) => j !== culprit);
    if (this.closed) for (const j of others) j.reject(new PosternError('SHUTTING_DOWN', 'The analysis pool is closed'));
    else this.queue.unshift(...others);
    if (culprit) {
      const reason = slot.ending === 'timeout' || slot.ending === 'memory' ? slot.ending : 'crash';
      this.options.onBudgetExceeded?.(reason);
      culprit.reject(new PosternError('MESSAGE_BUDGET', budgetText(reason, this.options)));
    }
    if (this.closed) return;
    this.dispatch();
    const delay = this.startupError ? RESTART_DELAY_MS : 0;
    const t = setTimeout(() => this.spawn(), delay);
    // Requests waiting for the new worker keep the process alive, as a busy worker does.
    if (this.queue.length === 0) t.unref();
  }

  /**
   * Hands queued requests to the ready workers in queue order, level by level (every worker gets a
   * first one before any gets a second); a long request only to an idle worker, none behind it.
   */
  private dispatch(): void {
    for (let depth = 1; depth <= PIPELINE_DEPTH; depth++) {
      for (const slot of this.slots) {
        const head = this.queue[0];
        if (!head) return;
        if (!slot.ready || slot.ending || slot.jobs.length >= depth) continue;
        if (slot.jobs.length > 0 && (mayRunLong(head) || slot.jobs.some(mayRunLong))) continue;
        const job = this.queue.shift() as Job;
        const id = this.nextId++;
        slot.jobs.push({ ...job, id });
        if (slot.jobs.length === 1) {
          this.startDeadline(slot);
          slot.worker.ref();
        }
        slot.worker.postMessage({ ...job.request, id } satisfies AnalysisRequest);
      }
    }
  }

  /** The deadline of the request the worker is on now (the first of its jobs), if any. */
  private startDeadline(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    const head = slot.jobs[0];
    // A worker being ended starts nothing new: what it still holds is requeued when it is gone.
    slot.timer = !head || slot.ending ? null : setTimeout(() => {
      slot.ending = 'timeout';
      slot.timedOut = head.id;
      slot.worker.terminate().catch(() => undefined);
    }, this.options.timeoutMs);
  }
}

/** A spooled message (large) or one plugin's analyzer on demand (text extraction): not pipelined. */
function mayRunLong(job: Job): boolean {
  return job.request.only !== undefined || 'path' in job.request.source;
}

function budgetText(reason: 'timeout' | 'memory' | 'crash', o: AnalysisPoolOptions): string {
  if (reason === 'timeout') return `Analysing the message took longer than ${o.timeoutMs} ms`;
  if (reason === 'memory') return `Analysing the message needed more than ${o.memoryMb} MiB`;
  return 'The analysis worker ended while analysing the message';
}
