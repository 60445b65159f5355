// Writes one export into its directory: every selected message's original bytes, read streamed from the
// archive and checked against the archive's SHA-256 and size before a byte of it is written (a message
// that fails the check, or whose blob is missing, is left out and listed as an error, never written
// half), then the manifest (manifest.jsonl) and SHA256SUMS. Formats:
//   mbox  export.mbox (mboxrd, core/export/mbox-writer.ts) beside manifest.jsonl and SHA256SUMS
//   eml   export.zip, stored (no compression): USER/FOLDER/UID.eml, manifest.jsonl, SHA256SUMS (the CLI unpacks it)
//   zip   export.zip, deflated, the same layout
// Memory stays bounded for any size: a message up to STAGE_IN_MEMORY bytes is checked in memory, a larger
// one through a staging file; one message is in flight at a time and the zip stream applies backpressure.
// Trusts the archive's records; hands the service the counts and the files' sizes and SHA-256.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import { PosternError, errorMessage } from '../errors.ts';
import type { ArchiveEntry, ArchiveStore, MessageRecord } from '../storage/types.ts';
import { MboxrdQuoter, fromLine, messageTrailer } from './mbox-writer.ts';
import {
  MANIFEST_NAME, SUMS_NAME, emlPath, manifestLine, manifestMessage, sumsLine, type ManifestHeader,
} from './manifest.ts';
import type { Selected } from './selection.ts';
import type { ExportCounts, ExportFileInfo, ExportFormat } from './types.ts';

export const STAGE_IN_MEMORY = 8 * 1024 * 1024;
const WRITE_BUFFER = 256 * 1024;
export const MBOX_NAME = 'export.mbox';
export const ZIP_NAME = 'export.zip';

export interface WriteProgress {
  selected(): void;
  exported(bytes: number): void;
  failed(where: string, error: string): void;
}

export interface WriteResult {
  counts: ExportCounts;
  file: ExportFileInfo;
  manifest: ExportFileInfo;
}

/** A file written sequentially through a buffer, hashed and counted on the way. */
class HashingFile {
  private readonly hash: Hash = createHash('sha256');
  private pending: Buffer[] = [];
  private pendingSize = 0;
  size = 0;
  private constructor(private readonly fh: FileHandle, readonly path: string) {}

  static async create(path: string): Promise<HashingFile> {
    return new HashingFile(await open(path, 'wx', 0o600), path);
  }

  async write(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    this.hash.update(b);
    this.size += b.length;
    this.pending.push(b);
    this.pendingSize += b.length;
    if (this.pendingSize >= WRITE_BUFFER) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingSize === 0) return;
    const data = Buffer.concat(this.pending, this.pendingSize);
    this.pending = [];
    this.pendingSize = 0;
    await this.fh.write(data);
  }

  /** Flush, fsync and close; the SHA-256 of everything written. */
  async finish(): Promise<{ size: number; sha256: string }> {
    await this.flush();
    await this.fh.sync();
    await this.fh.close();
    return { size: this.size, sha256: this.hash.digest('hex') };
  }

  async abandon(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

/** A message's bytes, checked: in memory, or in the staging file. */
interface Staged {
  sha256: string;
  size: number;
  endsWithNewline: boolean;
  bytes: Buffer | null;
  file: string | null;
}

/** Read a message's blob and check it against the archive's SHA-256 (its blob id) and size. */
async function stage(archive: ArchiveStore, message: MessageRecord, stagingFile: string): Promise<Staged> {
  const blob = await archive.openBlob(message.blobId);
  if (!blob) throw new PosternError('STORAGE_IO', `The message's bytes (blob ${message.blobId}) are missing`);
  const hash = createHash('sha256');
  let size = 0;
  let last = -1;
  let bytes: Buffer | null = null;
  if (message.size <= STAGE_IN_MEMORY) {
    const parts: Buffer[] = [];
    for await (const chunk of blob as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > STAGE_IN_MEMORY) throw new PosternError('STORAGE_IO', `The message's bytes are longer than its recorded size ${message.size}`);
      hash.update(chunk);
      parts.push(chunk);
    }
    bytes = Buffer.concat(parts, size);
    if (size > 0) last = bytes[size - 1] as number;
  } else {
    const fh = await open(stagingFile, 'w', 0o600);
    try {
      for await (const chunk of blob as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        last = chunk[chunk.length - 1] ?? last;
        await fh.write(chunk);
      }
    } finally {
      await fh.close();
    }
  }
  const sha256 = hash.digest('hex');
  if (sha256 !== message.blobId || size !== message.size) {
    throw new PosternError('STORAGE_IO', `The archived bytes do not match: SHA-256 ${sha256} and ${size} bytes read, ${message.blobId} and ${message.size} recorded`);
  }
  return { sha256, size, endsWithNewline: last === 0x0a, bytes, file: bytes ? null : stagingFile };
}

