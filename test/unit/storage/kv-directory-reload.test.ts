// The directory index routes every message: reloading it (another node's change, a LISTEN reconnect on
// postgres-s3) must not leave it empty when the users cannot be read, or mail for known users would be
// filed into the unmatched archive until the next successful reload (seen after a PostgreSQL outage).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvDirectory } from '../../../core/storage/kv-directory.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';

test('a reload whose read fails keeps the directory index it had', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-dir-reload-'));
  const engine = new RocksEngine(join(dir, 'db'));
  await engine.open();
  try {
    const directory = new KvDirectory(engine);
    await directory.add({ name: 'alice', addresses: ['alice@example.com'] });
    await directory.load();
    assert.equal(directory.byAddress('alice@example.com'), 'alice');
    await engine.close(); // the storage goes away
    await assert.rejects(directory.reload());
    assert.equal(directory.byAddress('alice@example.com'), 'alice', 'the index still routes alice');
  } finally {
    await engine.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});
