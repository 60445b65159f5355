// An archive storage that cannot be reached (PostgreSQL or S3 down) is not the entry's fault: however
// many retries the outage takes, the entry is deferred without counting an attempt and archived once the
// storage returns; a failure of the data itself still counts and ends in quarantine at maxAttempts.
// The unreachable errors are real ones: node-postgres and the S3 client against a closed port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Intake } from '../../../core/intake/intake.ts';
import { QueueManager } from '../../../core/intake/queue-manager.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { isStorageUnavailable } from '../../../core/storage/unavailable.ts';
import { PosternError } from '../../../core/errors.ts';
import { HookFailure } from '../../../core/app/hooks.ts';
import { createMemoryLogger } from '../../../core/log.ts';

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function pgConnectError(): Promise<unknown> {
  const c = new pg.Client({ host: '127.0.0.1', port: await closedPort(), user: 'x', database: 'x', connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
  } catch (err) {
    return err;
  }
  throw new Error('connected to a closed port');
}

async function s3ConnectError(): Promise<unknown> {
  const c = new S3Client({ endpoint: `http://127.0.0.1:${await closedPort()}`, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  try {
    await c.send(new HeadBucketCommand({ Bucket: 'b' }));
  } catch (err) {
    return err;
  } finally {
    c.destroy();
  }
  throw new Error('reached a closed port');
}

test('unreachable PostgreSQL and S3 are storage unavailability; bad data and other codes are not', async () => {
  const pgErr = await pgConnectError();
  const s3Err = await s3ConnectError();
  assert.equal(isStorageUnavailable(new PosternError('STORAGE_IO', 'PostgreSQL connect failed', { cause: pgErr })), true);
  assert.equal(isStorageUnavailable(new PosternError('STORAGE_IO', 'S3 PUT failed', { cause: s3Err })), true);
  assert.equal(isStorageUnavailable(new PosternError('STORAGE_IO', 'PostgreSQL query failed', { cause: Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }) })), true);
  assert.equal(isStorageUnavailable(new PosternError('STORAGE_RECOVERING', 'reopening')), true);
  // A plugin hook that read the archive: the hook's failure wraps the storage's.
  assert.equal(isStorageUnavailable(new HookFailure('dedup', 'dedup', new PosternError('STORAGE_IO', 'PostgreSQL query failed', { cause: pgErr }), false)), true);
  assert.equal(isStorageUnavailable(new HookFailure('dedup', 'dedup', new Error('plugin bug'), false)), false);
  // The data itself, or a refusal that will not change by waiting: counted as usual.
  assert.equal(isStorageUnavailable(new PosternError('STORAGE_IO', 'Blob chunk does not decode')), false);
  assert.equal(isStorageUnavailable(new PosternError('STORAGE_IO', 'unique violation', { cause: Object.assign(new Error('duplicate key'), { code: '23505' }) })), false);
  assert.equal(isStorageUnavailable(new PosternError('INTAKE_CORRUPT', 'bad', { cause: pgErr })), false);
  assert.equal(isStorageUnavailable(pgErr), false, 'only the storage layer\'s typed errors are judged');
});

async function withIntake(n: number, fn: (intake: Intake, ids: string[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-outage-'));
  const intake = new Intake(new RocksEngine(join(dir, 'intake')), join(dir, 'intake'), 64 * 1024);
  await intake.open();
  try {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const w = intake.writer();
      await w.write(Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`));
      ids.push((await w.commit({ listener: 'smtp', envelope: { mailFrom: 'a@x.org', rcptTo: ['b@y.org'] }, session: { remoteAddress: '127.0.0.1', helo: 'h', user: null } })).record.id);
    }
    await fn(intake, ids);
  } finally {
    await intake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const until = async (cond: () => boolean, ms: number): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
};

test('an outage longer than maxAttempts retries quarantines nothing and archives everything when it ends', async () => {
  const unreachable = new PosternError('STORAGE_IO', 'PostgreSQL connect failed', { cause: await pgConnectError() });
  await withIntake(3, async (intake, ids) => {
    const tries = new Map<string, number>();
    const archived = new Set<string>();
    let down = true;
    const { logger } = createMemoryLogger();
    const q = new QueueManager(intake, async (r) => {
      tries.set(r.id, (tries.get(r.id) ?? 0) + 1);
      if (down) throw unreachable;
      archived.add(r.id);
    }, { activeWindow: 2, maxAttempts: 2, retryBaseSeconds: 0.01, retryMaxSeconds: 0.05 }, logger);
    q.start(await intake.list());
    await until(() => ids.every((id) => (tries.get(id) ?? 0) >= 4), 10_000);
    for (const id of ids) assert.ok((tries.get(id) ?? 0) >= 4, `entry tried ${tries.get(id) ?? 0} times during the outage (more than maxAttempts 2)`);
    const during = await intake.list();
    assert.deepEqual(during.map((r) => [r.state, r.attempts]), ids.map(() => ['deferred', 0]), 'deferred, no attempt counted, none corrupt');
    assert.match(during[0]?.lastError ?? '', /PostgreSQL connect failed/);
    down = false;
    await until(() => archived.size === ids.length, 5000);
    assert.deepEqual([...archived].sort(), [...ids].sort());
    await q.idle();
    await q.stop(1000);
    assert.deepEqual(await intake.list(), []);
  });
});

test('a failure of the data still counts and quarantines at maxAttempts', async () => {
  await withIntake(1, async (intake, ids) => {
    const { logger } = createMemoryLogger();
    let tries = 0;
    const q = new QueueManager(intake, async () => {
      tries += 1;
      throw new PosternError('STORAGE_IO', 'Blob chunk does not decode');
    }, { activeWindow: 1, maxAttempts: 2, retryBaseSeconds: 0.01, retryMaxSeconds: 0.05 }, logger);
    q.start(await intake.list());
    await until(() => intake.counts().corrupt === 1, 5000);
    await q.stop(1000);
    const [r] = await intake.list();
    assert.equal(r?.id, ids[0]);
    assert.equal(r?.state, 'corrupt');
    assert.equal(r?.attempts, 2);
    assert.equal(tries, 2);
  });
});
