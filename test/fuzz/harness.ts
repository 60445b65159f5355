// The fuzz harness's main thread: runs a targets module's jobs in a worker thread with a bounded heap
// (resourceLimits) and watches it. The worker records every input and bumps a shared counter before and
// after each call; when one call runs past the deadline (a synchronous endless loop cannot be interrupted
// from inside the thread), when the process's memory grows past its bound, or when the worker dies (out
// of memory, uncaught error), the worker is terminated and the last recorded input is reported; a new
// worker then carries on with the next job. Failures can be saved as fixtures under test/fixtures/fuzz/
// (replayed by test/unit/fuzz-regressions.test.ts).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CTL, DATA_CAPACITY, DATA_OFFSET, type Job, type WorkerInput, type WorkerMessage } from './protocol.ts';

export type FailureKind = 'property' | 'hang' | 'oom' | 'memory' | 'exit';

export interface Failure {
  target: string;
  kind: FailureKind;
  message: string;
  input: Buffer;
  /** The input was longer than the shared buffer and was recorded cut. */
  truncated: boolean;
  /** Where it was saved (saveFailure). */
  fixture?: string;
}

export interface JobResult {
  job: Job;
  runs: number;
  ms: number;
  seed: number | null;
  failure: Failure | null;
}

export interface HarnessOptions {
  /** Longest a single call may run. */
  deadlineMs: number;
  /** The worker's V8 old-generation limit. */
  heapMb: number;
  /** Growth of the whole process's RSS (off-heap buffers included) that counts as runaway allocation. */
  rssMb: number;
  /** fast-check runs per fuzz job (the time limit usually ends it first). */
  runs: number;
  /** Time per fuzz job. */
  timeLimitMs: number;
  seed: number;
}

