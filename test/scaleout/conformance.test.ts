// Runs the ArchiveStore conformance suite, unchanged, against the scale-out backend: KvArchiveStore over
// PgS3Engine (records in the tier's real PostgreSQL, blob bytes in its real Ceph RGW with Object Lock).
// The file migrates one database; each test starts from emptied tables (TRUNCATE is ~30× faster than a
// new database) and a new bucket.
import { runArchiveStoreConformance } from '../../core/storage/conformance.ts';
import { KvArchiveStore } from '../../core/storage/kv-archive.ts';
import { PgKvEngine } from '../../core/storage/pg-kv-engine.ts';
import { PgS3Engine } from '../../core/storage/pg-s3-engine.ts';
import { S3BlobStore } from '../../core/storage/s3-blob-store.ts';
import { after } from 'node:test';
import pg from 'pg';
import { TABLES } from '../../core/storage/pg-schema.ts';
import { enginesFromEnv, freshDatabase, freshBucket } from './engines.ts';

const tier = enginesFromEnv();
const db = await freshDatabase(tier.pgUrl);
after(() => db.drop());

async function emptyArchive(): Promise<void> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'postern_schema'");
    if ((rows[0]?.n ?? 0) === 0) return; // not migrated yet: the first open creates empty tables
    await client.query(`TRUNCATE ${TABLES.map((t) => t.table).join(', ')}, nodes, job_slots`);
  } finally {
    await client.end();
  }
}

runArchiveStoreConformance('postgres-s3', async () => {
  await emptyArchive();
  const bucket = await freshBucket(tier.s3);
  const open = async (): Promise<KvArchiveStore> => {
    const engine = new PgS3Engine(
      new PgKvEngine({ url: db.url, poolSize: 4 }),
      new S3BlobStore({ ...tier.s3, bucket, forcePathStyle: true, createBucket: false }),
    );
    const store = new KvArchiveStore(engine, { backend: 'postgres-s3' });
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
      await current.close();
    },
  };
});
