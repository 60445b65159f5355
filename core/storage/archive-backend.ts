// Builds the archive's engine from storage.backend: the embedded RocksDB in dataDir/archive, or the
// scale-out pair (PostgreSQL records + S3 Object Lock bytes). Reads the secrets the configuration
// names by file. Everything above sees a KvEngine; only backup needs to know it has the embedded one.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PosternError, errorMessage } from '../errors.ts';
import type { Config } from '../config/schema.ts';
import type { KvEngine } from './kv.ts';
import { RocksEngine, type RocksEngineOptions } from './rocksdb-engine.ts';
// Types only: the PostgreSQL driver and the S3 SDK (1.5-3.5 s to load on a busy 2-core machine) are
// imported when the configuration asks for postgres-s3, never by the embedded default.
import type { PgS3Engine, PgS3EngineEvents } from './pg-s3-engine.ts';

export type ArchiveBackend =
  | { kind: 'rocksdb'; engine: RocksEngine }
  | { kind: 'postgres-s3'; engine: PgS3Engine; node: string };

function secret(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new PosternError('CONFIG_INVALID', `Cannot read the ${what} file "${file}": ${errorMessage(err)}`);
  }
}

export function nodeName(config: Config): string {
  return config.storage.node || hostname();
}

export async function createArchiveBackend(config: Config, rocks: RocksEngineOptions, events: PgS3EngineEvents & { onPgError?: (err: Error) => void } = {}): Promise<ArchiveBackend> {
  const s = config.storage;
  if (s.backend === 'rocksdb') return { kind: 'rocksdb', engine: new RocksEngine(join(config.dataDir, 'archive'), rocks) };
  const node = nodeName(config);
  const [{ PgKvEngine }, { S3BlobStore }, { PgS3Engine: Engine }] = await Promise.all([
    import('./pg-kv-engine.ts'), import('./s3-blob-store.ts'), import('./pg-s3-engine.ts'),
  ]);
  const meta = new PgKvEngine({
    url: s.postgres.url, poolSize: s.postgres.poolSize, node,
    ...(s.postgres.passwordFile ? { password: secret(s.postgres.passwordFile, 'storage.postgres.passwordFile') } : {}),
    ...(events.onPgError ? { onError: events.onPgError } : {}),
  });
  const blobs = new S3BlobStore({
    endpoint: s.s3.endpoint, region: s.s3.region, bucket: s.s3.bucket, accessKeyId: s.s3.accessKeyId,
    secretAccessKey: secret(s.s3.secretAccessKeyFile, 'storage.s3.secretAccessKeyFile'),
    forcePathStyle: s.s3.forcePathStyle, createBucket: s.s3.createBucket, timeoutSeconds: s.s3.timeoutSeconds,
  });
  return { kind: 'postgres-s3', engine: new Engine(meta, blobs, events), node };
}

export type { KvEngine };
