// Archive commits follow the order entries reached the archiver although analysis runs in parallel
// workers and finishes in any order (an imported mailbox keeps its order in UIDs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommitOrder } from '../../../core/pipeline/commit-order.ts';

test('a later entry that finishes first waits for the earlier one to issue its commit', async () => {
  const order = new CommitOrder(5000);
  const issued: number[] = [];
  const run = async (n: number, analysisMs: number): Promise<void> => {
    const turn = order.take();
    await new Promise((r) => setTimeout(r, analysisMs));
    await turn.wait();
    issued.push(n);
    turn.release();
  };
  await Promise.all([run(1, 30), run(2, 5), run(3, 20), run(4, 0)]);
  assert.deepEqual(issued, [1, 2, 3, 4]);
});

test('an entry that never commits (failed, deferred) releases its successor', async () => {
  const order = new CommitOrder(5000);
  const first = order.take();
  const second = order.take();
  first.release();
  await second.wait();
});

test('a stuck predecessor delays its successor at most maxWaitMs', async () => {
  const order = new CommitOrder(50);
  order.take(); // never released
  const next = order.take();
  const started = Date.now();
  await next.wait();
  assert.ok(Date.now() - started < 2000);
});
