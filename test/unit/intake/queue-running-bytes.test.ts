// The queue manager bounds the bytes of inline entries archived at once (maxRunningBytes) as well as
// their number (activeWindow): a wide window of large messages waits below the byte bound, and one
// entry larger than the bound still runs alone, so nothing is stranded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Intake, type IntakeRecord } from '../../../core/intake/intake.ts';
import { QueueManager } from '../../../core/intake/queue-manager.ts';
import { createMemoryLogger } from '../../../core/log.ts';
import { freshIntakeEachTest } from '../../helpers/intake.ts';

let intake: Intake;
const { logger } = createMemoryLogger();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

freshIntakeEachTest('postern-running-bytes-', (i) => {
  intake = i;
});

async function commit(size: number): Promise<{ record: IntakeRecord; inline: Buffer | null }> {
  const w = intake.writer();
  await w.write(Buffer.alloc(size, 0x61));
  return w.commit({ listener: 'smtp', envelope: { mailFrom: 'a@x.org', rcptTo: ['b@y.org'] }, session: { remoteAddress: '127.0.0.1', helo: 'h', user: null } });
}

test('inline entries run at once only while their bytes stay under maxRunningBytes; a larger one runs alone', async () => {
  let running = 0;
  let runningBytes = 0;
  let maxRunning = 0;
  let maxRunningBytes = 0;
  const done: string[] = [];
  const q = new QueueManager(intake, async (r) => {
    running++;
    runningBytes += r.size;
    maxRunning = Math.max(maxRunning, running);
    maxRunningBytes = Math.max(maxRunningBytes, runningBytes);
    await sleep(20);
    running--;
    runningBytes -= r.size;
    done.push(r.id);
  }, { activeWindow: 64, maxAttempts: 3, retryBaseSeconds: 1, retryMaxSeconds: 1, maxRunningBytes: 50_000 }, logger);
  const entries = [];
  for (let i = 0; i < 12; i++) entries.push(await commit(10_000));
  entries.push(await commit(60_000)); // larger than the bound by itself
  q.start([]);
  for (const e of entries) q.enqueue(e.record, e.inline);
  const deadline = Date.now() + 20_000;
  while (done.length < entries.length) {
    assert.ok(Date.now() < deadline, `all entries archived in time (${done.length} of ${entries.length})`);
    await sleep(10);
  }
  await q.stop(1000);
  assert.ok(maxRunning > 1, 'entries ran side by side');
  assert.ok(maxRunning <= 5, `at most 5 entries of 10 kB under a 50 kB bound (saw ${maxRunning})`);
  assert.equal(maxRunningBytes, 60_000, 'the 60 kB entry ran, alone');
});
