// Framing of a POP3 multi-line response body (RFC 1939 §3), chunk by chunk without holding lines:
// finds the terminating "." line, and yields both the bytes exactly as received (still dot-stuffed,
// for the client) and the dot-unstuffed bytes (the message as stored upstream, for capture).
// Trusts nothing about chunk boundaries; holds back at most the 2 bytes of a possible terminator.
// A bare LF is accepted as a line end (lenient towards upstreams); the bytes are never rewritten.

export interface DecodedChunk {
  /** Bytes to pass on as received (dot-stuffed), excluding the terminating line. */
  raw: Buffer[];
  /** The same bytes with the stuffing dot of each dot-led line removed. */
  data: Buffer[];
  /** True once the terminating "." line has been seen. */
  done: boolean;
  /** Bytes that followed the terminating line (normally none). */
  rest: Buffer;
}

const DOT = 0x2e;
const CR = 0x0d;
const LF = 0x0a;
const EMPTY: Buffer = Buffer.alloc(0);

export class DotDecoder {
  private atLineStart = true;
  private pending: Buffer | null = null;
  private finished = false;
  /** Bytes passed on so far (raw, stuffed). */
  rawBytes = 0;
  /** Unstuffed bytes so far. */
  dataBytes = 0;

  get done(): boolean {
    return this.finished;
  }

  feed(chunk: Buffer): DecodedChunk {
    if (this.finished) return { raw: [], data: [], done: true, rest: chunk };
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    const raw: Buffer[] = [];
    const data: Buffer[] = [];
    let dataStart = 0;
    let i = 0;
    let end = buf.length;
    let rest: Buffer = EMPTY;
    while (i < buf.length) {
      if (this.atLineStart) {
        this.atLineStart = false;
        if (buf[i] === DOT) {
          const next = buf[i + 1];
          if (next === undefined || (next === CR && buf[i + 2] === undefined)) {
            // Could be the terminator: wait for the next bytes.
            this.pending = buf.subarray(i);
            this.atLineStart = true;
            end = i;
            break;
          }
          const termLength = next === LF ? 2 : next === CR && buf[i + 2] === LF ? 3 : 0;
          if (termLength > 0) {
            this.finished = true;
            end = i;
            rest = buf.subarray(i + termLength);
            break;
          }
          // A stuffed line: the first dot is not part of the message.
          if (i > dataStart) data.push(buf.subarray(dataStart, i));
          dataStart = i + 1;
        }
      }
      const nl = buf.indexOf(LF, i);
      if (nl === -1) {
        i = buf.length;
        break;
      }
      i = nl + 1;
      this.atLineStart = true;
    }
    if (end > 0) raw.push(buf.subarray(0, end));
    if (end > dataStart) data.push(buf.subarray(dataStart, end));
    for (const r of raw) this.rawBytes += r.length;
    for (const d of data) this.dataBytes += d.length;
    return { raw, data, done: this.finished, rest };
  }
}

/** Dot-stuffs a whole message for sending as a multi-line body (tests and scripted peers). */
export function dotStuff(message: Buffer): Buffer {
  const out: Buffer[] = [];
  let start = 0;
  let lineStart = 0;
  while (lineStart < message.length) {
    if (message[lineStart] === DOT) {
      out.push(message.subarray(start, lineStart), Buffer.from('.'));
      start = lineStart;
    }
    const nl = message.indexOf(LF, lineStart);
    if (nl === -1) break;
    lineStart = nl + 1;
  }
  out.push(message.subarray(start));
  return Buffer.concat(out);
}
