// The intake's bookkeeping writes go to the database threads once per turn, not once per entry (the
// queue manager ends and starts entries in bursts): in-flight marks and removals of one turn share one
// unsynced write. (Inline reads stay single-key gets: see RocksEngine.getFrom.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Intake, type IntakeRecord } from '../../../core/intake/intake.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import type { KvOp } from '../../../core/storage/kv.ts';

/** A RocksEngine that records its writes. */
class CountingEngine extends RocksEngine {
  writes: Array<{ ops: KvOp[]; sync: boolean }> = [];
  override write(ops: KvOp[], opts: { sync: boolean }): Promise<void> {
    this.writes.push({ ops: [...ops], sync: opts.sync });
    return super.write(ops, opts);
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
