// The archive writer's reads and inputs: a group of concurrent commits costs one engine lookup for all
// its captures, identities and blob manifests (no read per message), blob reference counts stay right
// when the same bytes arrive in one group and across groups, and bytes handed over in memory are used
// instead of the stream (a stream is still read when the bytes do not match the declared size).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { KvArchiveStore } from '../../../core/storage/kv-archive.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { keys } from '../../../core/storage/kv-keys.ts';
import { blobIdentity, type ArchiveCommit } from '../../../core/storage/types.ts';
import { INBOX, commitOf, mailBytes, readStream } from '../../../core/storage/conformance/fixtures.ts';

/** A RocksEngine that records every key it is asked for, one list per call. */
class CountingEngine extends RocksEngine {
  readonly reads: string[][] = [];
  override getMany(keyList: string[]): Promise<Array<Buffer | null>> {
    this.reads.push([...keyList]);
    return super.getMany(keyList);
  }
}

async function withStore(fn: (store: KvArchiveStore, engine: CountingEngine) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-writer-'));
  const engine = new CountingEngine(join(dir, 'archive'));
  const store = new KvArchiveStore(engine);
  await store.open();
  await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
  try {
    await fn(store, engine);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const withIdentity = (c: ArchiveCommit): ArchiveCommit => ({ ...c, identities: [blobIdentity(c.blob.sha256)] });

test('a group of concurrent commits reads captures, identities and blob manifests in one lookup', async () => {
  await withStore(async (store, engine) => {
    await store.commit(withIdentity(commitOf({ n: 'first', fileInto: [INBOX('alice')] })));
    engine.reads.length = 0;
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => store.commit(withIdentity(commitOf({ n: i, fileInto: [INBOX('alice')] })))));
    assert.equal(new Set(results.map((r) => r.entries[0]?.uid)).size, 24);
    const blobReads = engine.reads.filter((list) => list.some((k) => k.startsWith(keys.blob(''))));
    assert.ok(blobReads.length >= 1);
    for (const list of blobReads) {
      assert.ok(list.some((k) => k.startsWith(keys.capture(''))), 'manifests are read with the group lookup, not alone');
    }
    assert.ok(engine.reads.length <= 24 / 2, `${engine.reads.length} reads for 24 commits`);
    assert.equal((await store.stats()).blobs, 25);
  });
});

test('identical bytes in one group and in a later group: one blob, one reference per message', async () => {
  await withStore(async (store) => {
    const bytes = mailBytes('same');
    const [a, b] = await Promise.all([
      store.commit(commitOf({ n: 'a', bytes, fileInto: [INBOX('alice')] })),
      store.commit(commitOf({ n: 'b', bytes, fileInto: [INBOX('alice')] })),
    ]);
    assert.notEqual(a.messageId, b.messageId, 'no identity given: two messages sharing one blob');
    const c = await store.commit(commitOf({ n: 'c', bytes, fileInto: [INBOX('alice')] }));
    const stats = await store.stats();
    assert.equal(stats.messages, 3);
    assert.equal(stats.blobs, 1);
    const blob = await store.openBlob((await store.getMessage(c.messageId))?.blobId ?? '');
    assert.ok(blob);
    assert.deepEqual(await readStream(blob), bytes);
  });
});

test('bytes handed over in memory are stored without opening the stream; a size mismatch falls back to it', async () => {
  await withStore(async (store) => {
    const bytes = mailBytes('held');
    const base = commitOf({ n: 'held', bytes, fileInto: [INBOX('alice')] });
    const held = { ...base, blob: { sha256: base.blob.sha256, size: base.blob.size, bytes, open: (): Readable => { throw new Error('stream opened'); } } };
    const r = await store.commit(held);
    assert.deepEqual(await readStream((await store.openBlob(base.blob.sha256)) as Readable), bytes);

    const other = mailBytes('streamed');
    const base2 = commitOf({ n: 'streamed', bytes: other, fileInto: [INBOX('alice')] });
    let opened = 0;
    const wrong = { ...base2, blob: { ...base2.blob, bytes: other.subarray(0, 5), open: (): Readable => { opened++; return Readable.from([other]); } } };
    await store.commit(wrong);
    assert.equal(opened, 1, 'bytes of the wrong length are not trusted');
    assert.deepEqual(await readStream((await store.openBlob(base2.blob.sha256)) as Readable), other);
    assert.equal((await store.getMessage(r.messageId))?.size, bytes.length);
  });
});

test('a commit whose stream is longer than declared is refused, and the rest of its group is stored', async () => {
  await withStore(async (store) => {
    const bytes = mailBytes('long');
    const base = commitOf({ n: 'long', bytes, fileInto: [INBOX('alice')] });
    const lying = { ...base, blob: { ...base.blob, size: bytes.length - 1 } };
    const [bad, good] = await Promise.allSettled([store.commit(lying), store.commit(commitOf({ n: 'ok', fileInto: [INBOX('alice')] }))]);
    assert.equal(bad.status, 'rejected');
    assert.equal(good.status, 'fulfilled');
    assert.equal((await store.stats()).messages, 1);
  });
});

test('an unreadable blob manifest fails only the commit that needs it, not the rest of its group', async () => {
  await withStore(async (store, engine) => {
    const bad = commitOf({ n: 'bad', bytes: mailBytes('bad'), fileInto: [INBOX('alice')] });
    await engine.write([{ type: 'put', key: keys.blob(bad.blob.sha256), value: Buffer.from('{not json') }], { sync: true });
    const others = Array.from({ length: 5 }, (_, i) => commitOf({ n: `other-${i}`, fileInto: [INBOX('alice')] }));
    const settled = await Promise.allSettled([store.commit(others[0]!), store.commit(bad), ...others.slice(1).map((c) => store.commit(c))]);
    assert.deepEqual(settled.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    assert.equal((await store.stats()).messages, 5);
  });
});
