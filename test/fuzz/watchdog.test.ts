// Self-test of the fuzz harness's watchdog, run first in `npm run test:fuzz`: an endless loop, a promise
// that never settles, endless heap growth (the worker's V8 heap limit) and endless off-heap buffer growth
// (the process memory bound) must each be reported with an input that triggers them (one holding ")",
// like the address list "Cc: )" that once looped forever), an exception must be shrunk to a small such
// input, and the worker must be replaced after each kill so the remaining targets still run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runJobs, type FailureKind, type HarnessOptions, type JobResult } from './harness.ts';

const MODULE = new URL('./selftest.targets.ts', import.meta.url).href;

async function run(names: string[], opts: HarnessOptions): Promise<Map<string, JobResult>> {
  const results = await runJobs(MODULE, names.map((target) => ({ target, mode: 'fuzz' as const })), opts);
  return new Map(results.map((r) => [r.job.target, r]));
}

function expectFailure(results: Map<string, JobResult>, name: string, kind: FailureKind): void {
  const f = results.get(name)?.failure;
  assert.ok(f, `${name}: no failure reported`);
  assert.equal(f.kind, kind, `${name}: reported as ${f.kind} (${f.message.split('\n')[0]})`);
  assert.ok(f.input.includes(0x29), `${name}: the reported input does not trigger it: ${JSON.stringify(f.input.subarray(0, 80).toString('latin1'))}`);
}

function expectHealthy(results: Map<string, JobResult>): void {
  const healthy = results.get('selftest.healthy');
  assert.equal(healthy?.failure, null, 'the target after the killed ones passed');
  assert.ok((healthy?.runs ?? 0) >= 100, `the target after the killed ones ran all its inputs (${healthy?.runs})`);
}

test('the watchdog kills a call past its deadline and reports its input', { timeout: 60_000 }, async () => {
  const results = await run(
    ['selftest.endless-loop', 'selftest.pending-forever', 'selftest.throws', 'selftest.healthy'],
    { deadlineMs: 500, heapMb: 128, rssMb: 1024, runs: 100, timeLimitMs: 10_000, seed: 42 },
  );
  expectFailure(results, 'selftest.endless-loop', 'hang');
  expectFailure(results, 'selftest.pending-forever', 'hang');
  expectFailure(results, 'selftest.throws', 'property');
  const shrunk = results.get('selftest.throws')?.failure?.input;
  assert.ok(shrunk && shrunk.length <= 8, `the exception's input was shrunk: ${JSON.stringify(shrunk?.subarray(0, 80).toString('latin1'))}`);
  expectHealthy(results);
});

test('runaway allocation is stopped by the heap limit or the memory bound and reports its input', { timeout: 120_000 }, async () => {
  const results = await run(
    ['selftest.heap-growth', 'selftest.buffer-growth', 'selftest.healthy'],
    // The memory bound (process RSS, polled by the main thread) stops both before V8's own heap
    // limit is reached: a worker hitting that limit can abort the whole process in Node 20 (seen here
    // with a young-generation allocation), which would end the run instead of reporting the input.
    { deadlineMs: 60_000, heapMb: 2048, rssMb: 256, runs: 100, timeLimitMs: 10_000, seed: 42 },
  );
  expectFailure(results, 'selftest.heap-growth', 'memory');
  expectFailure(results, 'selftest.buffer-growth', 'memory');
  expectHealthy(results);
});
