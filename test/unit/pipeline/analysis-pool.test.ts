// The analysis pool hands each worker several requests at once (PIPELINE_DEPTH) and the worker goes
// through them in order. The deadline is each request's own, and when a worker ends, only the request
// it was on fails: the ones queued behind it are analysed by its successor. Nothing queues behind a
// request that may run long (a spooled message, an analyzer on demand): other workers take the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PIPELINE_DEPTH } from '../../../core/pipeline/analysis-pool.ts';
import { isPosternError } from '../../../core/errors.ts';
import { createMemoryLogger } from '../../../core/log.ts';
import { testAnalysisPool } from '../../helpers/analysis.ts';

const HOSTILE = new URL('../../fixtures/analyzers/hostile.ts', import.meta.url).href;

function message(subject: string, poison = ''): Buffer {
  return Buffer.from(`From: bob@else.org\r\nTo: alice@example.com\r\nSubject: ${subject}\r\n${poison ? `X-Poison: ${poison}\r\n` : ''}\r\nbody\r\n`);
}

async function withPool<T>(timeoutMs: number, run: (pool: ReturnType<typeof testAnalysisPool>, budget: string[], dir: string) => Promise<T>, workers = 1): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-pool-'));
  const armed = join(dir, 'armed');
  writeFileSync(armed, '');
  const budget: string[] = [];
  const pool = testAnalysisPool(createMemoryLogger().logger, [{ plugin: 'hostile', module: HOSTILE, exportName: 'analyze', options: { armed } }], {
    workers, timeoutMs, memoryMb: 64, onBudgetExceeded: (reason) => budget.push(reason),
  });
  try {
    return await run(pool, budget, dir);
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const outcome = (r: { units: Array<{ analysis: Record<string, unknown> }> }): unknown => r.units[0]?.analysis.hostile;

test('one worker is handed several requests at once and answers each in turn', async () => {
  assert.ok(PIPELINE_DEPTH > 1);
  await withPool(30000, async (pool) => {
    const results = await Promise.all(Array.from({ length: 3 * PIPELINE_DEPTH }, (_, i) => {
      const bytes = message(`m${i}`);
      return pool.analyze({ source: { bytes }, size: bytes.length });
    }));
    assert.deepEqual(results.map((r) => r.units[0]?.summary.subject), Array.from({ length: 3 * PIPELINE_DEPTH }, (_, i) => `m${i}`));
    for (const r of results) assert.deepEqual(outcome(r), { ok: true, value: 'fine' });
  });
});

test('the deadline is per request: requests that together outlast it each finish within it', async () => {
  // Each takes 500 ms of a 1,500 ms deadline; handed over together they keep the worker busy past it.
  await withPool(1500, async (pool, budget) => {
    const results = await Promise.all(Array.from({ length: PIPELINE_DEPTH }, (_, i) => {
      const bytes = message(`slow ${i}`, 'slow 500');
      return pool.analyze({ source: { bytes }, size: bytes.length });
    }));
    for (const r of results) assert.deepEqual(outcome(r), { ok: true, value: 'fine' });
    assert.deepEqual(budget, []);
  });
});

test('a request that outlasts its deadline fails alone; those queued behind it in the same worker are answered', async () => {
  await withPool(1500, async (pool, budget) => {
    const loop = message('loops', 'loop');
    const looping = pool.analyze({ source: { bytes: loop }, size: loop.length }).then(() => 'answered', (err: unknown) => err);
    const others = Array.from({ length: PIPELINE_DEPTH }, (_, i) => {
      const bytes = message(`after ${i}`);
      return pool.analyze({ source: { bytes }, size: bytes.length });
    });
    const err = await looping;
    assert.ok(isPosternError(err, 'MESSAGE_BUDGET'), `the looping request fails with MESSAGE_BUDGET (got ${String(err)})`);
    const results = await Promise.all(others);
    assert.deepEqual(results.map((r) => r.units[0]?.summary.subject), Array.from({ length: PIPELINE_DEPTH }, (_, i) => `after ${i}`));
    for (const r of results) assert.deepEqual(outcome(r), { ok: true, value: 'fine' });
    assert.deepEqual(budget, ['timeout'], 'only the looping request is charged');
  });
});

test('a worker that runs out of heap fails the request it was on; the rest are answered by its successor', async () => {
  await withPool(30000, async (pool, budget) => {
    const others = (tag: string): Array<Promise<unknown>> => Array.from({ length: PIPELINE_DEPTH - 1 }, (_, i) => {
      const bytes = message(`${tag} ${i}`);
      return pool.analyze({ source: { bytes }, size: bytes.length }).then(outcome);
    });
    const before = others('before');
    const hog = message('hogs', 'hog');
    const hogging = pool.analyze({ source: { bytes: hog }, size: hog.length }).then(() => 'answered', (err: unknown) => err);
    const after = others('after');
    assert.ok(isPosternError(await hogging, 'MESSAGE_BUDGET'));
    for (const o of await Promise.all([...before, ...after])) assert.deepEqual(o, { ok: true, value: 'fine' });
    assert.equal(budget.length, 1);
    assert.match(budget[0] ?? '', /^(memory|crash)$/);
  });
});

for (const kind of ['an analyzer on demand', 'a spooled message'] as const) {
  test(`nothing queues behind ${kind}: the other worker answers the requests after it first`, async () => {
    await withPool(30000, async (pool, _budget, dir) => {
      const done: string[] = [];
      const slowBytes = message('slow', 'slow 1500');
      let slow: Promise<unknown>;
      if (kind === 'a spooled message') {
        const path = join(dir, 'spooled.eml');
        writeFileSync(path, slowBytes);
        slow = pool.analyze({ source: { path }, size: slowBytes.length });
      } else {
        slow = pool.analyzeWith('hostile', slowBytes);
      }
      const tracked = slow.then(() => done.push('slow'));
      const others = Array.from({ length: 2 * PIPELINE_DEPTH }, (_, i) => {
        const bytes = message(`quick ${i}`);
        return pool.analyze({ source: { bytes }, size: bytes.length }).then(() => done.push(`quick ${i}`));
      });
      await Promise.all([tracked, ...others]);
      assert.equal(done[done.length - 1], 'slow', `every quick request was answered before the slow one (${done.join(', ')})`);
    }, 2);
  });
}
