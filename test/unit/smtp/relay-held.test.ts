// The intake's 'held' state used by the relay proxy: held entries are durable, counted apart, never
// taken by the queue manager (at start, on enqueue-less rescans, or ever), released to 'active'
// with flags, and — after a restart — released by recoverHeldEntries with "relay-outcome-unknown".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Intake, type IntakeRecord } from '../../../core/intake/intake.ts';
import { QueueManager } from '../../../core/intake/queue-manager.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { createMemoryLogger } from '../../../core/log.ts';
import { recoverHeldEntries } from '../../../core/smtp/relay-setup.ts';

const meta = { listener: 'relay', envelope: { mailFrom: 'a@example.test', rcptTo: ['b@example.test'] }, session: { remoteAddress: '127.0.0.1', helo: 'h', user: null } };

async function held(intake: Intake, text: string): Promise<IntakeRecord> {
  const w = intake.writer();
  await w.write(Buffer.from(text));
  return (await w.commit(meta, { state: 'held' })).record;
}

test('held entries are durable, counted apart, ignored by the queue manager, and recovered flagged after a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-held-'));
  const { logger, lines } = createMemoryLogger();
  try {
    let intake = new Intake(new RocksEngine(join(dir, 'intake')), join(dir, 'intake'), 1024);
    await intake.open();
    const a = await held(intake, 'Subject: a\r\n\r\na\r\n');
    const b = await held(intake, 'Subject: b\r\n\r\n' + 'b'.repeat(4000) + '\r\n'); // spooled to a file
    assert.equal(a.state, 'held');
    assert.equal(b.storage, 'file');
    assert.equal(intake.heldCount(), 2);
    assert.deepEqual(intake.counts(), { active: 0, deferred: 0, corrupt: 0 });

    const processed: string[] = [];
    const queue = new QueueManager(intake, async (r) => { processed.push(r.id); }, { activeWindow: 4, maxAttempts: 3, retryBaseSeconds: 1, retryMaxSeconds: 1, maxReady: 1 }, logger);
    queue.start(await intake.list());
    await queue.idle();
    assert.deepEqual(processed, [], 'the queue manager never takes a held entry');

    // Released (the upstream said 250): active, flagged as asked, then archived by the queue.
    const released = await intake.release(a, { flags: ['x-test'] });
    assert.equal(released.state, 'active');
    assert.deepEqual(released.flags, ['x-test']);
    assert.equal(intake.heldCount(), 1);
    queue.enqueue(released, null);
    await queue.idle();
    assert.deepEqual(processed, [a.id]);
    await queue.stop(1000);
    await intake.close();

    // Restart with b still held: recovery releases it flagged and hands it on.
    intake = new Intake(new RocksEngine(join(dir, 'intake')), join(dir, 'intake'), 1024);
    const existing = await intake.open();
    assert.equal(intake.heldCount(), 1, 'held entries survive a restart with their spool file');
    const handed: IntakeRecord[] = [];
    assert.equal(await recoverHeldEntries(intake, existing, (r) => handed.push(r), logger), 1);
    assert.equal(handed[0]?.id, b.id);
    assert.equal(handed[0]?.state, 'active');
    assert.deepEqual(handed[0]?.flags, ['relay-outcome-unknown']);
    assert.equal((await intake.get(b.id))?.state, 'active', 'the release is durable');
    assert.equal(intake.heldCount(), 0);
    assert.equal(intake.counts().active, 1);
    assert.ok(lines.some((l) => l.msg === 'Relayed message with unknown upstream outcome archived (flagged)' && l.intakeId === b.id));
    await intake.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
