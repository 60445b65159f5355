// mboxrd writer: the "From " separator line of a message and the quoting of its bytes, so that
// core/import/mbox.ts (and mutt, Dovecot, Thunderbird) read back exactly the bytes given here.
// Quoting: every line that starts with zero or more ">" and then "From " gets one more ">" (mboxrd, so
// the reader removes exactly one). A message is written as: From_ line, quoted bytes, a newline when the
// bytes do not end with one, and one empty line. The bytes are never otherwise touched: CRLF and bare
// LF are kept as they are. A message whose bytes do not end with a newline carries the mark
// NO_FINAL_NEWLINE_MARK at the end of its From_ line (after the date, where readers ignore trailing
// words), so the reader drops the newline the writer added. Streams in O(1) memory whatever the line
// lengths: a run of ">" is counted, not buffered.

/** The trailing word on a From_ line saying the message's bytes do not end with a newline. */
export const NO_FINAL_NEWLINE_MARK = 'postern:no-final-newline';

const FROM = Buffer.from('From ');
const GT = 0x3e;
const LF = 0x0a;
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** asctime(3) in UTC, as mbox From_ lines carry it: "Thu Jan  1 00:00:00 1970". */
export function asctime(d: Date): string {
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/**
 * The From_ line (with its LF) of one message: the envelope sender, or MAILER-DAEMON when there is none
 * or it is not one printable word, and the time in asctime form.
 */
export function fromLine(sender: string, at: Date, noFinalNewline: boolean): Buffer {
  const who = /^[!-~]{1,320}$/.test(sender) ? sender : 'MAILER-DAEMON';
  const when = Number.isNaN(at.getTime()) ? new Date(0) : at;
  return Buffer.from(`From ${who} ${asctime(when)}${noFinalNewline ? ` ${NO_FINAL_NEWLINE_MARK}` : ''}\n`, 'latin1');
}

/** Whether a From_ line (with or without its line ending) carries NO_FINAL_NEWLINE_MARK. */
export function hasNoFinalNewlineMark(line: Buffer): boolean {
  let end = line.length;
  while (end > 0 && (line[end - 1] === LF || line[end - 1] === 0x0d)) end--;
  const mark = ` ${NO_FINAL_NEWLINE_MARK}`;
  return end >= mark.length && line.toString('latin1', end - mark.length, end) === mark;
}

const MAX_SLICE = 64 * 1024;

/**
 * mboxrd quoting of one message's bytes, fed chunk by chunk. State across chunks: whether the next byte
 * starts a line, and for a line start still undecided, how many ">" and how much of "From " were seen.
 */
export class MboxrdQuoter {
  /** ">" seen at the start of the line being decided. */
  private gts = 0;
  /** Bytes of "From " seen after them. */
  private matched = 0;
  private deciding = true;
  private last = -1;

  /** The quoted form of the next chunk (pieces to write in order). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (!this.deciding) {
        const nl = chunk.indexOf(LF, pos);
        const end = nl < 0 ? chunk.length : nl + 1;
        out.push(chunk.subarray(pos, end));
        pos = end;
        if (nl >= 0) this.startLine();
        continue;
      }
      const b = chunk[pos] as number;
      pos++;
      if (this.matched === 0 && b === GT) {
        this.gts++;
        continue;
      }
      if (b === FROM[this.matched]) {
        this.matched++;
        if (this.matched === FROM.length) this.decide(out, true);
        continue;
      }
      // Not a From line: the byte that told is written with the rest of the line.
      this.decide(out, false);
      pos--;
    }
    if (chunk.length > 0) this.last = chunk[chunk.length - 1] as number;
    return out;
  }

  /** What is still held at the end of the message (a line start that never became "From "). */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.deciding && (this.gts > 0 || this.matched > 0)) this.decide(out, false);
    return out;
  }

  /** Whether the bytes fed so far end with a newline (false for none at all). */
  endsWithNewline(): boolean {
    return this.last === LF;
  }

  private startLine(): void {
    this.deciding = true;
    this.gts = 0;
    this.matched = 0;
  }

  /** Emit the held line start, quoted or not; the rest of the line passes through. */
  private decide(out: Buffer[], quote: boolean): void {
    let gts = this.gts + (quote ? 1 : 0);
    while (gts > 0) {
      const n = Math.min(gts, MAX_SLICE);
      out.push(Buffer.alloc(n, GT));
      gts -= n;
    }
    if (this.matched > 0) out.push(FROM.subarray(0, this.matched));
    this.deciding = false;
  }
}

/** A whole message quoted at once (tests, small messages): From_ line excluded, trailing separator included. */
export function mboxrdBody(bytes: Buffer): Buffer {
  const q = new MboxrdQuoter();
  const parts = [...q.push(bytes), ...q.end()];
  return Buffer.concat([...parts, ...messageTrailer(bytes.length > 0 && bytes[bytes.length - 1] === LF)]);
}

/** What follows a message's quoted bytes: the missing newline (if any) and the empty separator line. */
export function messageTrailer(endsWithNewline: boolean): Buffer[] {
  return endsWithNewline ? [Buffer.from('\n')] : [Buffer.from('\n\n')];
}
