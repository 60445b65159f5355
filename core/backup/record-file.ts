// The backup's record files: a magic line, then records of [u32 key length][key UTF-8][u32 value
// length][value], big-endian. Written sequentially through one file handle (each write awaited, so
// a slow disk slows the reader of the archive, never grows a buffer past WRITE_BUFFER), hashed as
// written, fsync'd on close. Read back sequentially (restore, verify) or one value at a known offset
// (a chunk in a pack). Trusts nothing it reads: lengths are bounded and a short file is an error.
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { PosternError } from '../errors.ts';

export const RECORD_MAGIC = Buffer.from('POSTERN-RECORDS 1\n');
const WRITE_BUFFER = 1024 * 1024;
/** Keys of the archive and intake are short; a longer one means a corrupt file. */
const MAX_KEY_BYTES = 64 * 1024;
/** A value is a chunk (≤ 1 MiB raw, a little more encoded), a record, or a spooled message. */
export const MAX_VALUE_BYTES = 2 ** 32 - 1;

export interface WrittenFile {
  size: number;
  sha256: string;
}

/** A file written sequentially and hashed as written; fsync'd on close. Never overwrites. */
export class HashedWriter {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private written = 0;

  private constructor(private readonly fh: FileHandle, readonly path: string) {}

  static async create(path: string): Promise<HashedWriter> {
    return new HashedWriter(await open(path, 'wx', 0o600), path);
  }

  /** Bytes written so far, including what is still buffered. */
  get offset(): number {
    return this.written + this.bufferedBytes;
  }

