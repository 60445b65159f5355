// The real engines behind storage.backend postgres-s3, for the scale-out tier and `npm run bench:scaleout`:
// a private PostgreSQL 15 cluster (postgres.ts) and a single-node Ceph RADOS Gateway (ceph.ts), both on
// loopback. The tier starts ONE of each (launch.ts) and hands their coordinates to the test files in
// POSTERN_TEST_* variables; enginesFromEnv() reads and checks those, and reopens the engines so fault tests
// can pause them. Each test file takes its own database and bucket (freshDatabase, freshBucket).
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import pg from 'pg';
import { z } from 'zod';
import { openCeph, type Ceph } from './ceph.ts';
import { openPostgres, type Postgres } from './postgres.ts';

export { startCeph, openCeph, type Ceph, type CephOptions } from './ceph.ts';
export { startPostgres, openPostgres, type Postgres, type PostgresOptions } from './postgres.ts';

/** Where an S3-compatible store is and who we are there. */
export interface S3Coordinates {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/**
 * The S3 client options the postgres-s3 backend uses against RGW (the same as S3BlobStore's client in
 * core/storage/s3-blob-store.ts: keep them in step), as measured with Ceph 16.2.15 and @aws-sdk/client-s3
 * 3.1178 (engines.test.ts checks them):
 * - forcePathStyle: RGW on 127.0.0.1 has no DNS name for virtual-hosted buckets.
 * - region "us-east-1" (or "default", the zonegroup's own name): RGW accepts SigV4 signed for either;
 *   any other region makes CreateBucket fail with InvalidLocationConstraint.
 * - checksums only WHEN_REQUIRED: the SDK's default since 3.729 sends a streamed Body as aws-chunked with a
 *   trailing CRC32, which RGW 16 refuses (MissingContentLength); the calls that require an integrity header
 *   (PutObjectRetention, PutObjectLegalHold, DeleteObjects) still get one and RGW accepts it.
 * - Object Lock PUTs need no Content-MD5 on RGW 16 (AWS itself demands one or a checksum).
 */
export function s3ClientConfig(c: S3Coordinates): S3ClientConfig {
  return {
    endpoint: c.endpoint,
    region: c.region,
    forcePathStyle: true,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
    requestHandler: { requestTimeout: 30_000, connectionTimeout: 5_000 },
  };
}

const Env = z.object({
  POSTERN_TEST_PG_URL: z.string().startsWith('postgres://'),
  POSTERN_TEST_PG_DIR: z.string().startsWith('/'),
  POSTERN_TEST_S3_ENDPOINT: z.string().url(),
  POSTERN_TEST_S3_ACCESS_KEY: z.string().min(1),
  POSTERN_TEST_S3_SECRET_KEY: z.string().min(1),
  POSTERN_TEST_S3_REGION: z.string().min(1),
  POSTERN_TEST_CEPH_CONF: z.string().startsWith('/'),
});

export interface TierEngines {
  pgUrl: string;
  s3: S3Coordinates;
  /** The tier's PostgreSQL: stop()/start() pause and resume it for everyone (fault tests only). */
  postgres: Postgres;
  /** The tier's Ceph: stopRgw()/startRgw() for fault tests; never stop() it from a test. */
  ceph: Ceph;
}

/** The engines the tier's launcher started, from POSTERN_TEST_*; fails with a pointer to run.sh when they are missing. */
export function enginesFromEnv(env: NodeJS.ProcessEnv = process.env): TierEngines {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const missing = parsed.error.issues.map((i) => i.path.join('.')).join(', ');
    throw new Error(`Scale-out engines not set up (${missing}): run this file through "npm run test:scaleout" (test/scaleout/run.sh)`);
  }
  const e = parsed.data;
  const s3: S3Coordinates = { endpoint: e.POSTERN_TEST_S3_ENDPOINT, accessKeyId: e.POSTERN_TEST_S3_ACCESS_KEY, secretAccessKey: e.POSTERN_TEST_S3_SECRET_KEY, region: e.POSTERN_TEST_S3_REGION };
  return { pgUrl: e.POSTERN_TEST_PG_URL, s3, postgres: openPostgres(e.POSTERN_TEST_PG_DIR), ceph: openCeph(dirname(e.POSTERN_TEST_CEPH_CONF)) };
}

/** The POSTERN_TEST_* variables describing a running pair of engines (what the launcher exports). */
export function engineEnv(postgres: Postgres, ceph: Ceph): Record<keyof z.infer<typeof Env>, string> {
  return {
    POSTERN_TEST_PG_URL: postgres.url,
    POSTERN_TEST_PG_DIR: postgres.dir,
    POSTERN_TEST_S3_ENDPOINT: ceph.endpoint,
    POSTERN_TEST_S3_ACCESS_KEY: ceph.accessKeyId,
    POSTERN_TEST_S3_SECRET_KEY: ceph.secretAccessKey,
    POSTERN_TEST_S3_REGION: ceph.region,
    POSTERN_TEST_CEPH_CONF: ceph.conf,
  };
}

const suffix = (): string => randomBytes(6).toString('hex');

/** Creates database t_<random> on the cluster of `url`; returns its URL and a drop() (which ends its sessions first). */
export async function freshDatabase(url: string): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `t_${suffix()}`;
  const admin = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  return { url: u.toString(), name, drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** Creates bucket t-<random> with Object Lock enabled (so versioned); returns its name. */
export async function freshBucket(s3: S3Coordinates, prefix = 't'): Promise<string> {
  const bucket = `${prefix}-${suffix()}`;
  const client = new S3Client(s3ClientConfig(s3));
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
  } finally {
    client.destroy();
  }
  return bucket;
}
