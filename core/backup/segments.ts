// The archive's metadata (every key but blob chunks) in content-addressed segments, so a later backup
// writes only the segments that changed. Segment boundaries depend on keys alone (a cut after each key
// whose FNV-1a hash ends in eight zero bits, ~256 records; or at 4 MiB), so an unchanged key range
// yields the same bytes and the same file, segments/<sha256>.rec. Most keys of new mail sort after the
// old ones (message, capture and entry keys are time-ordered), so a backup after a day's mail rewrites
// the tail of each range and the segments that random keys (identities, blob manifests) fall in.
// A snapshot lists its segments in order in metadata.idx: "<sha256> <records> <bytes>".
// Each segment is held in memory until it is cut (at most SEGMENT_MAX_BYTES plus one record).
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { open, rename, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { PosternError } from '../errors.ts';
import type { BackupFile } from './manifest.ts';
import { HashedWriter, RECORD_MAGIC, encodeRecordHeader, readRecords, type ReadRecord } from './record-file.ts';

const SEGMENT_MAX_BYTES = 4 * 1024 * 1024;
const BOUNDARY_MASK = 0xff;

export const segmentPath = (sha256: string): string => `segments/${sha256}.rec`;

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class SegmentWriter {
  private parts: Buffer[] = [RECORD_MAGIC];
  private bytes = RECORD_MAGIC.length;
  private records = 0;
  /** Segment files this snapshot uses (new or already in the repository). */
  readonly used = new Map<string, BackupFile>();
  /** Bytes of segment files this backup wrote (new ones only). */
  written = 0;
  /** Paths of segment files this backup created (removed again if it fails). */
  readonly created: string[] = [];

  constructor(private readonly repo: string, private readonly index: HashedWriter) {}

  async add(key: string, value: Buffer): Promise<void> {
    const head = encodeRecordHeader(key, value.length);
    this.parts.push(head, value);
    this.bytes += head.length + value.length;
    this.records++;
    if ((fnv1a(key) & BOUNDARY_MASK) === 0 || this.bytes >= SEGMENT_MAX_BYTES) await this.cut();
  }

  /** Write the segment collected so far (when it is not in the repository yet) and list it. */
  async cut(): Promise<void> {
    if (this.records === 0) return;
    const data = Buffer.concat(this.parts, this.bytes);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const rel = segmentPath(sha256);
    const file = join(this.repo, rel);
    if (!this.used.has(rel) && !existsSync(file)) {
      const tmp = `${file}.tmp`;
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
      this.created.push(rel);
      this.written += data.length;
    }
    this.used.set(rel, { path: rel, size: data.length, sha256 });
    await this.index.write(Buffer.from(`${sha256} ${this.records} ${data.length}\n`));
    this.parts = [RECORD_MAGIC];
    this.bytes = RECORD_MAGIC.length;
    this.records = 0;
  }
}

export interface SegmentLine {
  sha256: string;
  records: number;
  bytes: number;
}

const SEGMENT_LINE = /^([0-9a-f]{64}) (\d{1,9}) (\d{1,12})$/;

export function parseSegmentLine(line: string, where: string): SegmentLine {
  const m = SEGMENT_LINE.exec(line);
  if (!m) throw new PosternError('BACKUP_CORRUPT', `${where}: not a segment line: "${line.slice(0, 120)}"`);
  return { sha256: m[1] as string, records: Number(m[2]), bytes: Number(m[3]) };
}

/**
 * Every metadata record of a snapshot, in order, across its segments; checks that each segment holds
 * the records and bytes its index line says (the file's hash is checked against the manifest by verify).
 */
export async function* metadataRecords(repo: string, indexFile: string): AsyncGenerator<ReadRecord> {
  let line = 0;
  for await (const text of createInterface({ input: createReadStream(indexFile), crlfDelay: Infinity })) {
    line++;
    const seg = parseSegmentLine(text, `metadata.idx line ${line}`);
    const file = join(repo, segmentPath(seg.sha256));
    let records = 0;
    for await (const r of readRecords(file)) {
      records++;
      yield r;
    }
    const size = (await stat(file)).size;
    if (records !== seg.records || size !== seg.bytes) {
      throw new PosternError('BACKUP_CORRUPT', `metadata.idx line ${line}: segment ${seg.sha256.slice(0, 16)}… holds ${records} records in ${size} bytes, the index says ${seg.records} in ${seg.bytes}`);
    }
  }
}
