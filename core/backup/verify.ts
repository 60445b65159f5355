// `postern backup verify DIR`: every file a snapshot's manifest lists has its size and SHA-256; the
// record files parse to the end and hold the counts the manifest states; the chunk index is in key
// order, points inside listed packs at records carrying the very chunk key, and every blob manifest
// in the metadata has all its chunks. A snapshot that passes restores whole: nothing is half-present.
// Reads the repository as untrusted input; reports problems as text, never throws on damage.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { errorMessage } from '../errors.ts';
import { chooseSnapshot, listSnapshots, parseChunkLine, paths, readManifest, type BackupManifest, type ChunkLocation } from './manifest.ts';
import { readRecords } from './record-file.ts';
import { metadataRecords, parseSegmentLine, segmentPath } from './segments.ts';
import { SPOOL_RECORD_PREFIX } from './create.ts';
import { INTAKE_KEYS } from '../intake/intake.ts';

/** Largest encoded chunk a pack may hold (1 MiB raw, plus codec and cipher framing). */
export const MAX_CHUNK_BYTES = 2 * 1024 * 1024;

export interface SnapshotReport {
  id: string;
  ok: boolean;
  problems: string[];
  manifest: BackupManifest | null;
}

export interface VerifyReport {
  ok: boolean;
  snapshots: SnapshotReport[];
}

/** Verify one snapshot, or every complete snapshot of the repository. */
export async function verifyBackup(repo: string, only?: string): Promise<VerifyReport> {
  const ids = only !== undefined ? [chooseSnapshot(repo, only)] : (chooseSnapshot(repo, undefined), listSnapshots(repo));
  const hashed = new Map<string, Promise<{ size: number; sha256: string } | string>>();
  const snapshots: SnapshotReport[] = [];
  for (const id of ids) snapshots.push(await verifySnapshot(repo, id, hashed));
  return { ok: snapshots.every((s) => s.ok), snapshots };
}

async function verifySnapshot(repo: string, id: string, hashed: Map<string, Promise<{ size: number; sha256: string } | string>>): Promise<SnapshotReport> {
  const problems: string[] = [];
  let manifest: BackupManifest;
  try {
    manifest = readManifest(repo, id);
  } catch (err) {
    return { id, ok: false, problems: [errorMessage(err)], manifest: null };
  }
  const add = (p: string) => {
    if (problems.length < 50) problems.push(p);
  };
  for (const f of manifest.files) {
    let pending = hashed.get(f.path);
    if (!pending) {
      pending = hashFile(join(repo, f.path));
      hashed.set(f.path, pending);
    }
    const got = await pending;
    if (typeof got === 'string') add(`"${f.path}": ${got}`);
    else if (got.size !== f.size || got.sha256 !== f.sha256) add(`"${f.path}" is ${got.size} bytes with SHA-256 ${got.sha256}; the manifest says ${f.size} bytes with ${f.sha256}`);
  }
  if (problems.length > 0) return { id, ok: false, problems, manifest };

  const packs = new Set(manifest.files.filter((f) => f.path.startsWith('packs/')).map((f) => f.path));
  try {
    const blobs = await checkMetadata(repo, join(repo, paths.snapshotFile(id, 'metadata.idx')), manifest, add);
    await checkChunks(repo, join(repo, paths.snapshotFile(id, 'chunks.idx')), packs, blobs, manifest, add);
    await checkIntake(join(repo, paths.snapshotFile(id, 'intake.rec')), manifest, add);
  } catch (err) {
    add(errorMessage(err));
  }
  return { id, ok: problems.length === 0, problems, manifest };
}

async function hashFile(path: string): Promise<{ size: number; sha256: string } | string> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : errorMessage(err);
  }
  return { size, sha256: hash.digest('hex') };
}

