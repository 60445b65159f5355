// A fresh intake for each test of a file (RocksDB in a temp dir, 64 KiB inline limit): opened before
// the test, closed and removed after it. `use` receives each test's intake.
import { beforeEach, afterEach } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Intake } from '../../core/intake/intake.ts';
import { RocksEngine } from '../../core/storage/rocksdb-engine.ts';

export function freshIntakeEachTest(prefix: string, use: (intake: Intake) => void): void {
  let dir = '';
  let intake: Intake | null = null;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    intake = new Intake(new RocksEngine(join(dir, 'intake')), join(dir, 'intake'), 64 * 1024);
    await intake.open();
    use(intake);
  });
  afterEach(async () => {
    await intake?.close();
    rmSync(dir, { recursive: true, force: true });
  });
}
