// Object Lock on the postgres-s3 backend, observed with the S3 API directly (not through Postern):
// an entry's retention becomes the object's COMPLIANCE retain-until (only ever extended), a legal hold
// sets the object's legal-hold flag while it covers an entry and clears it after, and the store itself
// refuses to delete a protected version whoever asks; unprotected blobs are removed with every version.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  DeleteObjectCommand, GetObjectLegalHoldCommand, GetObjectRetentionCommand, ListObjectVersionsCommand, S3Client,
} from '@aws-sdk/client-s3';
import { KvArchiveStore } from '../../core/storage/kv-archive.ts';
import { PgKvEngine } from '../../core/storage/pg-kv-engine.ts';
import { PgS3Engine } from '../../core/storage/pg-s3-engine.ts';
import { S3BlobStore } from '../../core/storage/s3-blob-store.ts';
import { isPosternError } from '../../core/errors.ts';
import { INBOX, blobOf, commitOf, mailBytes } from '../../core/storage/conformance/fixtures.ts';
import { enginesFromEnv, freshBucket, freshDatabase, s3ClientConfig } from './engines.ts';

const tier = enginesFromEnv();
const s3 = new S3Client(s3ClientConfig(tier.s3));
let db: Awaited<ReturnType<typeof freshDatabase>>;
let bucket: string;
let store: KvArchiveStore;

before(async () => {
  db = await freshDatabase(tier.pgUrl);
  bucket = await freshBucket(tier.s3, 'lock');
  store = new KvArchiveStore(new PgS3Engine(
    new PgKvEngine({ url: db.url, poolSize: 4 }),
    new S3BlobStore({ ...tier.s3, bucket, forcePathStyle: true, createBucket: false }),
  ), { backend: 'postgres-s3' });
  await store.open();
  await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
  await store.addUser({ name: 'bob', addresses: ['bob@example.com'] });
});

after(async () => {
  await store?.close();
  s3.destroy();
  await db?.drop();
});

const keyOf = (n: number): string => `blobs/${blobOf(mailBytes(n)).sha256}`;

async function versions(key: string): Promise<string[]> {
  const v = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
  return (v.Versions ?? []).filter((x) => x.Key === key).map((x) => x.VersionId ?? '');
}

async function retainUntil(key: string): Promise<{ mode: string | undefined; until: string | undefined }> {
  const r = await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: key }));
  return { mode: r.Retention?.Mode, until: r.Retention?.RetainUntilDate?.toISOString() };
}

/** The object's legal-hold status; undefined when it never had one (RGW answers 404 for that). */
async function legalHold(key: string): Promise<string | undefined> {
  try {
    return (await s3.send(new GetObjectLegalHoldCommand({ Bucket: bucket, Key: key }))).LegalHold?.Status;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
}

/** Deleting the object's stored version straight through the S3 API, as an operator with the credentials could. */
async function directDelete(key: string): Promise<'refused' | 'deleted'> {
  const [versionId] = await versions(key);
  try {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    return 'deleted';
  } catch (err) {
    assert.equal((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 403, String(err));
    return 'refused';
  }
}

test('retention at commit becomes COMPLIANCE retain-until on the object; the store refuses deletion; it is only extended', async () => {
  const until = new Date(Date.now() + 86_400_000).toISOString();
  const r = await store.commit({ ...commitOf({ n: 1, fileInto: [INBOX('alice')] }), retention: { retainUntil: until } });
  const key = keyOf(1);
  assert.deepEqual(await retainUntil(key), { mode: 'COMPLIANCE', until });
  assert.equal(await directDelete(key), 'refused');
  await assert.rejects(store.retention().deleteEntries([{ user: 'alice', folder: 'Inbox', uid: r.entries[0]?.uid ?? 0 }]), (e: unknown) => isPosternError(e, 'HELD'));

  const later = new Date(Date.now() + 2 * 86_400_000).toISOString();
  await store.retention().extendRetention({ user: 'alice', folder: 'Inbox', uid: 1 }, later);
  assert.deepEqual(await retainUntil(key), { mode: 'COMPLIANCE', until: later });
  // A merged later capture with a shorter retention moves nothing earlier.
  await store.commit({ ...commitOf({ n: 1, captureId: 'cap-1b', fileInto: [INBOX('alice')] }), identities: [`blob:${blobOf(mailBytes(1)).sha256}`], retention: { retainUntil: until } });
  assert.deepEqual(await retainUntil(key), { mode: 'COMPLIANCE', until: later });
  assert.equal((await versions(key)).length, 1, 'the merge wrote no second copy');
});

test('a legal hold sets the flag on the objects it covers while active and clears it when released', async () => {
  await store.commit(commitOf({ n: 2, fileInto: [INBOX('bob')] }));
  await store.commit(commitOf({ n: 3, fileInto: [INBOX('alice')] }));
  const bobKey = keyOf(2);
  const aliceKey = keyOf(3);
  assert.notEqual(await legalHold(bobKey), 'ON');
  await store.retention().createHold({ name: 'case-bob', scope: { users: ['bob'] }, createdBy: 'test' });
  assert.equal(await legalHold(bobKey), 'ON');
  assert.notEqual(await legalHold(aliceKey), 'ON', 'a blob the hold does not cover stays unheld');
  assert.equal(await directDelete(bobKey), 'refused');

  // Mail arriving while the hold is active is held from its PUT on.
  await store.commit(commitOf({ n: 4, fileInto: [INBOX('bob')] }));
  assert.equal(await legalHold(keyOf(4)), 'ON');

  await store.retention().releaseHold('case-bob', 'test');
  assert.equal(await legalHold(bobKey), 'OFF');
  assert.equal(await legalHold(keyOf(4)), 'OFF');
});

test('an unprotected blob whose last entry is deleted is removed from the bucket, every version', async () => {
  const r = await store.commit(commitOf({ n: 5, fileInto: [INBOX('alice')] }));
  const key = keyOf(5);
  assert.equal((await versions(key)).length, 1);
  const res = await store.retention().deleteEntries([{ user: 'alice', folder: 'Inbox', uid: r.entries[0]?.uid ?? 0 }]);
  assert.equal(res.blobsRemoved, 1);
  assert.deepEqual(await versions(key), []);
  assert.equal(await store.openBlob(blobOf(mailBytes(5)).sha256), null);
});

test('a blob larger than one chunk is stored as one object per chunk, each protected', async () => {
  const big = Buffer.concat([mailBytes(6), Buffer.alloc(1024 * 1024 + 4096, 0x61), Buffer.from('\r\n')]);
  const until = new Date(Date.now() + 86_400_000).toISOString();
  await store.commit({ ...commitOf({ n: 6, bytes: big, fileInto: [INBOX('alice')] }), retention: { retainUntil: until } });
  const sha = blobOf(big).sha256;
  assert.deepEqual(await retainUntil(`blobs/${sha}`), { mode: 'COMPLIANCE', until });
  assert.deepEqual(await retainUntil(`blobs/${sha}.000001`), { mode: 'COMPLIANCE', until });
  const stream = await store.openBlob(sha);
  const parts: Buffer[] = [];
  for await (const c of stream ?? []) parts.push(c as Buffer);
  assert.ok(Buffer.concat(parts).equals(big), 'read back byte-identical');
});
