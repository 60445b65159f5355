// The worker side of the fuzz harness (harness.ts): loads one targets module, runs its jobs (fuzz a
// target with fast-check, or replay one fixture file) and, before every single call into the code under
// test, records the input and bumps a call counter in shared memory, so the main thread can tell a call
// that never returns (and which input it was) and kill this thread. Exceptions and property violations
// are reported (after fast-check shrank them) as messages; hangs and out-of-memory exits are not seen here.
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { inputArbitrary } from './mutate.ts';
import type { FuzzGroup, FuzzTarget } from './target.ts';
import { CTL, DATA_OFFSET, type Job, type WorkerInput, type WorkerMessage } from './protocol.ts';

const input = workerData as WorkerInput;
const ctl = new Int32Array(input.sab, 0, CTL.size);
const data = new Uint8Array(input.sab, DATA_OFFSET);

function post(m: WorkerMessage): void {
  parentPort?.postMessage(m);
}

function record(job: number, bytes: Buffer): void {
  const n = Math.min(bytes.length, data.length);
  data.set(bytes.subarray(0, n));
  Atomics.store(ctl, CTL.job, job);
  Atomics.store(ctl, CTL.stored, n);
  Atomics.store(ctl, CTL.length, bytes.length);
  Atomics.store(ctl, CTL.busy, 1);
  Atomics.add(ctl, CTL.counter, 1);
}

function idle(): void {
  Atomics.store(ctl, CTL.busy, 0);
  Atomics.add(ctl, CTL.counter, 1);
}

async function call(target: FuzzTarget, job: number, bytes: Buffer): Promise<void> {
  record(job, bytes);
  try {
    await target.run(bytes);
  } finally {
    idle();
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}${err.stack ? `\n${err.stack.split('\n').slice(1, 6).join('\n')}` : ''}`;
  return String(err);
}

function seedOf(name: string): number {
  let h = input.seed | 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) | 0;
  return h;
}

const prepared = new Set<FuzzTarget>();

async function runJob(target: FuzzTarget, job: Job, index: number): Promise<void> {
  if (!prepared.has(target)) {
    await target.prepare?.();
    prepared.add(target);
  }
  const started = Date.now();
  if (job.mode === 'replay') {
    const bytes = readFileSync(job.file ?? '');
    try {
      await call(target, index, bytes);
      post({ type: 'result', job: index, runs: 1, ms: Date.now() - started, failure: null });
    } catch (err) {
      post({ type: 'result', job: index, runs: 1, ms: Date.now() - started, failure: { message: describe(err), input: bytes } });
    }
    return;
  }
  const seeds = target.seeds();
  const arb = inputArbitrary(seeds, target.dictionary ?? [], target.maxLength ?? 64 * 1024);
  const seed = seedOf(target.name);
  const details = await fc.check(
    fc.asyncProperty(arb, (bytes) => call(target, index, bytes)),
    { numRuns: input.runs, seed, interruptAfterTimeLimit: input.timeLimitMs, markInterruptAsFailure: false },
  );
  const ms = Date.now() - started;
  if (details.failed && details.counterexample) {
    const [bytes] = details.counterexample;
    post({ type: 'result', job: index, runs: details.numRuns, ms, seed, failure: { message: describe(details.errorInstance), input: bytes } });
  } else {
    post({ type: 'result', job: index, runs: details.numRuns, ms, seed, failure: null });
  }
}

const mod = (await import(input.module)) as { group: FuzzGroup };
for (let j = input.start; j < input.jobs.length; j++) {
  const job = input.jobs[j] as Job;
  const target = mod.group.targets.find((t) => t.name === job.target);
  Atomics.store(ctl, CTL.job, j);
  if (!target) {
    post({ type: 'result', job: j, runs: 0, ms: 0, failure: { message: `No target "${job.target}" in ${input.module}`, input: Buffer.alloc(0) } });
    continue;
  }
  await runJob(target, job, j);
}
for (const t of prepared) await t.cleanup?.();
post({ type: 'done' });
