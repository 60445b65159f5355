// The queue manager's overflow path: when more entries arrive than the ready list holds, the rest stay
// in the intake and a rescan pages through it. Entries that finish (archived, or deferred after a
// failure) while a rescan reads the intake must not be handed out again, and nothing may be left
// behind when held/corrupt entries fill the listing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Intake, type IntakeRecord } from '../../../core/intake/intake.ts';
import { QueueManager } from '../../../core/intake/queue-manager.ts';
import { createMemoryLogger } from '../../../core/log.ts';
import { freshIntakeEachTest } from '../../helpers/intake.ts';

let intake: Intake;
const { logger } = createMemoryLogger();

freshIntakeEachTest('postern-rescan-', (i) => {
  intake = i;
});

async function commit(n: number, state: 'active' | 'held' = 'active'): Promise<{ record: IntakeRecord; inline: Buffer | null }> {
  const w = intake.writer();
  await w.write(Buffer.from(`Subject: ${n}\r\n\r\n${'x'.repeat(100)}\r\n`));
  return w.commit({ listener: 'smtp', envelope: { mailFrom: 'a@x.org', rcptTo: ['b@y.org'] }, session: { remoteAddress: '127.0.0.1', helo: 'h', user: null } }, { state });
}

async function drained(timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (intake.counts().active + intake.counts().deferred > 0) {
    if (Date.now() > deadline) throw new Error(`intake not drained: ${JSON.stringify(intake.counts())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const archiveMaxLagMs of [0, 50]) {
  test(`overflowing the ready list with failures and rescans: every entry archived exactly once (archiveMaxLagMs ${archiveMaxLagMs})`, async () => {
    const succeeded = new Map<string, number>();
    const problems: string[] = [];
    let calls = 0;
    let failures = 0;
    const q = new QueueManager(intake, async (r, inline) => {
      calls += 1;
      // An entry handed out after its removal has no data left in the intake.
      if (!inline && (await intake.get(r.id)) === null) problems.push(`${r.id} handed out after removal`);
      if (calls % 7 === 0 && failures++ < 3) throw new Error('transient');
      succeeded.set(r.id, (succeeded.get(r.id) ?? 0) + 1);
    }, { activeWindow: 2, maxAttempts: 5, retryBaseSeconds: 0.05, retryMaxSeconds: 0.05, maxReady: 10, archiveMaxLagMs, archiveQuietMs: 5, maxInlineBytes: 2000 }, logger);
    q.start([]);
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const c = await commit(i);
      q.enqueue(c.record, c.inline);
      q.enqueue(c.record, c.inline); // a second enqueue of the same entry changes nothing
      ids.push(c.record.id);
    }
    await drained();
    await q.idle();
    await q.stop(1000);
    assert.deepEqual(problems, []);
    assert.deepEqual([...succeeded.keys()].sort(), [...ids].sort(), 'every entry archived');
    assert.ok([...succeeded.values()].every((n) => n === 1), 'none archived twice');
    assert.deepEqual(intake.counts(), { active: 0, deferred: 0, corrupt: 0 });
  });
}

test('a rescan pages past more held entries than the ready list holds and finds the active ones behind them', async () => {
  for (let i = 0; i < 1200; i++) await commit(i, 'held');
  const active: string[] = [];
  for (let i = 0; i < 30; i++) active.push((await commit(1000 + i)).record.id);
  const archived: string[] = [];
  const q = new QueueManager(intake, async (r) => {
    archived.push(r.id);
  }, { activeWindow: 2, maxAttempts: 3, retryBaseSeconds: 1, retryMaxSeconds: 1, maxReady: 10 }, logger);
  // As after a restart with a full ready list: the first 10 are handed in, the rest wait for a rescan.
  q.start((await intake.list(5000)).filter((r) => r.state === 'active'));
  await drained();
  await q.idle();
  await q.stop(1000);
  assert.deepEqual([...archived].sort(), [...active].sort());
  assert.equal(intake.heldCount(), 1200, 'held entries are never taken');
});

test('entries handed over by the receiver are fresh (even past the in-memory budget); entries found in the intake are not', async () => {
  const left = [(await commit(900)).record.id, (await commit(901)).record.id]; // as if left by an earlier run
  const seen = new Map<string, { fresh: boolean; inline: boolean }>();
  const q = new QueueManager(intake, async (r, inline, fresh) => {
    seen.set(r.id, { fresh, inline: inline !== null });
  }, { activeWindow: 1, maxAttempts: 3, retryBaseSeconds: 1, retryMaxSeconds: 1, maxReady: 4, maxInlineBytes: 300 }, logger);
  q.start((await intake.list(100)).filter((r) => left.includes(r.id)));
  const handed: string[] = [];
  for (let i = 0; i < 12; i++) {
    const c = await commit(i);
    q.enqueue(c.record, c.inline);
    handed.push(c.record.id);
  }
  await drained();
  await q.idle();
  await q.stop(1000);
  for (const id of left) assert.deepEqual(seen.get(id), { fresh: false, inline: false }, 'found in the intake at start');
  const direct = handed.filter((id) => seen.get(id)?.fresh);
  const rescanned = handed.filter((id) => seen.get(id)?.fresh === false);
  assert.equal(direct.length + rescanned.length, handed.length, 'every entry archived');
  assert.ok(direct.some((id) => !seen.get(id)?.inline), 'an entry past the in-memory budget is still fresh');
  assert.ok(rescanned.length > 0, 'entries that did not fit the ready list were found by a rescan');
  assert.ok(rescanned.every((id) => !seen.get(id)?.inline));
});
