// `postern backup`: a consistent point-in-time copy of a running server's archive and intake into a
// backup repository (manifest.ts), incremental after the first snapshot: blob chunks already in the
// repository are referenced, not copied; everything else is written anew (it is small next to mail).
// Consistency: the intake is read first, then the whole archive through ONE engine iterator (one
// RocksDB snapshot). A message acknowledged before the backup began is either still in the intake
// then (copied) or was archived before the intake was read (so in the later archive snapshot); one
// archived in between is in both, and replaying its intake entry after a restore is a no-op (its
// capture id is committed). The manifest is written last and the snapshot directory renamed into
// place, so an interrupted backup leaves nothing a restore would use.
// Trusts: the engines (our own data); the repository only as far as the parent's chunk index, whose
// lines are parsed and whose packs must be listed in the parent's manifest.
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { PosternError, errorMessage } from '../errors.ts';
import { INTAKE_KEYS } from '../intake/intake.ts';
import type { KvEngine } from '../storage/kv.ts';
import {
  DATA_FILES, REPOSITORY_MARKER, chunkLine, isRepository, listSnapshots, parseChunkLine, paths, readManifest,
  type BackupFile, type BackupManifest, type ChunkLocation,
} from './manifest.ts';
import { HashedWriter, RecordWriter } from './record-file.ts';
import { fsyncDir } from './fsync-dir.ts';
import { SegmentWriter } from './segments.ts';
import { takeLock } from './lock.ts';

/** A pack is closed and a new one started past this size. */
const PACK_MAX_BYTES = 256 * 1024 * 1024;
const CHUNK_PREFIX = 'c\u0000';
/** Record key of a spooled message's bytes in intake.rec. */
export const SPOOL_RECORD_PREFIX = 's\u0000';

export interface BackupSource {
  archive: KvEngine;
  intake: KvEngine;
  spoolPath(id: string): string;
  dataDir: string;
  encryptionKeyFile: string | null;
  version: string;
}

export interface BackupProgress {
  phase: 'intake' | 'archive' | 'finishing' | 'done';
  intakeEntries: number;
  archiveKeys: number;
  chunksCopied: number;
  chunksReused: number;
  bytesWritten: number;
}

/** Check the output directory before a backup starts (so the API can answer 400/409 at once). */
export function checkBackupTarget(output: string, dataDir: string): string {
  if (!isAbsolute(output)) throw new PosternError('INVALID_INPUT', `Backup directory "${output}" must be an absolute path`);
  const repo = resolve(output);
  const inside = relative(resolve(dataDir), repo);
  if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) {
    throw new PosternError('INVALID_INPUT', `Backup directory "${repo}" is inside the data directory "${resolve(dataDir)}"; a backup must live elsewhere`);
  }
  if (existsSync(repo) && readdirSync(repo).length > 0 && !isRepository(repo)) {
    throw new PosternError('CONFLICT', `"${repo}" is not empty and is not a Postern backup; choose an empty or new directory, or an existing backup`);
  }
  return repo;
}