function stagedStream(s: Staged): Readable {
  return s.bytes ? Readable.from([s.bytes], { objectMode: false }) : createReadStream(s.file as string, { highWaterMark: 256 * 1024 });
}

/** Hashes and counts what passes through (the zip file as written). */
class HashingTransform extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

/** The format's container: add one checked message; finish with the manifest and SHA256SUMS. */
interface Container {
  add(entry: ArchiveEntry, message: MessageRecord, staged: Staged): Promise<{ file: string | null; offset: number | null }>;
  finish(manifest: string, sums: string): Promise<{ size: number; sha256: string }>;
  abandon(): Promise<void>;
}

async function mboxContainer(dir: string): Promise<Container> {
  const out = await HashingFile.create(join(dir, MBOX_NAME));
  return {
    async add(entry, message, staged) {
      const offset = out.size;
      await out.write(fromLine(message.captures[0]?.mailFrom ?? '', new Date(entry.internalDate), !staged.endsWithNewline));
      const q = new MboxrdQuoter();
      for await (const chunk of stagedStream(staged) as AsyncIterable<Buffer>) {
        for (const piece of q.push(chunk)) await out.write(piece);
      }
      for (const piece of q.end()) await out.write(piece);
      for (const piece of messageTrailer(staged.endsWithNewline)) await out.write(piece);
      return { file: null, offset };
    },
    finish: () => out.finish(),
    abandon: () => out.abandon(),
  };
}

async function zipContainer(dir: string, compress: boolean, createdAt: Date): Promise<Container> {
  const zip = new yazl.ZipFile();
  const counter = new HashingTransform();
  const done = pipeline(zip.outputStream as unknown as Readable, counter, createWriteStream(join(dir, ZIP_NAME), { flags: 'wx', mode: 0o600 }));
  let failure: unknown = null;
  // Rejects only when writing the zip fails (never resolves): raced against each entry.
  const failed = new Promise<never>((_resolve, reject) => {
    done.catch((err: unknown) => {
      failure = err;
      reject(err);
    });
  });
  failed.catch(() => undefined);
  /** Add one entry and wait until the zip has consumed it (one entry in flight: bounded memory). */
  const addStream = async (name: string, mtime: Date, size: number, open: () => Readable): Promise<void> => {
    if (failure) throw failure;
    const consumed = new Promise<void>((resolve, reject) => {
      zip.addReadStreamLazy(name, { mtime, compress, size }, (cb) => {
        const source = open();
        const tap = new PassThrough();
        tap.on('end', resolve);
        source.on('error', (err) => {
          reject(err);
          tap.destroy(err);
        });
        source.pipe(tap);
        cb(null, tap);
      });
    });
    consumed.catch(() => undefined); // raced below; a late failure after the zip failed is not unhandled
    await Promise.race([consumed, failed]);
  };
  return {
    async add(entry, _message, staged) {
      const file = emlPath(entry.user, entry.folder, entry.uid);
      await addStream(file, new Date(entry.internalDate), staged.size, () => stagedStream(staged));
      return { file, offset: null };
    },
    async finish(manifest, sums) {
      for (const path of [manifest, sums]) {
        const name = path === manifest ? MANIFEST_NAME : SUMS_NAME;
        zip.addReadStreamLazy(name, { mtime: createdAt, compress }, (cb) => cb(null, createReadStream(path)));
      }
      zip.end();
      await done;
      return { size: counter.size, sha256: counter.hash.digest('hex') };
    },
    async abandon() {
      zip.outputStream.resume();
      (zip.outputStream as unknown as Readable).destroy?.();
      await done.catch(() => undefined);
    },
  };
}

