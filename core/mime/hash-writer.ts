// The canonical hash's input writer (core/mime/canonical-hash.ts): feeds SHA-256 through one shared
// 64 KiB copy buffer, so the many short records of a message (tags, length prefixes, header values, body
// lines) cost few hash updates and no allocation per record.
// Trusts: its callers to stay synchronous from the first write to digest() (the buffer is shared).
// Hands on: the hex digest.
import { Buffer } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';

const LF = 0x0a;

const LF_BLOCK = Buffer.alloc(4096, LF);
/** Up to this many bytes are copied into the hash buffer byte by byte. */
const SMALL_COPY = 96;

/**
 * The copy buffer every HashWriter shares: hashing is synchronous from start to digest, so one buffer
 * serves every message (a fresh 64 KiB per message was a steady source of GC work).
 */
const SHARED_BUF = Buffer.allocUnsafe(64 * 1024);

/** Feeds the hash through a copy buffer, so many short records cost few update calls. */
export class HashWriter {
  private readonly hash: Hash = createHash('sha256');
  private readonly buf = SHARED_BUF;
  private used = 0;

  bytes(src: Buffer, start = 0, end = src.length): void {
    const n = end - start;
    if (n <= 0) return;
    if (n > this.buf.length - this.used) {
      this.flush();
      if (n >= this.buf.length) {
        this.hash.update(src.subarray(start, end));
        return;
      }
    }
    if (n <= SMALL_COPY) {
      // Most records are one header value or one body line: a plain loop beats Buffer#copy's setup.
      const buf = this.buf;
      let at = this.used;
      for (let i = start; i < end; i++) buf[at++] = src[i] as number;
    } else {
      src.copy(this.buf, this.used, start, end);
    }
    this.used += n;
  }

  /** One LF (the separator between body lines). */
  lf(): void {
    if (this.used >= this.buf.length) this.flush();
    this.buf[this.used++] = LF;
  }

  ascii(text: string): void {
    this.bytes(Buffer.from(text, 'latin1'));
  }

  /** One ASCII record tag. */
  tag(ch: 'H' | 'S' | 'T' | 'B'): void {
    if (this.used >= this.buf.length) this.flush();
    this.buf[this.used++] = ch.charCodeAt(0);
  }

  u32(n: number): void {
    if (this.buf.length - this.used < 4) this.flush();
    this.buf.writeUInt32BE(n >>> 0, this.used);
    this.used += 4;
  }

  u64(n: number): void {
    this.u32(Math.floor(n / 0x1_0000_0000));
    this.u32(n);
  }

  /** A length-prefixed byte string. */
  field(src: Buffer, start = 0, end = src.length): void {
    this.u32(end - start);
    this.bytes(src, start, end);
  }

  /** A length-prefixed string in the given encoding (the bytes Buffer.from(text, encoding) would give). */
  text(text: string, encoding: BufferEncoding): void {
    const n = Buffer.byteLength(text, encoding);
    this.u32(n);
    if (n > this.buf.length - this.used) {
      this.flush();
      if (n >= this.buf.length) {
        this.hash.update(Buffer.from(text, encoding));
        return;
      }
    }
    this.used += this.buf.write(text, this.used, n, encoding);
  }

  newlines(count: number): void {
    if (count === 1) {
      this.lf();
      return;
    }
    let left = count;
    while (left > 0) {
      const n = Math.min(left, LF_BLOCK.length);
      this.bytes(LF_BLOCK, 0, n);
      left -= n;
    }
  }

  digest(): string {
    this.flush();
    return this.hash.digest('hex');
  }

  private flush(): void {
    if (this.used > 0) {
      this.hash.update(this.buf.subarray(0, this.used));
      this.used = 0;
    }
  }
}
