// The queue manager yields to capture (intake.archiveMaxLagMs / archiveQuietMs): while messages keep
// arriving, fresh entries wait; they are archived once arrivals pause, or once they have waited the
// maximum lag even if arrivals never pause; entries found in the intake at start never wait.
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

test('under arrivals that never pause, an entry is archived once it has waited archiveMaxLagMs', async () => {
  const { q, started } = queue({ archiveMaxLagMs: 300, archiveQuietMs: 10000 });
  q.start([]);
  const committed = new Map<string, number>();
  let arrivals = 0;
  // Keep arriving (every ~20 ms, never a 10 s pause) until something has been archived.
  while (started.size === 0) {
    assert.ok(arrivals < 1000, 'an entry was archived within the lag bound while arrivals continued');
    const c = await commitOne(arrivals++);
    committed.set(c.record.id, c.committedAt);
    q.enqueue(c.record, c.inline);
    await sleep(20);
  }
  assert.ok(performance.now() - intake.lastCommitAt < 10000, 'arrivals were still going on');
  for (const [id, at] of started) {
    // Timers may fire up to a millisecond early against performance.now(); the entry waited its lag.
    assert.ok(at - (committed.get(id) as number) >= 299 - 1, `entry ${id} started only after the maximum lag`);
  }
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
