// `postern migrate --to postgres-s3`: copies the embedded archive of dataDir into the scale-out backend
// named by the configuration's storage.postgres and storage.s3 keys (storage.backend may still say
// rocksdb, or already postgres-s3: the source is always dataDir/archive). Order: retention of each blob
// read from the source; chunks → S3 objects (with that retention); records → PostgreSQL; the archive's
// legal-hold sweep on the target; then a full comparison (compare.ts). Resumable from the checkpoint in
// the target (state.ts). Refuses a running server on the source (RocksDB's lock), and a target that holds
// anything but an unfinished or finished migration of this very source.
import { PosternError } from '../errors.ts';
import type { Config } from '../config/schema.ts';
import { createArchiveBackend } from '../storage/archive-backend.ts';
import { archiveStoreOptions, cipherFrom } from '../storage/archive-store-options.ts';
import { KvArchiveStore } from '../storage/kv-archive.ts';
import type { LegalHoldSweep } from '../storage/object-lock-sweep.ts';
import type { PgS3Engine } from '../storage/pg-s3-engine.ts';
import { compareArchives, type MigrationReport } from './compare.ts';
import { copyChunks, copyRecords, type CopyProgress } from './copy.ts';
import { retentionByBlob } from './protection.ts';
import { openSource } from './source.ts';
import { MigrationState, type Checkpoint } from './state.ts';

export interface MigrateOptions {
  /** Keys per PostgreSQL transaction and chunks per checkpoint. */
  batch: number;
  onPhase?: (what: string) => void;
  onProgress?: (p: CopyProgress) => void;
}

export interface MigrateResult {
  source: { path: string; id: string; sequence: number };
  target: { postgres: string; bucket: string };
  /** How this run began: a new migration, a resumed one (and from which phase), or a finished one re-verified. */
  start: { kind: 'new' | 'resumed' | 'restarted' | 'finished'; phase: Checkpoint['phase'] };
  chunks: CopyProgress | null;
  records: CopyProgress | null;
  holds: LegalHoldSweep | null;
  report: MigrationReport;
}

/** The configuration with the target backend selected, after checking it names one. */
function targetConfig(config: Config): Config {
  const { postgres, s3 } = config.storage;
  const missing = [
    postgres.url === '' && 'storage.postgres.url', s3.endpoint === '' && 'storage.s3.endpoint',
    s3.accessKeyId === '' && 'storage.s3.accessKeyId', s3.secretAccessKeyFile === '' && 'storage.s3.secretAccessKeyFile',
  ].filter((m): m is string => m !== false);
  if (missing.length > 0) throw new PosternError('CONFIG_INVALID', `The migration target is not configured: set ${missing.join(', ')} (or their POSTERN_STORAGE_* variables)`);
  return { ...config, storage: { ...config.storage, backend: 'postgres-s3' } };
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

async function openTarget(config: Config): Promise<PgS3Engine> {
  const backend = await createArchiveBackend(config, {});
  if (backend.kind !== 'postgres-s3') throw new PosternError('CONFIG_INVALID', 'The migration target must be storage.backend postgres-s3');
  return backend.engine;
}

export async function migrateToPostgresS3(config: Config, options: MigrateOptions): Promise<MigrateResult> {
  const phase = options.onPhase ?? (() => undefined);
  const target = targetConfig(config);
  const { cipher } = cipherFrom(config.storage.encryptionKeyFile);
  const source = await openSource(config.dataDir);
  const engine = await openTarget(target);
  try {
    await engine.open();
    const state = new MigrationState(engine.meta);
    await state.ensureTable();
    let cp = await state.read();
    let kind: MigrateResult['start']['kind'] = 'resumed';
    if (cp === null) {
      if (!(await state.archiveEmpty())) {
        throw new PosternError('CONFLICT', `The target PostgreSQL database already holds an archive that is not a migration of "${source.path}"; migrate only into an empty database`);
      }
      cp = { source: source.id, sequence: source.sequence, phase: 'chunks', lastKey: null, startedAt: new Date().toISOString(), finishedAt: null };
      await state.save(cp);
      kind = 'new';
    } else if (cp.source !== source.id) {
      throw new PosternError('CONFLICT', `The target holds a migration of another archive (RocksDB id "${cp.source}"; this one is "${source.id}"); migrate only into an empty database`);
    } else if (cp.sequence !== source.sequence) {
      if (cp.phase === 'done') {
        throw new PosternError('CONFLICT', `The target was migrated from this archive when its last commit was ${cp.sequence}; the archive has changed since (now ${source.sequence}: a server ran on it). The target may hold new mail of its own, so it is not overwritten; migrate into an empty database`);
      }
      // An unfinished copy of an archive that changed meanwhile: start again (records only; objects are content-addressed).
      phase('the source changed since the interrupted migration began: starting again');
      await state.clearArchive();
      cp = { source: source.id, sequence: source.sequence, phase: 'chunks', lastKey: null, startedAt: new Date().toISOString(), finishedAt: null };
      await state.save(cp);
      kind = 'restarted';
    } else if (cp.phase === 'done') {
      kind = 'finished';
    }
    const start = { kind, phase: cp.phase };

    phase('reading retention');
    const retention = await retentionByBlob(source.engine);
    const copyOptions = { batch: options.batch, ...(options.onProgress ? { onProgress: options.onProgress } : {}) };
    let chunks: CopyProgress | null = null;
    let records: CopyProgress | null = null;
    let holds: LegalHoldSweep | null = null;
    if (cp.phase === 'chunks') {
      phase('copying blob chunks to S3');
      chunks = await copyChunks(source.engine, engine, retention, state, cp, copyOptions);
      cp.phase = 'records';
      cp.lastKey = null;
      await state.save(cp);
    }
    if (cp.phase === 'records') {
      phase('copying records to PostgreSQL');
      records = await copyRecords(source.engine, engine, state, cp, copyOptions);
      cp.phase = 'holds';
      cp.lastKey = null;
      await state.save(cp);
    }
    if (cp.phase === 'holds') {
      phase('setting legal holds');
      // The archive's own sweep over the copied records (the server's hold logic); every object was just
      // written without a hold, so only held blobs are touched.
      const archive = new KvArchiveStore(await openTarget(target), archiveStoreOptions(target, 'postgres-s3'));
      await archive.open();
      try {
        holds = await archive.setLegalHoldsAfterCopy();
      } finally {
        await archive.close();
      }
      cp.phase = 'done';
      cp.finishedAt = new Date().toISOString();
      await state.save(cp);
    }
    const report = await compareArchives(source.engine, engine, retention, cipher, phase);
    return {
      source: { path: source.path, id: source.id, sequence: source.sequence },
      target: { postgres: redactUrl(target.storage.postgres.url), bucket: target.storage.s3.bucket },
      start, chunks, records, holds, report,
    };
  } finally {
    await engine.close();
    await source.close();
  }
}