export const FIXTURE_ROOT = fileURLToPath(new URL('../fixtures/fuzz/', import.meta.url));
const WORKER = new URL('./worker.mjs', import.meta.url);
const POLL_MS = 20;

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not "${raw}"`);
  return n;
}

/** Options from the environment: POSTERN_FUZZ_DEADLINE_MS (default 5000), _HEAP_MB, _RSS_MB, _RUNS, _SEED (time per job is the caller's). */
export function optionsFromEnv(timeLimitMs: number): HarnessOptions {
  const seedRaw = process.env.POSTERN_FUZZ_SEED;
  return {
    deadlineMs: envNumber('POSTERN_FUZZ_DEADLINE_MS', 5000),
    heapMb: envNumber('POSTERN_FUZZ_HEAP_MB', 512),
    rssMb: envNumber('POSTERN_FUZZ_RSS_MB', 1536),
    runs: Math.floor(envNumber('POSTERN_FUZZ_RUNS', 1_000_000)),
    timeLimitMs,
    seed: seedRaw !== undefined && seedRaw !== '' ? Number(seedRaw) | 0 : (Date.now() ^ (process.pid << 8)) | 0,
  };
}

interface Round {
  /** Job index to continue from, or jobs.length when all ran. */
  next: number;
}

/** Runs every job of a targets module (`moduleUrl` exports `group`), restarting the worker after each kill. */
export async function runJobs(moduleUrl: string, jobs: Job[], opts: HarnessOptions): Promise<JobResult[]> {
  const results: JobResult[] = jobs.map((job) => ({ job, runs: 0, ms: 0, seed: null, failure: null }));
  let start = 0;
  while (start < jobs.length) {
    const round = await runRound(moduleUrl, jobs, start, opts, results);
    start = round.next;
  }
  return results;
}

function runRound(moduleUrl: string, jobs: Job[], start: number, opts: HarnessOptions, results: JobResult[]): Promise<Round> {
  const sab = new SharedArrayBuffer(DATA_OFFSET + DATA_CAPACITY);
  const ctl = new Int32Array(sab, 0, CTL.size);
  const data = new Uint8Array(sab, DATA_OFFSET);
  const workerData: WorkerInput = { module: moduleUrl, jobs, start, sab, seed: opts.seed, runs: opts.runs, timeLimitMs: opts.timeLimitMs };
  const worker = new Worker(WORKER, {
    workerData,
    resourceLimits: { maxOldGenerationSizeMb: opts.heapMb, maxYoungGenerationSizeMb: 64, stackSizeMb: 4 },
    stdout: false,
    stderr: false,
  });
  const baseline = process.memoryUsage.rss();
  const jobStarted = new Map<number, number>();

  return new Promise<Round>((resolve) => {
    let settled = false;
    let lastCounter = -1;
    let lastChange = Date.now();

    const lastInput = (): { input: Buffer; truncated: boolean; job: number } => {
      const stored = Atomics.load(ctl, CTL.stored);
      return {
        input: Buffer.from(data.subarray(0, stored)),
        truncated: Atomics.load(ctl, CTL.length) > stored,
        job: Math.max(start, Atomics.load(ctl, CTL.job)),
      };
    };

    const finish = (next: number): void => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      resolve({ next });
    };

    const kill = (kind: FailureKind, message: string): void => {
      if (settled) return;
      const { input, truncated, job } = lastInput();
      const j = results[job] as JobResult;
      j.failure = { target: j.job.target, kind, message, input, truncated };
      j.ms = Date.now() - (jobStarted.get(job) ?? Date.now());
      void worker.terminate();
      finish(job + 1);
    };

    const timer = setInterval(() => {
      const counter = Atomics.load(ctl, CTL.counter);
      const now = Date.now();
      if (counter !== lastCounter) {
        lastCounter = counter;
        lastChange = now;
        const job = Atomics.load(ctl, CTL.job);
        if (!jobStarted.has(job)) jobStarted.set(job, now);
        return;
      }
      if (Atomics.load(ctl, CTL.busy) === 1 && now - lastChange > opts.deadlineMs) {
        kill('hang', `One call ran longer than ${opts.deadlineMs} ms (killed)`);
        return;
      }
      const grown = (process.memoryUsage.rss() - baseline) / (1024 * 1024);
      if (grown > opts.rssMb) kill('memory', `Process memory grew by ${Math.round(grown)} MiB, more than ${opts.rssMb} MiB (killed)`);
    }, POLL_MS);

    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'done') {
        // The targets may leave handles open (the admin target's HTTP server): end the thread.
        void worker.terminate();
        finish(jobs.length);
        return;
      }
      const r = results[m.job] as JobResult;
      r.runs = m.runs;
      r.ms = m.ms;
      r.seed = m.seed ?? null;
      if (m.failure) r.failure = { target: r.job.target, kind: 'property', message: m.failure.message, input: Buffer.from(m.failure.input), truncated: false };
    });
    worker.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') kill('oom', `Worker ran out of its ${opts.heapMb} MiB heap: ${err.message}`);
      else kill('exit', `Worker failed outside a property (uncaught error or rejection): ${err.stack ?? err.message}`);
    });
    worker.on('exit', (code) => {
      if (!settled) kill('exit', `Worker exited with code ${code} before finishing its jobs`);
    });
  });
}

/** Saves a failure's input as test/fixtures/fuzz/<target>/<kind>-<sha256 prefix>.bin (unless already there). */
export function saveFailure(f: Failure, root = FIXTURE_ROOT): string {
  const dir = join(root, f.target);
  mkdirSync(dir, { recursive: true });
  const name = `${f.kind}-${createHash('sha256').update(f.input).digest('hex').slice(0, 12)}.bin`;
  const path = join(dir, name);
  if (!existsSync(path)) writeFileSync(path, f.input);
  f.fixture = path;
  return path;
}

export function describeFailure(f: Failure): string {
  const shown = JSON.stringify(f.input.subarray(0, 200).toString('latin1'));
  return [
    `${f.target}: ${f.kind}${f.fixture ? ` (saved as ${f.fixture})` : ''}`,
    `  input (${f.input.length} bytes${f.truncated ? ', cut' : ''}): ${shown}${f.input.length > 200 ? '…' : ''}`,
    `  ${f.message.split('\n').join('\n  ')}`,
  ].join('\n');
}
