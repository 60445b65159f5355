// An entry whose failure cannot be recorded (the intake refuses writes, as on a full disk) must be
// retried in-process once writes work again, not left "active, processing 0" until a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Intake } from '../../../core/intake/intake.ts';
import { QueueManager } from '../../../core/intake/queue-manager.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { PosternError } from '../../../core/errors.ts';
import { createMemoryLogger } from '../../../core/log.ts';

test('entries whose deferral could not be recorded are retried without a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-stranded-'));
  const intake = new Intake(new RocksEngine(join(dir, 'intake')), join(dir, 'intake'), 64 * 1024);
  await intake.open();
  try {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const w = intake.writer();
      await w.write(Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`));
      ids.push((await w.commit({ listener: 'smtp', envelope: { mailFrom: 'a@x.org', rcptTo: ['b@y.org'] }, session: { remoteAddress: '127.0.0.1', helo: 'h', user: null } })).record.id);
    }
    // "Disk full": archiving fails, and so does recording the failure.
    let diskFull = true;
    const realSetState = intake.setState.bind(intake);
    intake.setState = async (...args) => {
      if (diskFull) throw new PosternError('STORAGE_IO', 'No space left on device');
      return realSetState(...args);
    };
    const archived = new Set<string>();
    const { logger } = createMemoryLogger();
    const q = new QueueManager(intake, async (r) => {
      if (diskFull) throw new PosternError('STORAGE_IO', 'No space left on device');
      archived.add(r.id);
    }, { activeWindow: 2, maxAttempts: 50, retryBaseSeconds: 0.05, retryMaxSeconds: 0.2 }, logger);
    q.start(await intake.list());
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(archived.size, 0);
    diskFull = false; // space returns
    const deadline = Date.now() + 5000;
    while (archived.size < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual([...archived].sort(), [...ids].sort(), 'every stranded entry archived in-process');
    await q.idle();
    await q.stop(1000);
    assert.equal((await intake.list()).length, 0);
  } finally {
    await intake.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
