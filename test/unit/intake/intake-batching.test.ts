// The intake's hand-offs to the database threads are per turn, not per entry (the queue manager ends
// and starts entries in bursts). Inline reads of one turn share one getMany, and each caller still gets
// its own entry's bytes; a spooled entry has none; an entry whose data is gone is reported as corrupt.
// In-flight marks and removals of one turn share one unsynced write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Intake, type IntakeRecord } from '../../../core/intake/intake.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { isPosternError } from '../../../core/errors.ts';
import type { KvOp } from '../../../core/storage/kv.ts';

/** A RocksEngine that counts its reads. */
class CountingEngine extends RocksEngine {
  writes: Array<{ ops: KvOp[]; sync: boolean }> = [];
  override write(ops: KvOp[], opts: { sync: boolean }): Promise<void> {
    this.writes.push({ ops: [...ops], sync: opts.sync });
    return super.write(ops, opts);
  }
  gets = 0;
  getManys: number[] = [];
  override get(key: string): Promise<Buffer | null> {
    this.gets++;
    return super.get(key);
  }
  override getMany(keys: string[]): Promise<Array<Buffer | null>> {
    this.getManys.push(keys.length);
    return super.getMany(keys);
  }
}

async function withIntake(run: (intake: Intake, engine: CountingEngine) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-intake-reads-'));
  const engine = new CountingEngine(join(dir, 'intake'));
  const intake = new Intake(engine, join(dir, 'intake'), 64 * 1024);
  await intake.open();
  try {
    await run(intake, engine);
  } finally {
    await intake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function commit(intake: Intake, body: Buffer): Promise<IntakeRecord> {
  const w = intake.writer();
  await w.write(body);
  const { record } = await w.commit({ listener: 'smtp', envelope: { mailFrom: 'a@x.org', rcptTo: ['b@y.org'] }, session: { remoteAddress: '127.0.0.1', helo: 'h', user: null } });
  return record;
}

test('inline reads asked for in one turn share one getMany and each gets its own bytes', async () => {
  await withIntake(async (intake, engine) => {
    const bodies = Array.from({ length: 9 }, (_, i) => Buffer.from(`Subject: ${i}\r\n\r\n${'x'.repeat(100 * i)}\r\n`));
    const records: IntakeRecord[] = [];
    for (const b of bodies) records.push(await commit(intake, b));
    const spooled = await commit(intake, Buffer.alloc(100 * 1024, 0x62));
    assert.equal(spooled.storage, 'file');
    engine.gets = 0;
    engine.getManys = [];
    const read = await Promise.all([...records.map((r) => intake.inlineData(r)), intake.inlineData(spooled)]);
    assert.deepEqual(engine.getManys, [9], 'one getMany for the nine inline entries, nothing for the spooled one');
    assert.equal(engine.gets, 0);
    bodies.forEach((b, i) => assert.ok(read[i]?.equals(b), `entry ${i} gets its own bytes`));
    assert.equal(read[9], null, 'a spooled entry has no inline bytes');
    // Reads in later turns are batches of their own.
    assert.ok((await intake.inlineData(records[3] as IntakeRecord))?.equals(bodies[3] as Buffer));
    assert.deepEqual(engine.getManys, [9, 1]);
  });
});

test('an entry whose inline data is gone is reported as corrupt; the others of its batch are read', async () => {
  await withIntake(async (intake) => {
    const a = await commit(intake, Buffer.from('Subject: a\r\n\r\na\r\n'));
    const b = await commit(intake, Buffer.from('Subject: b\r\n\r\nb\r\n'));
    const [ra, rb] = await Promise.allSettled([intake.inlineData({ ...a, id: `${a.id}-missing` }), intake.inlineData(b)]);
    assert.equal(ra.status, 'rejected');
    assert.ok(isPosternError((ra as PromiseRejectedResult).reason, 'INTAKE_CORRUPT'));
    assert.equal(rb.status, 'fulfilled');
    assert.ok((rb as PromiseFulfilledResult<Buffer | null>).value?.toString().includes('Subject: b'));
  });
});

test('in-flight marks and removals of one turn share one unsynced write, in the order asked', async () => {
  await withIntake(async (intake, engine) => {
    const done = [await commit(intake, Buffer.from('Subject: 1\r\n\r\n1\r\n')), await commit(intake, Buffer.from('Subject: 2\r\n\r\n2\r\n'))];
    const next = [await commit(intake, Buffer.from('Subject: 3\r\n\r\n3\r\n')), await commit(intake, Buffer.from('Subject: 4\r\n\r\n4\r\n'))];
    await Promise.all(done.map((r) => intake.markInFlight(r.id)));
    engine.writes = [];
    await Promise.all([...done.map((r) => intake.remove(r)), ...next.map((r) => intake.markInFlight(r.id))]);
    assert.equal(engine.writes.length, 1, 'one write for the turn');
    const [w] = engine.writes as [{ ops: KvOp[]; sync: boolean }];
    assert.equal(w.sync, false);
    assert.equal(w.ops.length, 2 * 3 + 2, 'three deletions per removed entry, one put per mark');
    assert.deepEqual(w.ops.map((o) => o.type), ['del', 'del', 'del', 'del', 'del', 'del', 'put', 'put']);
    assert.deepEqual((await intake.list()).map((r) => r.id), next.map((r) => r.id), 'the removed entries are gone');
  });
});
