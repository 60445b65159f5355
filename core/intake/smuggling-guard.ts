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
    // Bytes of the previous chunk's end let patterns straddle chunk boundaries. Only CR and LF bytes
    // matter (a dot counts only next to one), so jump between them instead of visiting every byte.
    const t = this.tail;
    const at = (i: number): number => (i < 0 ? (t[t.length + i] ?? -1) : (chunk[i] as number));
    const visit = (i: number): void => {
      const c = chunk[i] as number;
      if (c === LF && at(i - 1) !== CR) this.bareLineEnding = true;
      if (at(i - 1) === CR && c !== LF) this.bareLineEnding = true;
      this.checkDot(at(i - 4), at(i - 3), at(i - 2), at(i - 1), c);
    };
    // Positions 0..3 see bytes of the previous chunk; visit them all.
    let visited = Math.min(4, chunk.length);
    for (let i = 0; i < visited; i++) visit(i);
    let cr = chunk.indexOf(CR, 0);
    let lf = chunk.indexOf(LF, 0);
    while (cr !== -1 || lf !== -1) {
      const p = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      // The common case, a CRLF not yet visited followed by an ordinary byte: nothing before it is a
      // line ending (it would have visited up to here), so visiting CR, LF and the byte after them
      // finds nothing. Skip them; the byte after that is judged as usual if it is a line ending.
      if (p >= visited && p + 3 < chunk.length && chunk[p] === CR && chunk[p + 1] === LF) {
        const next = chunk[p + 2];
        if (next !== CR && next !== LF && next !== DOT) {
          visited = p + 3;
          cr = chunk.indexOf(CR, p + 2);
          lf = chunk.indexOf(LF, p + 2);
          continue;
        }
      }
      // A line-ending byte and the three after it decide bare CR/LF and the framing of a dot line.
      const end = Math.min(p + 4, chunk.length);
      for (let i = Math.max(p, visited); i < end; i++) visit(i);
      visited = Math.max(visited, end);
      if (cr === p) cr = chunk.indexOf(CR, p + 1);
      if (lf === p) lf = chunk.indexOf(LF, p + 1);
    }
    this.tail = [...t, ...chunk.subarray(Math.max(0, chunk.length - 4))].slice(-4);
  }

  /** A dot at position 2 of five bytes, once the byte after its follower is known. */
  private checkDot(b2: number, b1: number, dot: number, f: number, next: number): void {
    if (dot !== DOT || (b1 !== CR && b1 !== LF) || (f !== CR && f !== LF)) return;
    const crlfBefore = b1 === LF && b2 === CR;
    const crlfAfter = f === CR && next === LF;
    if (!crlfBefore || !crlfAfter) this.smuggling = true;
  }

  /** Call at end of data: a trailing CR is a bare line ending, and a dot line at the very end is judged. */
  end(): void {
    const t = this.tail;
    if (t[t.length - 1] === CR) this.bareLineEnding = true;
    this.checkDot(t[t.length - 4] ?? -1, t[t.length - 3] ?? -1, t[t.length - 2] ?? -1, t[t.length - 1] ?? -1, -1);
  }
}
