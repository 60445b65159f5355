// Runs the ArchiveStore conformance suite, unchanged, against the scale-out backend: KvArchiveStore over
// PgS3Engine (records in the tier's real PostgreSQL, blob bytes in its real Ceph RGW with Object Lock).
// Each test gets its own database and bucket, dropped afterwards.
import { runArchiveStoreConformance } from '../../core/storage/conformance.ts';
import { KvArchiveStore } from '../../core/storage/kv-archive.ts';
import { PgKvEngine } from '../../core/storage/pg-kv-engine.ts';
import { PgS3Engine } from '../../core/storage/pg-s3-engine.ts';
import { S3BlobStore } from '../../core/storage/s3-blob-store.ts';
import { enginesFromEnv, freshDatabase, freshBucket } from './engines.ts';

const tier = enginesFromEnv();

runArchiveStoreConformance('postgres-s3', async () => {
  const db = await freshDatabase(tier.pgUrl);
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
      try {
        await current.close();
      } finally {
        await db.drop();
      }
    },
  };
});