/** Counts and the blob manifests (sha256 → chunk count) in key order. */
async function checkMetadata(repo: string, indexFile: string, manifest: BackupManifest, add: (p: string) => void): Promise<Array<[string, number]>> {
  const listed = new Set(manifest.files.map((f) => f.path));
  for await (const text of createInterface({ input: createReadStream(indexFile), crlfDelay: Infinity })) {
    const seg = parseSegmentLine(text, 'metadata.idx');
    if (!listed.has(segmentPath(seg.sha256))) add(`metadata.idx names segment ${seg.sha256.slice(0, 16)}…, which the manifest does not list`);
  }
  const blobs: Array<[string, number]> = [];
  let keys = 0;
  let messages = 0;
  let entries = 0;
  let audit = 0;
  // Byte order, as the engine sorts (UTF-16 order differs for characters outside the BMP).
  let previous = Buffer.alloc(0);
  for await (const r of metadataRecords(repo, indexFile)) {
    keys++;
    const raw = Buffer.from(r.key, 'utf8');
    if (keys > 1 && Buffer.compare(raw, previous) <= 0) add(`metadata: key ${keys} is out of order`);
    previous = raw;
    const kind = r.key.slice(0, r.key.indexOf('\u0000'));
    if (kind === 'm') messages++;
    else if (kind === 'e') entries++;
    else if (kind === 'au') audit++;
    else if (kind === 'b') {
      try {
        const chunks = (JSON.parse(r.value.toString('utf8')) as { chunks?: unknown }).chunks;
        if (typeof chunks !== 'number' || !Number.isSafeInteger(chunks) || chunks < 0) throw new Error('no chunk count');
        blobs.push([r.key.slice(2), chunks]);
      } catch (err) {
        add(`metadata: the blob manifest "${r.key.slice(2, 20)}…" cannot be read (${errorMessage(err)})`);
      }
    }
  }
  const c = manifest.counts;
  if (keys !== c.archiveKeys) add(`metadata holds ${keys} keys; the manifest says ${c.archiveKeys}`);
  if (messages !== c.messages || entries !== c.entries || blobs.length !== c.blobs || audit !== c.auditRecords) {
    add(`metadata holds ${messages} messages, ${entries} entries, ${blobs.length} blobs, ${audit} audit records; the manifest says ${c.messages}, ${c.entries}, ${c.blobs}, ${c.auditRecords}`);
  }
  return blobs;
}

async function checkChunks(
  repo: string, file: string, packs: Set<string>, blobs: Array<[string, number]>, manifest: BackupManifest, add: (p: string) => void,
): Promise<void> {
  const handles = new Map<string, FileHandle>();
  let lines = 0;
  let previous = '';
  let b = 0;
  // Chunks of the blob at blobs[b] seen so far, in order.
  let seen = 0;
  const finishBlob = () => {
    const blob = blobs[b];
    if (blob && seen !== blob[1]) add(`the blob ${blob[0].slice(0, 16)}… has ${seen} of its ${blob[1]} chunks in chunks.idx`);
    b++;
    seen = 0;
  };
  try {
    for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      lines++;
      const loc = parseChunkLine(line, `chunks.idx line ${lines}`);
      if (lines > 1 && loc.key <= previous) add(`chunks.idx line ${lines} is out of order`);
      previous = loc.key;
      if (!packs.has(loc.pack)) {
        add(`chunks.idx line ${lines} points into "${loc.pack}", which the manifest does not list`);
        continue;
      }
      await checkPackRecord(repo, handles, loc, add, lines);
      const [sha, n] = loc.key.split('\u0000') as [string, string];
      while (b < blobs.length && (blobs[b] as [string, number])[0] < sha) finishBlob();
      const blob = blobs[b];
      if (blob && blob[0] === sha && parseInt(n, 16) === seen) seen++;
    }
    while (b < blobs.length) finishBlob();
  } finally {
    for (const fh of handles.values()) await fh.close();
  }
  if (lines !== manifest.counts.chunks) add(`chunks.idx has ${lines} chunks; the manifest says ${manifest.counts.chunks}`);
}

/** The record at a chunk's location must carry the chunk's own key and length. */
async function checkPackRecord(repo: string, handles: Map<string, FileHandle>, loc: ChunkLocation, add: (p: string) => void, line: number): Promise<void> {
  let fh = handles.get(loc.pack);
  if (!fh) {
    fh = await open(join(repo, loc.pack), 'r');
    handles.set(loc.pack, fh);
  }
  const key = Buffer.from(`c\u0000${loc.key}`);
  const head = Buffer.alloc(8 + key.length);
  const start = loc.offset - head.length;
  const { bytesRead } = start < 0 ? { bytesRead: 0 } : await fh.read(head, 0, head.length, start);
  if (bytesRead !== head.length || head.readUInt32BE(0) !== key.length || !head.subarray(4, 4 + key.length).equals(key) || head.readUInt32BE(4 + key.length) !== loc.length || loc.length > MAX_CHUNK_BYTES) {
    add(`chunks.idx line ${line}: "${loc.pack}" holds no record of that chunk at byte ${loc.offset}`);
  }
}

async function checkIntake(file: string, manifest: BackupManifest, add: (p: string) => void): Promise<void> {
  let entries = 0;
  for await (const r of readRecords(file, 2 ** 32 - 1)) {
    if (r.key.startsWith(INTAKE_KEYS.record)) entries++;
    else if (!r.key.startsWith(INTAKE_KEYS.data) && !r.key.startsWith(SPOOL_RECORD_PREFIX)) add(`intake.rec holds an unknown key kind "${r.key.slice(0, 2)}"`);
  }
  if (entries !== manifest.counts.intakeEntries) add(`intake.rec holds ${entries} entries; the manifest says ${manifest.counts.intakeEntries}`);
}