export async function createBackup(
  source: BackupSource, output: string, onProgress: (p: BackupProgress) => void = () => undefined, signal?: AbortSignal,
): Promise<BackupManifest> {
  const repo = checkBackupTarget(output, source.dataDir);
  initRepository(repo);
  const releaseLock = takeLock(repo);
  const startedAt = new Date().toISOString();
  const id = `${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
  const partial = join(paths.snapshots(repo), `${id}.partial`);
  const newPacks: string[] = [];
  const progress: BackupProgress = { phase: 'intake', intakeEntries: 0, archiveKeys: 0, chunksCopied: 0, chunksReused: 0, bytesWritten: 0 };
  try {
    mkdirSync(join(partial, 'files'), { recursive: true, mode: 0o700 });
    const parentId = listSnapshots(repo).at(-1) ?? null;
    const parent = parentId === null ? null : readManifest(repo, parentId);
    const files: BackupFile[] = [];
    const rel = (name: 'metadata.idx' | 'chunks.idx' | 'intake.rec') => paths.snapshotFile(id, name);
    const at = (name: string) => join(partial, name);

    // 1. The intake (acknowledged, not yet archived).
    const intakeOut = await RecordWriter.create(at('intake.rec'));
    try {
      progress.intakeEntries = await copyIntake(source, intakeOut, signal);
    } catch (err) {
      await intakeOut.abandon();
      throw err;
    }
    files.push({ path: rel('intake.rec'), ...(await intakeOut.close()) });
    onProgress({ ...progress, phase: 'archive' });

    // 2. The archive, in one snapshot.
    const counts = await copyArchive(source.archive, repo, id, partial, parent, newPacks, progress, onProgress, signal);
    files.push({ path: rel('metadata.idx'), ...counts.metadata }, { path: rel('chunks.idx'), ...counts.index }, ...counts.segments);
    for (const pack of counts.packs) {
      const known = counts.newPackFiles.get(pack) ?? parent?.files.find((f) => f.path === pack);
      if (!known) throw new PosternError('BACKUP_CORRUPT', `The parent snapshot "${parentId ?? ''}" references "${pack}" but its manifest does not list it`);
      files.push({ ...known, path: pack });
    }

    // 3. Small files of the data directory.
    onProgress({ ...progress, phase: 'finishing' });
    for (const name of DATA_FILES) {
      const from = join(source.dataDir, name);
      if (!existsSync(from)) continue;
      const out = await HashedWriter.create(at(join('files', name)));
      await out.write(await readFile(from));
      files.push({ path: paths.dataFile(id, name), ...(await out.close()) });
    }

    const manifest: BackupManifest = {
      format: 'postern-backup', version: 1, id, parent: parentId, startedAt, finishedAt: new Date().toISOString(), postern: source.version,
      source: { dataDir: resolve(source.dataDir), backend: 'rocksdb' },
      encryptionKeyFile: source.encryptionKeyFile,
      counts: {
        archiveKeys: progress.archiveKeys, users: counts.users, messages: counts.messages, entries: counts.entries, blobs: counts.blobs,
        chunks: progress.chunksCopied + progress.chunksReused, chunksCopied: progress.chunksCopied, chunksReused: progress.chunksReused,
        auditRecords: counts.auditRecords, intakeEntries: progress.intakeEntries,
        bytesWritten: files.filter((f) => (!f.path.startsWith('packs/') && !f.path.startsWith('segments/')) || newPacks.includes(f.path)).reduce((n, f) => n + f.size, 0) + counts.segmentBytesWritten,
      },
      auditHead: counts.auditHead,
      files,
    };
    const manifestFile = at('manifest.json');
    const fh = await open(manifestFile, 'wx', 0o600);
    try {
      await fh.writeFile(JSON.stringify(manifest, null, 2) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsyncDir(partial);
    await fsyncDir(join(partial, 'files'));
    await rename(partial, join(paths.snapshots(repo), id));
    await fsyncDir(paths.snapshots(repo));
    onProgress({ ...progress, phase: 'done' });
    return manifest;
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    for (const p of newPacks) await rm(join(repo, p), { force: true });
    throw err;
  } finally {
    releaseLock();
  }
}

function initRepository(repo: string): void {
  mkdirSync(repo, { recursive: true, mode: 0o700 });
  if (!isRepository(repo)) writeFileSync(paths.marker(repo), REPOSITORY_MARKER, { mode: 0o644 });
  mkdirSync(paths.packs(repo), { recursive: true, mode: 0o700 });
  mkdirSync(paths.segments(repo), { recursive: true, mode: 0o700 });
  mkdirSync(paths.snapshots(repo), { recursive: true, mode: 0o700 });
  // Leftovers of an interrupted backup: never part of a snapshot, removed before the next one.
  for (const name of readdirSync(paths.snapshots(repo))) {
    if (name.endsWith('.partial')) rmSync(join(paths.snapshots(repo), name), { recursive: true, force: true });
  }
  for (const name of readdirSync(paths.segments(repo))) {
    if (name.endsWith('.tmp')) rmSync(join(paths.segments(repo), name), { force: true });
  }
}

/** Records and inline data of every entry; a spooled entry with its file. In-flight marks stay behind. */
async function copyIntake(source: BackupSource, out: RecordWriter, signal: AbortSignal | undefined): Promise<number> {
  let entries = 0;
  for await (const [key, value] of source.intake.entries({})) {
    checkAborted(signal);
    if (key.startsWith(INTAKE_KEYS.inFlight)) continue;
    if (!key.startsWith(INTAKE_KEYS.record)) {
      await out.put(key, value);
      continue;
    }
    const record = JSON.parse(value.toString('utf8')) as { id: string; storage: 'inline' | 'file' };
    if (record.storage === 'file') {
      let fh;
      try {
        fh = await open(source.spoolPath(record.id), 'r');
      } catch (err) {
        // Removed since the snapshot: the entry was archived (an entry leaves only after its archive
        // commit), so the archive snapshot taken next holds it.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      try {
        const { size } = await fh.stat();
        await out.put(key, value);
        await out.putStream(SPOOL_RECORD_PREFIX + record.id, size, fh.createReadStream({ start: 0, autoClose: false }) as AsyncIterable<Buffer>);
      } finally {
        await fh.close();
      }
    } else {
      await out.put(key, value);
    }
    entries++;
  }
  return entries;
}

interface ArchiveCopy {
  /** metadata.idx */
  metadata: { size: number; sha256: string };
  segments: BackupFile[];
  segmentBytesWritten: number;
  index: { size: number; sha256: string };
  packs: Set<string>;
  newPackFiles: Map<string, BackupFile>;
  users: number;
  messages: number;
  entries: number;
  blobs: number;
  auditRecords: number;
  auditHead: { seq: number; hash: string } | null;
}

async function copyArchive(
  archive: KvEngine, repo: string, id: string, partial: string, parent: BackupManifest | null, newPacks: string[],
  progress: BackupProgress, onProgress: (p: BackupProgress) => void, signal: AbortSignal | undefined,
): Promise<ArchiveCopy> {
  const metadataIndex = await HashedWriter.create(join(partial, 'metadata.idx'));
  const metadata = new SegmentWriter(repo, metadataIndex);
  const index = await HashedWriter.create(join(partial, 'chunks.idx'));
  const previous = parent ? new ChunkCursor(join(repo, paths.snapshotFile(parent.id, 'chunks.idx'))) : null;
  const result: ArchiveCopy = {
    metadata: { size: 0, sha256: '' }, segments: [], segmentBytesWritten: 0, index: { size: 0, sha256: '' }, packs: new Set(), newPackFiles: new Map(),
    users: 0, messages: 0, entries: 0, blobs: 0, auditRecords: 0, auditHead: null,
  };
  let pack: RecordWriter | null = null;
  let packPath = '';
  const closePack = async () => {
    if (!pack) return;
    const written = await pack.close();
    result.newPackFiles.set(packPath, { path: packPath, ...written });
    progress.bytesWritten += written.size;
    pack = null;
  };
  try {
    for await (const [key, value] of archive.entries({})) {
      checkAborted(signal);
      if (key.startsWith(CHUNK_PREFIX)) {
        const chunkKey = key.slice(CHUNK_PREFIX.length);
        const known = previous ? await previous.find(chunkKey) : null;
        let location: ChunkLocation;
        if (known) {
          location = known;
          progress.chunksReused++;
        } else {
          if (!pack) {
            packPath = paths.pack(id, newPacks.length + 1);
            newPacks.push(packPath);
            pack = await RecordWriter.create(join(repo, packPath));
          }
          const offset = await (pack as RecordWriter).put(key, value);
          location = { key: chunkKey, pack: packPath, offset, length: value.length };
          progress.chunksCopied++;
          if (offset + value.length >= PACK_MAX_BYTES) await closePack();
        }
        result.packs.add(location.pack);
        await index.write(Buffer.from(chunkLine(location)));
      } else {
        await metadata.add(key, value);
        progress.archiveKeys++;
        countKey(key, value, result);
      }
      if ((progress.archiveKeys + progress.chunksCopied + progress.chunksReused) % 2000 === 0) onProgress({ ...progress });
    }
    await closePack();
    await fsyncDir(paths.packs(repo));
    await metadata.cut();
    await fsyncDir(paths.segments(repo));
    result.metadata = await metadataIndex.close();
    result.segments = [...metadata.used.values()];
    result.segmentBytesWritten = metadata.written;
    result.index = await index.close();
    progress.bytesWritten += result.metadata.size + result.index.size + metadata.written;
    return result;
  } catch (err) {
    await (pack as RecordWriter | null)?.abandon();
    await metadataIndex.abandon();
    await index.abandon();
    for (const p of metadata.created) await rm(join(repo, p), { force: true });
    throw err;
  } finally {
    previous?.close();
  }
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new PosternError('SHUTTING_DOWN', 'The backup was stopped because the server is shutting down; the snapshot is discarded');
}

function countKey(key: string, value: Buffer, c: ArchiveCopy): void {
  const kind = key.slice(0, key.indexOf('\u0000'));
  if (kind === 'u') c.users++;
  else if (kind === 'm') c.messages++;
  else if (kind === 'e') c.entries++;
  else if (kind === 'b') c.blobs++;
  else if (kind === 'au') c.auditRecords++;
  else if (kind === 'ah') {
    try {
      const head = JSON.parse(value.toString('utf8')) as { seq?: unknown; hash?: unknown };
      if (typeof head.seq === 'number' && typeof head.hash === 'string') c.auditHead = { seq: head.seq, hash: head.hash };
    } catch (err) {
      throw new PosternError('STORAGE_IO', `The audit head of the archive cannot be read: ${errorMessage(err)}`);
    }
  }
}

/** Walks the parent snapshot's chunk index forward, in key order, answering "is this chunk there?". */
class ChunkCursor {
  private readonly lines: AsyncIterator<string>;
  private readonly rl;
  private current: ChunkLocation | null = null;
  private done = false;
  private lineNo = 0;

  constructor(private readonly file: string) {
    this.rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  async find(key: string): Promise<ChunkLocation | null> {
    while (!this.done && (this.current === null || this.current.key < key)) {
      const next = await this.lines.next();
      if (next.done) {
        this.done = true;
        this.current = null;
        break;
      }
      this.lineNo++;
      const loc = parseChunkLine(next.value, `"${this.file}" line ${this.lineNo}`);
      if (this.current !== null && loc.key <= this.current.key) throw new PosternError('BACKUP_CORRUPT', `"${this.file}" line ${this.lineNo} is out of order`);
      this.current = loc;
    }
    return this.current !== null && this.current.key === key ? this.current : null;
  }

  close(): void {
    this.rl.close();
  }
}
