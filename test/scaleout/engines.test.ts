// The scale-out tier's engines themselves, through their own APIs (no Postern code): RGW's Object Lock
// refuses what the postgres-s3 backend relies on it refusing, with the exact S3 client options the backend
// uses (s3ClientConfig); PostgreSQL answers and its advisory locks exclude across connections; and the
// pause handles the fault tests use (PostgreSQL stop/start, RGW stop/start) keep the data.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import pg from 'pg';
import { waitFor } from '../interop/harness.ts';
import { enginesFromEnv, freshBucket, freshDatabase, s3ClientConfig, type TierEngines } from './engines.ts';

const DAY_MS = 86_400_000;
let engines: TierEngines;
let s3: S3Client;
let bucket: string;
let db: Awaited<ReturnType<typeof freshDatabase>>;

before(async () => {
  engines = enginesFromEnv();
  s3 = new S3Client(s3ClientConfig(engines.s3));
  bucket = await freshBucket(engines.s3);
  db = await freshDatabase(engines.pgUrl);
});

after(async () => {
  // A failed pause test must not leave the tier's shared engines down for the files after this one.
  await engines?.postgres.start();
  await engines?.ceph.startRgw();
  s3?.destroy();
  await db?.drop();
});

/** Asserts that `p` fails as S3 error `code` with HTTP `status`. */
async function refused(p: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(p, (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(err.name, code, `expected ${code}, got ${err.name}: ${err.message}`);
    assert.equal(err.$metadata?.httpStatusCode, status);
    return true;
  });
}

async function putLocked(key: string, body: string, retainUntil: Date): Promise<string> {
  const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: retainUntil }));
  assert.ok(put.VersionId, 'an Object Lock bucket is versioned: PUT returns a version');
  return put.VersionId;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

test('the bucket is created with Object Lock enabled', async () => {
  const cfg = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
  assert.equal(cfg.ObjectLockConfiguration?.ObjectLockEnabled, 'Enabled');
});

test('a streamed body of known length is stored as sent (no aws-chunked checksum trailer, which RGW 16 refuses)', async () => {
  const parts = [Buffer.alloc(70_000, 'a'), Buffer.alloc(70_000, 'b')];
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'blob/streamed', Body: Readable.from(parts), ContentLength: 140_000 }));
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'blob/streamed' }));
  const bytes = await got.Body?.transformToByteArray();
  assert.ok(bytes !== undefined && Buffer.from(bytes).equals(Buffer.concat(parts)));
});

test('COMPLIANCE retention: deleting the version and shortening retention are refused, extending works', async () => {
  const until = new Date(Math.ceil((Date.now() + DAY_MS) / 1000) * 1000);
  const versionId = await putLocked('blob/compliance', 'kept until tomorrow', until);
  const ret = await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: 'blob/compliance', VersionId: versionId }));
  assert.equal(ret.Retention?.Mode, 'COMPLIANCE');
  assert.equal(ret.Retention?.RetainUntilDate?.getTime(), until.getTime());

  await refused(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'blob/compliance', VersionId: versionId })), 'AccessDenied', 403);
  // Even the governance bypass does not lift COMPLIANCE.
  await refused(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'blob/compliance', VersionId: versionId, BypassGovernanceRetention: true })), 'AccessDenied', 403);
  await refused(s3.send(new PutObjectRetentionCommand({
    Bucket: bucket, Key: 'blob/compliance', VersionId: versionId,
    Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(until.getTime() - DAY_MS / 2) },
  })), 'AccessDenied', 403);
  await refused(s3.send(new PutObjectRetentionCommand({
    Bucket: bucket, Key: 'blob/compliance', VersionId: versionId,
    Retention: { Mode: 'GOVERNANCE', RetainUntilDate: until },
  })), 'AccessDenied', 403);

  const later = new Date(until.getTime() + DAY_MS);
  await s3.send(new PutObjectRetentionCommand({ Bucket: bucket, Key: 'blob/compliance', VersionId: versionId, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: later } }));
  const extended = await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: 'blob/compliance', VersionId: versionId }));
  assert.equal(extended.Retention?.RetainUntilDate?.getTime(), later.getTime());

  // A DELETE without a version only adds a delete marker: the locked version stays readable by its id.
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'blob/compliance' }));
  await refused(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'blob/compliance' })), 'NotFound', 404);
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'blob/compliance', VersionId: versionId }));
  assert.equal(await got.Body?.transformToString(), 'kept until tomorrow');
});

