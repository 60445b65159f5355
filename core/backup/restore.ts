// `postern restore DIR --data-dir NEW`: a snapshot of a backup repository into a new data directory,
// with no server running on it. The snapshot is verified first (verify.ts); the databases are built
// in a staging directory beside the target and renamed into place only when complete and synced, so
// an interrupted restore leaves no data directory that looks usable. A non-empty target is refused:
// a restore never overwrites anything.
// Trusts: a snapshot only after verification passed (sizes, hashes, structure).
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { PosternError } from '../errors.ts';
import type { KvEngine, KvOp } from '../storage/kv.ts';
import { RocksEngine } from '../storage/rocksdb-engine.ts';
import { SPOOL_RECORD_PREFIX } from './create.ts';
import { chooseSnapshot, DATA_FILES, parseChunkLine, paths, readManifest, type BackupManifest } from './manifest.ts';
import { readRecords, readValueAt } from './record-file.ts';
import { MAX_CHUNK_BYTES, verifyBackup } from './verify.ts';
import { fsyncDir } from './fsync-dir.ts';
import { metadataRecords } from './segments.ts';

/** A batch is written once it holds this many bytes or operations. */
const BATCH_BYTES = 8 * 1024 * 1024;
const BATCH_OPS = 5000;

export interface RestoreSummary {
  snapshot: string;
  dataDir: string;
  manifest: BackupManifest;
}

export async function restoreBackup(repoArg: string, options: { dataDir: string; snapshot?: string; onPhase?: (phase: string) => void }): Promise<RestoreSummary> {
  const repo = resolve(repoArg);
  const target = resolve(options.dataDir);
  const id = chooseSnapshot(repo, options.snapshot);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new PosternError('CONFLICT', `"${target}" exists and is not a directory; a restore never overwrites`);
    if (readdirSync(target).length > 0) throw new PosternError('CONFLICT', `Data directory "${target}" is not empty; a restore never overwrites (choose a new or empty directory)`);
  }
  options.onPhase?.('verifying');
  const report = await verifyBackup(repo, id);
  const checked = report.snapshots[0];
  if (!checked?.ok) throw new PosternError('BACKUP_CORRUPT', `Snapshot "${id}" of "${repo}" failed verification: ${(checked?.problems ?? []).slice(0, 5).join('; ')}`);
  const manifest = readManifest(repo, id);

  const staging = join(dirname(target), `.${basename(target)}.restoring-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true, mode: 0o700 });
  try {
    options.onPhase?.('archive');
    const archive = new RocksEngine(join(staging, 'archive'), { writeBufferSize: 64 * 1024 * 1024, compression: false });
    await archive.open();
    try {
      const batch = new Batcher(archive);
      for await (const r of metadataRecords(repo, join(repo, paths.snapshotFile(id, 'metadata.idx')))) await batch.put(r.key, r.value);
      await restoreChunks(repo, id, batch);
      await batch.finish();
    } finally {
      await archive.close();
    }

    options.onPhase?.('intake');
    const intakeDir = join(staging, 'intake');
    const spool = join(intakeDir, 'spool');
    const intake = new RocksEngine(intakeDir, { writeBufferSize: 64 * 1024 * 1024, compression: false });
    await intake.open();
    mkdirSync(spool, { recursive: true, mode: 0o700 });
    try {
      const batch = new Batcher(intake);
      for await (const r of readRecords(join(repo, paths.snapshotFile(id, 'intake.rec')), 2 ** 32 - 1)) {
        if (r.key.startsWith(SPOOL_RECORD_PREFIX)) {
          const name = r.key.slice(SPOOL_RECORD_PREFIX.length);
          if (!/^[A-Za-z0-9._-]{1,100}$/.test(name)) throw new PosternError('BACKUP_CORRUPT', `intake.rec names a spool file "${name.slice(0, 100)}" that is not an intake id`);
          const fh = await open(join(spool, `${name}.eml`), 'wx', 0o600);
          try {
            await fh.writeFile(r.value);
            await fh.sync();
          } finally {
            await fh.close();
          }
        } else {
          await batch.put(r.key, r.value);
        }
      }
      await batch.finish();
      await fsyncDir(spool);
    } finally {
      await intake.close();
    }

    options.onPhase?.('files');
    for (const name of DATA_FILES) {
      const entry = manifest.files.find((f) => f.path === paths.dataFile(id, name));
      if (!entry) continue;
      writeFileSync(join(staging, name), await readFile(join(repo, entry.path)), { mode: 0o600 });
    }
    writeFileSync(join(staging, 'restored-from.json'), JSON.stringify({ repository: repo, snapshot: id, snapshotTakenAt: manifest.startedAt, restoredAt: new Date().toISOString() }, null, 2) + '\n', { mode: 0o600 });
    await fsyncDir(staging);
    if (existsSync(target)) rmdirSync(target); // empty, checked above
    await rename(staging, target);
    await fsyncDir(dirname(target));
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  return { snapshot: id, dataDir: target, manifest };
}

async function restoreChunks(repo: string, id: string, batch: Batcher): Promise<void> {
  const handles = new Map<string, FileHandle>();
  try {
    let line = 0;
    for await (const text of createInterface({ input: createReadStream(join(repo, paths.snapshotFile(id, 'chunks.idx'))), crlfDelay: Infinity })) {
      line++;
      const loc = parseChunkLine(text, `chunks.idx line ${line}`);
      if (loc.length > MAX_CHUNK_BYTES) throw new PosternError('BACKUP_CORRUPT', `chunks.idx line ${line}: a chunk of ${loc.length} bytes`);
      let fh = handles.get(loc.pack);
      if (!fh) {
        fh = await open(join(repo, loc.pack), 'r');
        handles.set(loc.pack, fh);
      }
      await batch.put(`c\u0000${loc.key}`, await readValueAt(fh, loc.pack, loc.offset, loc.length));
    }
  } finally {
    for (const fh of handles.values()) await fh.close();
  }
}

/** Unsynced batches of bounded size; the last one is synced (one fsync makes the whole log durable). */
class Batcher {
  private ops: KvOp[] = [];
  private bytes = 0;

  constructor(private readonly engine: KvEngine) {}

  async put(key: string, value: Buffer): Promise<void> {
    this.ops.push({ type: 'put', key, value });
    this.bytes += key.length + value.length;
    if (this.bytes >= BATCH_BYTES || this.ops.length >= BATCH_OPS) await this.flush(false);
  }

  private async flush(sync: boolean): Promise<void> {
    const ops = this.ops;
    this.ops = [];
    this.bytes = 0;
    if (ops.length > 0 || sync) await this.engine.write(ops, { sync });
  }

  finish(): Promise<void> {
    return this.flush(true);
  }
}
