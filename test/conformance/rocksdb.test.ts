// Runs the ArchiveStore conformance suite against the embedded backend: KvArchiveStore over RocksEngine,
// each test in a fresh temporary directory that is removed afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runArchiveStoreConformance } from '../../core/storage/conformance.ts';
import { KvArchiveStore } from '../../core/storage/kv-archive.ts';
import { RocksEngine } from '../../core/storage/rocksdb-engine.ts';

runArchiveStoreConformance('rocksdb', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-conformance-'));
  const location = join(dir, 'archive');
  const open = async (): Promise<KvArchiveStore> => {
    const store = new KvArchiveStore(new RocksEngine(location));
    await store.open();
    return store;
  };
  let current = await open();
  return {
    store: current,
    reopen: async () => {
      current = await open();
      return current;
    },
    cleanup: async () => {
      try {
        await current.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
});