test('legal hold: ON refuses deleting the version, OFF allows it', async () => {
  const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'blob/held', Body: 'on hold' }));
  assert.ok(put.VersionId);
  const versionId = put.VersionId;
  await s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: 'blob/held', VersionId: versionId, LegalHold: { Status: 'ON' } }));
  await refused(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'blob/held', VersionId: versionId })), 'AccessDenied', 403);
  assert.equal((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'blob/held', VersionId: versionId }))).ObjectLockLegalHoldStatus, 'ON');

  await s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: 'blob/held', VersionId: versionId, LegalHold: { Status: 'OFF' } }));
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'blob/held', VersionId: versionId }));
  await refused(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'blob/held', VersionId: versionId })), 'NotFound', 404);
});

test('PostgreSQL answers, and an advisory lock held on one connection excludes the other', async () => {
  const one = await withClient(db.url, async (c) => (await c.query<{ one: number }>('select 1 as one')).rows[0]?.one);
  assert.equal(one, 1);
  const a = new pg.Client({ connectionString: db.url });
  const b = new pg.Client({ connectionString: db.url });
  await a.connect();
  await b.connect();
  try {
    const tryLock = async (c: pg.Client): Promise<boolean> => (await c.query<{ ok: boolean }>('select pg_try_advisory_lock(4242) as ok')).rows[0]?.ok === true;
    await a.query('select pg_advisory_lock(4242)');
    assert.equal(await tryLock(b), false, 'B must not get the lock A holds');
    // B now waits in pg_advisory_lock; it gets the lock only once A lets go.
    const events: string[] = [];
    const bWaits = b.query('select pg_advisory_lock(4242)').then(() => events.push('b locked'));
    await waitFor('B queued behind A', () => withClient(db.url, async (c) => {
      const n = (await c.query<{ n: string }>("select count(*) as n from pg_locks where locktype = 'advisory' and not granted")).rows[0]?.n;
      return n === '1' ? true : undefined;
    }));
    events.push('a unlocks');
    await a.query('select pg_advisory_unlock(4242)');
    await bWaits;
    assert.deepEqual(events, ['a unlocks', 'b locked']);
    assert.equal(await tryLock(a), false, 'now B holds it');
  } finally {
    await a.end();
    await b.end();
  }
});

test('PostgreSQL stopped and started again keeps committed data', async () => {
  await withClient(db.url, (c) => c.query("create table kept (v text); insert into kept values ('before the stop')"));
  await engines.postgres.stop();
  assert.equal(engines.postgres.running(), false);
  await assert.rejects(withClient(db.url, (c) => c.query('select 1')), /ECONNREFUSED/);
  await engines.postgres.start();
  const rows = await withClient(db.url, async (c) => (await c.query<{ v: string }>('select v from kept')).rows);
  assert.deepEqual(rows, [{ v: 'before the stop' }]);
});

test('RGW stopped and started again serves the same objects', async () => {
  const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'blob/through-restart', Body: 'still here' }));
  await engines.ceph.stopRgw();
  assert.equal(engines.ceph.rgwRunning(), false);
  await assert.rejects(fetch(`${engines.s3.endpoint}/`), 'nothing answers while RGW is stopped');
  await engines.ceph.startRgw();
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'blob/through-restart', VersionId: put.VersionId }));
  assert.equal(await got.Body?.transformToString(), 'still here');
});
