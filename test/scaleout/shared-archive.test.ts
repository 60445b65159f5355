// Two archive stores in one process over one PostgreSQL database and bucket stand for two nodes: what
// each caches (directory, holds, counters, the audit chain's head) follows the other's writes, through
// the cluster-wide writer lock (reloaded before a step) and NOTIFY (soon after, for reads).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KvArchiveStore } from '../../core/storage/kv-archive.ts';
import { PgKvEngine } from '../../core/storage/pg-kv-engine.ts';
import { PgS3Engine } from '../../core/storage/pg-s3-engine.ts';
import { S3BlobStore } from '../../core/storage/s3-blob-store.ts';
import { ChainedAuditLog } from '../../core/audit/log.ts';
import { isPosternError } from '../../core/errors.ts';
import { INBOX, commitOf } from '../../core/storage/conformance/fixtures.ts';
import { enginesFromEnv, freshBucket, freshDatabase } from './engines.ts';

const tier = enginesFromEnv();
let db: Awaited<ReturnType<typeof freshDatabase>>;
let bucket: string;
let a: KvArchiveStore;
let b: KvArchiveStore;

function node(name: string): KvArchiveStore {
  return new KvArchiveStore(new PgS3Engine(
    new PgKvEngine({ url: db.url, poolSize: 4, node: name }),
    new S3BlobStore({ ...tier.s3, bucket, forcePathStyle: true, createBucket: false }),
  ), { backend: 'postgres-s3' });
}

async function eventually(what: string, check: () => Promise<boolean>, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(async () => {
  db = await freshDatabase(tier.pgUrl);
  bucket = await freshBucket(tier.s3, 'shared');
  a = node('a');
  b = node('b');
  await a.open();
  await b.open();
});

after(async () => {
  await a?.close();
  await b?.close();
  await db?.drop();
});

test('a user added on one node is routed on the other within a second; an address taken on one is refused on the other', async () => {
  await a.addUser({ name: 'alice', addresses: ['alice@example.com'] });
  await eventually('node b knows alice@example.com', async () => (await b.userByAddress('alice@example.com')) === 'alice');
  await b.addUser({ name: 'bob', addresses: ['bob@example.com'] });
  await assert.rejects(a.addUser({ name: 'carol', addresses: ['BOB@example.com'] }), (e: unknown) => isPosternError(e) && /bob/i.test((e as Error).message));
});

test('UIDs and counters stay consistent when both nodes commit to one folder', async () => {
  const commits = Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).commit(commitOf({ n: `s${i}`, fileInto: [INBOX('alice')] })));
  const results = await Promise.all(commits);
  const uids = results.flatMap((r) => r.entries.map((e) => e.uid)).sort((x, y) => x - y);
  assert.deepEqual(uids, Array.from({ length: 30 }, (_, i) => i + 1));
  assert.equal((await a.stats()).entries, 30);
  assert.equal((await b.stats()).messages, 30);
  const [folder] = await b.folders('alice');
  assert.equal(folder?.uidNext, 31);
});

test('a hold created on one node protects entries from deletion through the other', async () => {
  await a.retention().createHold({ name: 'case-1', scope: { users: ['alice'] }, createdBy: 'test' });
  await assert.rejects(b.retention().deleteEntries([{ user: 'alice', folder: 'Inbox', uid: 1 }]), (e: unknown) => isPosternError(e, 'HELD'));
  await b.retention().releaseHold('case-1', 'test');
  const res = await a.retention().deleteEntries([{ user: 'alice', folder: 'Inbox', uid: 1 }]);
  assert.equal(res.deleted, 1);
  assert.equal((await b.stats()).entries, 29);
});

test('the audit chain stays one chain when both nodes append, and verifies', async () => {
  const logA = new ChainedAuditLog(a.audit());
  const logB = new ChainedAuditLog(b.audit());
  await logA.open();
  await logB.open();
  const event = (n: number) => ({ category: 'admin' as const, action: 'test.append', actor: 'test', target: `t${n}`, outcome: 'success' as const });
  const written = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? logA : logB).record(event(i))));
  assert.deepEqual(written.map((r) => r.seq).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1));
  const result = await logB.verify();
  assert.equal(result.ok, true, JSON.stringify(result.problem));
  assert.equal(result.records, 20);
  await logA.close();
  await logB.close();
});
