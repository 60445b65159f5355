// Fault tier: the RocksDB engine on a full disk (a real tmpfs, mounted here; needs root, as CI has).
// Every write acknowledged before, during and after the disk was full must survive a close and reopen,
// and a database that lost acknowledged writes anyway (an older copy put back) must say so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RocksEngine } from '../../core/storage/rocksdb-engine.ts';
import { isPosternError } from '../../core/errors.ts';

function mountTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
}
function growTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-o', `remount,size=${size}`, dir]);
}
function umount(dir: string): void {
  try { execFileSync('umount', ['-l', dir]); } catch { /* already gone */ }
}

const value = (i: number): Buffer => Buffer.alloc(32 * 1024, i % 251);

test('writes acknowledged after a full disk was freed survive a reopen (was: lost behind a torn WAL record)', async () => {
  const mnt = mkdtempSync(join(tmpdir(), 'postern-full-'));
  mountTmpfs(mnt, '8m');
  try {
    const failures: string[] = [];
    const recoveries: boolean[] = [];
    const open = (): RocksEngine => new RocksEngine(join(mnt, 'db'), {
      writeBufferSize: 64 * 1024 * 1024, compression: false,
      onWriteFailure: (err) => failures.push(err.message), onRecovery: (ok) => recoveries.push(ok),
    });
    let engine = open();
    await engine.open();
    const acked: string[] = [];
    let refused = 0;
    // Fill the disk: concurrent synced writers, as SMTP sessions would be.
    for (let round = 0; round < 400 && refused < 20; round++) {
      const results = await Promise.allSettled(Array.from({ length: 4 }, (_, k) => {
        const key = `k${String(round * 4 + k).padStart(6, '0')}`;
        return engine.write([{ type: 'put', key, value: value(round) }], { sync: true }).then(() => key);
      }));
      for (const r of results) {
        if (r.status === 'fulfilled') acked.push(r.value);
        else {
          refused++;
          assert.ok(isPosternError(r.reason), `a refused write is a typed error: ${String(r.reason)}`);
        }
      }
    }
    assert.ok(refused >= 20, 'the disk filled up');
    assert.ok(failures.length >= 1, 'the failure was reported');
    assert.ok(engine.failed, 'the engine refuses writes until reopened');

    growTmpfs(mnt, '128m');
    await new Promise((r) => setTimeout(r, 1100));
    // After space returns, writes are accepted again (the engine reopens itself first).
    let after = 0;
    for (let i = 0; i < 300; i++) {
      const key = `z${String(i).padStart(6, '0')}`;
      try {
        await engine.write([{ type: 'put', key, value: value(i) }], { sync: true });
        acked.push(key);
        after++;
      } catch (err) {
        assert.ok(i < 5, `writes keep failing after the disk was freed: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 1100));
      }
    }
    assert.ok(after >= 295, `writes resumed after the disk was freed (${after})`);
    assert.ok(recoveries.includes(true), 'the engine reopened itself');
    await engine.close();

    engine = open();
    await engine.open();
    const values = await engine.getMany(acked);
    const missing = acked.filter((_, i) => values[i] === null);
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${acked.length} acknowledged writes lost`);
    assert.deepEqual(engine.losses(), []);
    await engine.close();
  } finally {
    umount(mnt);
    rmSync(mnt, { recursive: true, force: true });
  }
});

test('a database that lost acknowledged writes (an older copy put back) reports the loss at open, and keeps reporting it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-ledger-'));
  try {
    const db = join(dir, 'db');
    let engine = new RocksEngine(db);
    await engine.open();
    for (let i = 0; i < 5; i++) await engine.write([{ type: 'put', key: `a${i}`, value: value(i) }], { sync: true });
    await engine.close();
    cpSync(db, join(dir, 'older'), { recursive: true });
    engine = new RocksEngine(db);
    await engine.open();
    for (let i = 0; i < 7; i++) await engine.write([{ type: 'put', key: `b${i}`, value: value(i) }], { sync: true });
    await engine.close();
    rmSync(db, { recursive: true });
    cpSync(join(dir, 'older'), db, { recursive: true });

    const seen: number[] = [];
    engine = new RocksEngine(db, { onWriteLoss: (l) => seen.push(l.batches) });
    await engine.open();
    assert.deepEqual(seen, [7]);
    assert.equal(engine.losses()[0]?.batches, 7);
    await engine.close();
    engine = new RocksEngine(db);
    await engine.open();
    assert.equal(engine.losses().length, 1, 'the loss is kept in the database');
    await engine.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
