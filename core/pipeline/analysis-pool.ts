// The analysis pool: worker threads that run message-units.ts (header parsing, journal unwrapping,
// the plugins' analyzers) on untrusted bytes, each request under a deadline and each worker under a
// heap limit. A request that runs past its deadline or out of memory ends its worker (a new one
// starts) and fails with MESSAGE_BUDGET, so one message can never hang or exhaust the gateway.
// Requests queue for a free worker (bounded by the queue manager's active window).
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
  transfer: ArrayBuffer[];
  resolve: (r: AnalysisResult | AnalyzerOutcome) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: (Job & { id: number; timer: NodeJS.Timeout }) | null;
  /** Why this worker is being ended (set before terminate()). */
  ending: 'timeout' | 'memory' | 'crash' | 'close' | null;
}

const WORKER_URL = new URL('./analysis-worker.js', import.meta.url);
/** A worker that cannot start (a broken analyzer module) is retried at most this often. */
const RESTART_DELAY_MS = 1000;

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
  analyze(request: Omit<AnalysisRequest, 'id' | 'only'>, transfer: ArrayBuffer[] = []): Promise<AnalysisResult> {
    return this.submit(request, transfer) as Promise<AnalysisResult>;
  }

  /**
   * One plugin's analyzer on a stored message (data computed after archiving, e.g. for a message
   * archived before the plugin was enabled), under the same budget. Rejects with MESSAGE_BUDGET, or
   * INVALID_INPUT when the analyzer failed.
   */
  async analyzeWith(plugin: string, bytes: Buffer): Promise<unknown> {
    const outcome = (await this.submit({ source: { bytes }, size: bytes.length, only: plugin }, [])) as AnalyzerOutcome;
    if (!outcome.ok) throw new PosternError('INVALID_INPUT', `Analyzer of plugin "${plugin}" failed: ${outcome.error}`);
    return outcome.value;
  }

  private submit(request: Omit<AnalysisRequest, 'id'>, transfer: ArrayBuffer[]): Promise<AnalysisResult | AnalyzerOutcome> {
    if (this.closed) return Promise.reject(new PosternError('SHUTTING_DOWN', 'The analysis pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ request, transfer, resolve, reject });
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
    worker.unref();
    const slot: Slot = { worker, ready: false, job: null, ending: null };
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
    const job = slot.job;
    if (!job || job.id !== reply.id) return;
    clearTimeout(job.timer);
    slot.job = null;
    if (reply.type === 'done') job.resolve(reply.result);
    else if (reply.type === 'done-one') job.resolve(reply.outcome);
    else job.reject(new PosternError(reply.corrupt ? 'INTAKE_CORRUPT' : 'INVALID_INPUT', `Analysing the message failed: ${reply.error}`));
    this.dispatch();
  }

  private onExit(slot: Slot): void {
    this.slots.delete(slot);
    const job = slot.job;
    slot.job = null;
    if (job) {
      clearTimeout(job.timer);
      const reason = slot.ending === 'timeout' || slot.ending === 'memory' ? slot.ending : 'crash';
      if (slot.ending !== 'close') this.options.onBudgetExceeded?.(reason);
      job.reject(new PosternError(slot.ending === 'close' ? 'SHUTTING_DOWN' : 'MESSAGE_BUDGET', budgetText(reason, this.options)));
    }
    if (this.closed) return;
    const delay = this.startupError ? RESTART_DELAY_MS : 0;
    const t = setTimeout(() => this.spawn(), delay);
    t.unref();
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.ready || slot.job || slot.ending) continue;
      const job = this.queue.shift() as Job;
      const id = this.nextId++;
      const timer = setTimeout(() => {
        slot.ending = 'timeout';
        slot.worker.terminate().catch(() => undefined);
      }, this.options.timeoutMs);
      slot.job = { ...job, id, timer };
      slot.worker.postMessage({ ...job.request, id } satisfies AnalysisRequest, job.transfer);
    }
  }
}

function budgetText(reason: 'timeout' | 'memory' | 'crash', o: AnalysisPoolOptions): string {
  if (reason === 'timeout') return `Analysing the message took longer than ${o.timeoutMs} ms`;
  if (reason === 'memory') return `Analysing the message needed more than ${o.memoryMb} MiB`;
  return 'The analysis worker ended while analysing the message';
}
