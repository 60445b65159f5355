// The queue manager yields to capture (intake.archiveMaxLagMs / archiveQuietMs): while messages keep
// arriving, fresh entries wait; they are archived once arrivals pause, or once the oldest has waited the
// maximum lag even if arrivals never pause (then everything queued by that moment goes with it, one
// round); entries found in the intake at start never wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Intake, type IntakeRecord } from '../../../core/intake/intake.ts';
import { QueueManager, type QueueOptions } from '../../../core/intake/queue-manager.ts';
import { createMemoryLogger } from '../../../core/log.ts';
import { freshIntakeEachTest } from '../../helpers/intake.ts';

let intake: Intake;
const { logger } = createMemoryLogger();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

freshIntakeEachTest('postern-yield-', (i) => {
  intake = i;
});

async function commitOne(n: number): Promise<{ record: IntakeRecord; inline: Buffer | null; committedAt: number }> {
  const w = intake.writer();
  await w.write(Buffer.from(`Subject: ${n}\r\n\r\nbody ${n}\r\n`));
  const { record, inline } = await w.commit({ listener: 'smtp', envelope: { mailFrom: 'a@x.org', rcptTo: ['b@y.org'] }, session: { remoteAddress: '127.0.0.1', helo: 'h', user: null } });
  return { record, inline, committedAt: performance.now() };
}

/** A queue whose "archiving" records when each entry started (performance.now()). */
function queue(options: Partial<QueueOptions>): { q: QueueManager; started: Map<string, number> } {
  const started = new Map<string, number>();
  const q = new QueueManager(intake, async (r) => {
    started.set(r.id, performance.now());
  }, { activeWindow: 4, maxAttempts: 3, retryBaseSeconds: 1, retryMaxSeconds: 1, ...options }, logger);
  return { q, started };
}

async function until(cond: () => boolean, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(10);
  }
}

test('entries committed during a burst wait for the pause after it, then are all archived', async () => {
  const { q, started } = queue({ archiveMaxLagMs: 60000, archiveQuietMs: 4000 });
  q.start([]);
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    const c = await commitOne(i);
    q.enqueue(c.record, c.inline);
    ids.push(c.record.id);
  }
  // Back-to-back commits are milliseconds apart, far inside the 4 s quiet period.
  assert.equal(started.size, 0, 'nothing archived while messages keep arriving');
  assert.equal(q.pending, 20);
  await until(() => started.size === 20);
  await q.idle();
  await q.stop(1000);
  assert.deepEqual([...started.keys()].sort(), [...ids].sort());
  assert.equal(intake.counts().active, 0, 'every entry left the intake after archiving');
});

test('under arrivals that never pause, the oldest entry is archived once it has waited archiveMaxLagMs, and everything queued by then goes with it', async () => {
  const { q, started } = queue({ archiveMaxLagMs: 300, archiveQuietMs: 10000 });
  q.start([]);
  const committed = new Map<string, number>();
  const order: string[] = [];
  let arrivals = 0;
  const arrive = async (): Promise<void> => {
    assert.ok(arrivals < 1000, 'an entry was archived within the lag bound while arrivals continued');
    const c = await commitOne(arrivals++);
    committed.set(c.record.id, c.committedAt);
    order.push(c.record.id);
    q.enqueue(c.record, c.inline);
    await sleep(20);
  };
  // Keep arriving (every ~20 ms, never a 10 s pause) until something has been archived...
  while (started.size === 0) await arrive();
  const roundAt = Math.min(...started.values());
  const inRound = order.filter((id) => (committed.get(id) as number) < roundAt);
  const afterRound = order.filter((id) => (committed.get(id) as number) > roundAt);
  // ...and on until the first entry queued after that round has been archived in the next one.
  while (afterRound.length === 0 || !started.has(afterRound[0] as string)) {
    await arrive();
    if (afterRound.length === 0) afterRound.push(...order.filter((id) => (committed.get(id) as number) > roundAt));
  }
  assert.ok(performance.now() - intake.lastCommitAt < 10000, 'arrivals were still going on');
  const head = order[0] as string;
  // Timers may fire up to a millisecond early against performance.now(); the head waited its lag.
  assert.ok((started.get(head) as number) - (committed.get(head) as number) >= 299 - 1, 'the oldest entry started only after the maximum lag');
  assert.ok(inRound.length >= 5, `several entries were queued when the oldest came due (${inRound.length})`);
  for (const id of inRound) {
    assert.ok(started.has(id), `entry ${id}, queued before the round, went with it`);
    assert.ok((started.get(id) as number) - roundAt < 250, `entry ${id} went with the round, not when it came due itself`);
  }
  const next = afterRound[0] as string;
  assert.ok((started.get(next) as number) - (committed.get(next) as number) >= 299 - 1, 'an entry queued after the round waited its own lag: it opened the next round');
  await q.stop(1000);
});

test('entries left in the intake from before a restart are archived at once, even during a burst', async () => {
  const old = await commitOne(1);
  const { q, started } = queue({ archiveMaxLagMs: 60000, archiveQuietMs: 10000 });
  await commitOne(2); // an arrival just now: the queue would yield to fresh entries
  q.start([old.record]);
  await until(() => started.has(old.record.id));
  await q.stop(1000);
});

test('archiveMaxLagMs 0 archives at once, arrivals or not', async () => {
  const { q, started } = queue({ archiveMaxLagMs: 0, archiveQuietMs: 10000 });
  q.start([]);
  const c = await commitOne(1);
  q.enqueue(c.record, c.inline);
  await until(() => started.has(c.record.id));
  await q.stop(1000);
});
