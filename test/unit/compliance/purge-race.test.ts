// A hold created while a purge runs (after a batch was listed, before it is deleted) is respected: the
// compliance service lists a batch, shows it to beforeDelete, then deletes exactly those entries, and the
// store re-checks holds inside its writer. The hook here creates the hold at exactly that moment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComplianceService } from '../../../core/compliance/service.ts';
import { KvArchiveStore } from '../../../core/storage/kv-archive.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { HookRegistry } from '../../../core/app/hooks.ts';
import { createLogger } from '../../../core/log.ts';
import { createMetrics } from '../../../core/metrics.ts';
import { commitOf, INBOX } from '../../../core/storage/conformance/fixtures.ts';

const PAST = '2001-01-01T00:00:00.000Z';

async function withArchive(fn: (archive: KvArchiveStore, hooks: HookRegistry, service: ComplianceService) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-purge-race-'));
  const archive = new KvArchiveStore(new RocksEngine(join(dir, 'archive')));
  try {
    await archive.open();
    await archive.addUser({ name: 'alice', addresses: ['alice@example.com'] });
    await archive.addUser({ name: 'bob', addresses: ['bob@example.com'] });
    for (let n = 1; n <= 6; n++) {
      await archive.commit({ ...commitOf({ n, fileInto: [INBOX(n <= 4 ? 'alice' : 'bob')] }), retention: { retainUntil: PAST, purgeAfter: PAST } });
    }
    const log = createLogger({ level: 'error' });
    const hooks = new HookRegistry(log, 5000);
    await fn(archive, hooks, new ComplianceService({ archive, hooks, log, metrics: createMetrics(), audit: () => null }));
  } finally {
    await archive.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a legal hold created between a purge batch\'s listing and its deletion keeps the held entries', () => withArchive(async (archive, hooks, service) => {
  let calls = 0;
  hooks.on('beforeDelete', 'race', async (info) => {
    calls += 1;
    if (calls === 1) {
      assert.equal(info.entries.length, 6, 'the batch was listed with every entry due');
      await archive.retention().createHold({ name: 'late-case', scope: { users: ['alice'] }, createdBy: 'tester' });
    }
    return { kind: 'accept' };
  });
  const run = await service.purge('tester', { batchSize: 100 });
  assert.equal(run.deleted, 2, 'bob\'s entries go');
  assert.equal(run.skippedHeld, 4, 'alice\'s entries are now held');
  assert.equal((await archive.listEntries('alice', 'Inbox')).length, 4);
  assert.equal((await archive.listEntries('bob', 'Inbox')).length, 0);
}));

test('hold-everything switched on mid-purge stops the batch', () => withArchive(async (archive, hooks, service) => {
  hooks.on('beforeDelete', 'race', async () => {
    await archive.retention().setHoldEverything(true, 'tester');
    return { kind: 'accept' };
  });
  const run = await service.purge('tester', { batchSize: 2 });
  assert.equal(run.deleted, 0);
  assert.equal(run.skippedHeld, 6);
  assert.equal((await archive.stats()).entries, 6);
}));

test('an entry whose purge date moved later between listing and deletion is not purged', () => withArchive(async (archive, hooks, service) => {
  hooks.on('beforeDelete', 'race', async () => {
    // A later copy of message 1 asks for a maximum far ahead: the entry is no longer due (its minimum
    // is past, so a manual deletion could still remove it, but the purge must not).
    await archive.commit({ ...commitOf({ n: 1, captureId: 'cap-1-again', mergeInto: 'msg-1', fileInto: [INBOX('alice')] }), retention: { purgeAfter: '2999-01-01T00:00:00.000Z' } });
    return { kind: 'accept' };
  });
  const run = await service.purge('tester', { batchSize: 100 });
  assert.equal(run.deleted, 5);
  assert.deepEqual((await archive.listEntries('alice', 'Inbox')).map((e) => e.uid), [1]);
  assert.equal((await archive.retention().getRetention({ user: 'alice', folder: 'Inbox', uid: 1 }))?.purgeAfter, '2999-01-01T00:00:00.000Z');
}));
