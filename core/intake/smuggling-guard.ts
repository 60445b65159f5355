// Watches DATA content (already dot-unstuffed) for the line endings that SMTP smuggling relies on:
// a lone "." framed by anything other than CRLF on both sides ("\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r"…),
// which some receivers take as end-of-data. It also notes bare CR or LF anywhere. Streaming, O(1) memory.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

export class SmugglingGuard {
  /** A dot line with non-CRLF framing was seen. */
  smuggling = false;
  /** A CR not followed by LF, or an LF not preceded by CR, was seen. */
  bareLineEnding = false;
  private tail: number[] = [];

  scan(chunk: Buffer): void {
    if (this.smuggling && this.bareLineEnding) return;
    // Bytes of the previous chunk's end let patterns straddle chunk boundaries.
    const t = this.tail;
    const at = (i: number): number => (i < 0 ? (t[t.length + i] ?? -1) : (chunk[i] as number));
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as number;
      if (c === LF && at(i - 1) !== CR) this.bareLineEnding = true;
      if (at(i - 1) === CR && c !== LF) this.bareLineEnding = true;
      // Look at a dot two bytes back once its follower is known: prev, '.', next
      if (at(i - 1) === DOT) {
        const before = at(i - 2);
        if ((before === CR || before === LF) && (c === CR || c === LF)) {
          const crlfBefore = before === LF && at(i - 3) === CR;
          const crlfAfter = c === CR; // the LF after it is checked as a bare CR on the next byte
          if (!crlfBefore || !crlfAfter) this.smuggling = true;
        }
      }
    }
    const keep = Math.min(3, chunk.length);
    this.tail = [...t, ...chunk.subarray(chunk.length - keep)].slice(-3);
  }

  /** Call at end of data: a trailing CR is a bare line ending. */
  end(): void {
    if (this.tail[this.tail.length - 1] === CR) this.bareLineEnding = true;
  }
}