export interface WriteExportOptions {
  archive: ArchiveStore;
  dir: string;
  format: ExportFormat;
  header: ManifestHeader;
  entries: AsyncIterable<Selected>;
  signal: AbortSignal;
  progress: WriteProgress;
}

/**
 * Write the export into `dir` (which exists and is empty). Throws on what stops the whole export (disk
 * full, cancelled); a message that cannot be exported is counted, reported and listed in the manifest.
 */
export async function writeExport(o: WriteExportOptions): Promise<WriteResult> {
  const { archive, dir, format, signal, progress } = o;
  const createdAt = new Date(o.header.createdAt);
  const manifestPath = join(dir, MANIFEST_NAME);
  const sumsPath = join(dir, SUMS_NAME);
  const stagingFile = join(dir, '.staging');
  const manifest = await HashingFile.create(manifestPath);
  const sums = await HashingFile.create(sumsPath);
  const container = format === 'mbox' ? await mboxContainer(dir) : await zipContainer(dir, format === 'zip', createdAt);
  const counts: ExportCounts = { selected: 0, exported: 0, failed: 0, bytes: 0 };
  const fail = async (user: string, folder: string, uid: number, error: string): Promise<void> => {
    counts.failed++;
    progress.failed(`${user}/${folder}/${uid}`, error);
    await manifest.write(Buffer.from(manifestLine({ type: 'error', user, folder, uid, error })));
  };
  try {
    await manifest.write(Buffer.from(manifestLine(o.header)));
    for await (const sel of o.entries) {
      signal.throwIfAborted();
      counts.selected++;
      progress.selected();
      if (!sel.ok) {
        await fail(sel.user, sel.folder, sel.uid, sel.error);
        continue;
      }
      const { entry } = sel;
      const message = sel.message ?? await archive.getMessage(entry.messageId);
      if (!message) {
        await fail(entry.user, entry.folder, entry.uid, `Entry points to missing message "${entry.messageId}"`);
        continue;
      }
      let staged: Staged;
      try {
        staged = await stage(archive, message, stagingFile);
      } catch (err) {
        await fail(entry.user, entry.folder, entry.uid, errorMessage(err));
        continue;
      }
      const where = await container.add(entry, message, staged);
      await manifest.write(Buffer.from(manifestLine(manifestMessage(entry, message, { sha256: staged.sha256, size: staged.size, ...where }))));
      if (where.file !== null) await sums.write(Buffer.from(sumsLine(staged.sha256, where.file)));
      counts.exported++;
      counts.bytes += staged.size;
      progress.exported(staged.size);
    }
    await manifest.write(Buffer.from(manifestLine({ type: 'end', messages: counts.exported, bytes: counts.bytes, errors: counts.failed })));
    const m = await manifest.finish();
    if (format === 'mbox') {
      // SHA256SUMS of an mbox export: the mbox and the manifest (written after the mbox is complete).
      const box = await container.finish(manifestPath, sumsPath);
      await sums.write(Buffer.from(sumsLine(box.sha256, MBOX_NAME) + sumsLine(m.sha256, MANIFEST_NAME)));
      await sums.finish();
      return { counts, file: { name: MBOX_NAME, ...box, contentType: 'application/mbox' }, manifest: { name: MANIFEST_NAME, ...m, contentType: 'application/x-ndjson' } };
    }
    await sums.write(Buffer.from(sumsLine(m.sha256, MANIFEST_NAME)));
    await sums.finish();
    const z = await container.finish(manifestPath, sumsPath);
    return { counts, file: { name: ZIP_NAME, ...z, contentType: 'application/zip' }, manifest: { name: MANIFEST_NAME, ...m, contentType: 'application/x-ndjson' } };
  } catch (err) {
    await container.abandon();
    await manifest.abandon();
    await sums.abandon();
    throw err;
  } finally {
    await rm(stagingFile, { force: true });
  }
}