  async write(data: Buffer): Promise<void> {
    this.hash.update(data);
    this.buffered.push(data);
    this.bufferedBytes += data.length;
    if (this.bufferedBytes >= WRITE_BUFFER) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.bufferedBytes === 0) return;
    const data = Buffer.concat(this.buffered, this.bufferedBytes);
    this.buffered = [];
    this.bufferedBytes = 0;
    await this.fh.write(data, 0, data.length);
    this.written += data.length;
  }

  /** Flush, fsync and close; the file's size and SHA-256. */
  async close(): Promise<WrittenFile> {
    try {
      await this.flush();
      await this.fh.sync();
    } finally {
      await this.fh.close();
    }
    return { size: this.written, sha256: this.hash.digest('hex') };
  }

  /** Close without caring for the content (a failed backup removes the file). */
  async abandon(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

export class RecordWriter {
  private constructor(private readonly out: HashedWriter) {}

  static async create(path: string): Promise<RecordWriter> {
    const w = new RecordWriter(await HashedWriter.create(path));
    await w.out.write(RECORD_MAGIC);
    return w;
  }

  get path(): string {
    return this.out.path;
  }

  /** Append a record; returns the offset of its value in the file. */
  async put(key: string, value: Buffer): Promise<number> {
    await this.out.write(encodeRecordHeader(key, value.length));
    const at = this.out.offset;
    await this.out.write(value);
    return at;
  }

  /** Append a record whose value is streamed (a spooled message): exactly `size` bytes must arrive. */
  async putStream(key: string, size: number, source: AsyncIterable<Buffer>): Promise<void> {
    await this.out.write(encodeRecordHeader(key, size));
    let got = 0;
    for await (const chunk of source) {
      got += chunk.length;
      if (got > size) break;
      await this.out.write(chunk);
    }
    if (got !== size) throw new PosternError('STORAGE_IO', `"${printable(key)}" changed while it was copied: ${got} bytes instead of ${size}`);
  }

  close(): Promise<WrittenFile> {
    return this.out.close();
  }

  abandon(): Promise<void> {
    return this.out.abandon();
  }
}

/** The bytes in front of a record's value: key length, key, value length. */
export function encodeRecordHeader(key: string, valueLength: number): Buffer {
  const k = Buffer.from(key, 'utf8');
  if (k.length > MAX_KEY_BYTES) throw new PosternError('INVALID_INPUT', `A backup record key of ${k.length} bytes is longer than ${MAX_KEY_BYTES}`);
  if (valueLength > MAX_VALUE_BYTES) throw new PosternError('TOO_LARGE', `A backup record value of ${valueLength} bytes is larger than ${MAX_VALUE_BYTES}`);
  const head = Buffer.alloc(8 + k.length);
  head.writeUInt32BE(k.length, 0);
  k.copy(head, 4);
  head.writeUInt32BE(valueLength, 4 + k.length);
  return head;
}

/** A record as read back: the value's offset lets a caller re-read it later from the same file. */
export interface ReadRecord {
  key: string;
  value: Buffer;
  valueOffset: number;
}

/**
 * Every record of a file in order. Values larger than `maxValue` are an error (a caller that expects
 * chunks passes a small bound, so a corrupt length cannot make it allocate gigabytes).
 */
export async function* readRecords(path: string, maxValue = 64 * 1024 * 1024): AsyncGenerator<ReadRecord> {
  const fh = await open(path, 'r');
  try {
    const reader = new SequentialReader(fh, path);
    const magic = await reader.take(RECORD_MAGIC.length, 'the header');
    if (!magic.equals(RECORD_MAGIC)) throw corrupt(path, 0, 'it does not start with the Postern record header');
    for (;;) {
      if (await reader.atEnd()) return;
      const at = reader.position;
      const keyLen = (await reader.take(4, 'a key length')).readUInt32BE(0);
      if (keyLen > MAX_KEY_BYTES) throw corrupt(path, at, `a key length of ${keyLen} bytes`);
      const key = (await reader.take(keyLen, 'a key')).toString('utf8');
      const valueLen = (await reader.take(4, 'a value length')).readUInt32BE(0);
      if (valueLen > maxValue) throw corrupt(path, at, `a value of ${valueLen} bytes for "${printable(key)}" (at most ${maxValue} expected)`);
      const valueOffset = reader.position;
      const value = await reader.take(valueLen, `the value of "${printable(key)}"`);
      yield { key, value, valueOffset };
    }
  } finally {
    await fh.close();
  }
}

/** One value at a known offset (a chunk in a pack). */
export async function readValueAt(fh: FileHandle, path: string, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset);
  if (bytesRead !== length) throw corrupt(path, offset, `only ${bytesRead} of ${length} bytes there`);
  return buf;
}

class SequentialReader {
  private buf = Buffer.alloc(0);
  private filePos = 0;
  position = 0;
  private eof = false;

  constructor(private readonly fh: FileHandle, private readonly path: string) {}

  private async fill(min: number): Promise<void> {
    while (this.buf.length < min && !this.eof) {
      const want = Math.max(min - this.buf.length, WRITE_BUFFER);
      const chunk = Buffer.alloc(want);
      const { bytesRead } = await this.fh.read(chunk, 0, want, this.filePos);
      if (bytesRead === 0) this.eof = true;
      this.filePos += bytesRead;
      this.buf = this.buf.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([this.buf, chunk.subarray(0, bytesRead)]);
    }
  }

  async atEnd(): Promise<boolean> {
    await this.fill(1);
    return this.buf.length === 0;
  }

  async take(n: number, what: string): Promise<Buffer> {
    await this.fill(n);
    if (this.buf.length < n) throw corrupt(this.path, this.position, `the file ends inside ${what}`);
    const out = Buffer.from(this.buf.subarray(0, n));
    this.buf = this.buf.subarray(n);
    this.position += n;
    return out;
  }
}

function printable(key: string): string {
  return key.replace(/\u0000/g, '\\0').slice(0, 120);
}

function corrupt(path: string, offset: number, why: string): PosternError {
  return new PosternError('BACKUP_CORRUPT', `Backup file "${path}" is damaged at byte ${offset}: ${why}`);
}
