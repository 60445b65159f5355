// The IMAP view of a stored message: every bare LF (an LF not preceded by CR) reads as CRLF, as
// Dovecot serves an LF Maildir file; a lone CR stays as it is. The archive keeps the original bytes;
// everything the imap plugin serves, sizes and offsets included, is computed on this view. A message
// that is already CRLF is its own view byte for byte (chunks are passed on without a copy).
// Trusts nothing about the bytes; state is one byte, so memory is bounded by the chunk being converted.
// Hands on converted chunks and windows [start, end) of the view, streamed.
import { PosternError } from '../../../core/errors.ts';

const LF = 0x0a;
const CR = 0x0d;

/** Stateful LF → CRLF converter for a byte stream arriving in chunks (CR|LF may be split between chunks). */
export class CrlfView {
  private lastByte = -1;

  /** Bare LFs in the chunk, given the byte before it. */
  private bareLfs(chunk: Buffer): number {
    let n = 0;
    const prev = this.lastByte;
    let pos = 0;
    for (;;) {
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) break;
      if ((nl > 0 ? chunk[nl - 1] : prev) !== CR) n++;
      pos = nl + 1;
    }
    return n;
  }

  /** The chunk as it reads in the view (the same Buffer when it holds no bare LF). */
  push(chunk: Buffer): Buffer {
    const bare = this.bareLfs(chunk);
    if (bare === 0) {
      if (chunk.length > 0) this.lastByte = chunk[chunk.length - 1] as number;
      return chunk;
    }
    const out = Buffer.allocUnsafe(chunk.length + bare);
    let o = 0;
    let pos = 0;
    for (;;) {
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) break;
      const before = nl > 0 ? chunk[nl - 1] : this.lastByte;
      o += chunk.copy(out, o, pos, nl);
      if (before !== CR) out[o++] = CR;
      out[o++] = LF;
      pos = nl + 1;
    }
    o += chunk.copy(out, o, pos);
    this.lastByte = chunk[chunk.length - 1] as number;
    return out;
  }

  /** The chunk's length in the view, without converting it (for skipping ahead). */
  skip(chunk: Buffer): number {
    const n = chunk.length + this.bareLfs(chunk);
    if (chunk.length > 0) this.lastByte = chunk[chunk.length - 1] as number;
    return n;
  }
}

const asBuffer = (c: unknown): Buffer => (Buffer.isBuffer(c) ? c : typeof c === 'string' ? Buffer.from(c, 'latin1') : Buffer.from(c as Uint8Array));

/** The whole view of a raw stream. */
export async function* crlfView(raw: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  const view = new CrlfView();
  for await (const c of raw) {
    const out = view.push(asBuffer(c));
    if (out.length > 0) yield out;
  }
}

/** The view's length of a byte string (one character per byte). */
export function viewLength(bytes: Buffer): number {
  return new CrlfView().skip(bytes);
}

/**
 * Bytes [start, end) of the view of a raw stream. Chunks wholly before `start` are only counted, never
 * converted or kept; the source is destroyed when the window is done (or the consumer stops). Fails
 * with STORAGE_IO when the stream ends before `end` (a literal must never come out short).
 */
export async function* viewWindow(src: AsyncIterable<unknown> & { destroy?: () => void }, start: number, end: number): AsyncGenerator<Buffer> {
  if (end <= start) return;
  const view = new CrlfView();
  let pos = 0;
  try {
    for await (const c of src) {
      const chunk = asBuffer(c);
      const from = pos;
      if (from + chunk.length * 2 <= start) {
        // Even if every byte were a bare LF this chunk would end before the window: count only.
        pos += view.skip(chunk);
        continue;
      }
      const out = view.push(chunk);
      pos += out.length;
      if (pos <= start) continue;
      yield out.subarray(Math.max(start, from) - from, Math.min(end, pos) - from);
      if (pos >= end) break;
    }
  } finally {
    src.destroy?.();
  }
  if (pos < end) throw new PosternError('STORAGE_IO', `Message is shorter (${pos} bytes) than its part index says (${end})`);
}
