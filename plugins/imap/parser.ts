// Tokenizer for one assembled IMAP command (RFC 3501 section 9 grammar, leniently spaced): atoms,
// quoted strings, literals ({n} and {n+}), parenthesised lists, and the bracketed section of fetch
// attributes (BODY[HEADER.FIELDS (A B)]<0.10>) kept as one atom. Sequence sets and the typed argument
// helpers commands use. Trusts nothing: every malformed input is an ImapBad (tagged BAD).

export type Token =
  | { t: 'atom'; v: string }
  | { t: 'string'; v: Buffer }
  | { t: 'list'; v: Token[] };

/** A command the client got wrong: answered with a tagged BAD. */
export class ImapBad extends Error {}
/** A command refused in this state or on this data: answered with a tagged NO (code e.g. "CANNOT"). */
export class ImapNo extends Error {
  constructor(message: string, readonly code: string | null = null) {
    super(message);
  }
}

export interface ParsedCommand {
  tag: string;
  name: string;
  args: Token[];
}

const TAG = /^[^\x00-\x20\x7f-\xff(){%*"\\+]+$/;
const MAX_DEPTH = 16;

function isAtomChar(c: number): boolean {
  // ATOM-CHAR minus the specials; "%" and "*" are allowed (LIST wildcards), "]" (resp-specials), "\"
  // (flags such as \Seen) and 8-bit bytes (UTF-8 search words some clients send unquoted) too.
  return c > 0x20 && c !== 0x7f && c !== 0x28 && c !== 0x29 && c !== 0x7b && c !== 0x22;
}

export function tokenize(data: Buffer): Token[] {
  let pos = 0;
  const parseList = (depth: number, closing: boolean): Token[] => {
    if (depth > MAX_DEPTH) throw new ImapBad('Lists nested too deeply');
    const out: Token[] = [];
    for (;;) {
      while (data[pos] === 0x20) pos++;
      if (pos >= data.length) {
        if (closing) throw new ImapBad('Missing ")"');
        return out;
      }
      const c = data[pos] as number;
      if (c === 0x29) {
        if (!closing) throw new ImapBad('Unexpected ")"');
        pos++;
        return out;
      }
      if (c === 0x28) {
        pos++;
        out.push({ t: 'list', v: parseList(depth + 1, true) });
      } else if (c === 0x22) {
        pos++;
        const bytes: number[] = [];
        for (;;) {
          if (pos >= data.length) throw new ImapBad('Unterminated quoted string');
          const q = data[pos++] as number;
          if (q === 0x22) break;
          if (q === 0x0d || q === 0x0a) throw new ImapBad('Line break in a quoted string');
          if (q === 0x5c) {
            const e = data[pos++];
            if (e !== 0x22 && e !== 0x5c) throw new ImapBad('Only \\" and \\\\ may be escaped in a quoted string');
            bytes.push(e);
          } else {
            bytes.push(q);
          }
        }
        out.push({ t: 'string', v: Buffer.from(bytes) });
      } else if (c === 0x7b) {
        const m = /^\{(\d{1,20})\+?\}\r\n/.exec(data.subarray(pos, pos + 28).toString('latin1'));
        if (!m) throw new ImapBad('Malformed literal');
        pos += m[0].length;
        const n = Number(m[1]);
        if (pos + n > data.length) throw new ImapBad('Literal shorter than announced');
        out.push({ t: 'string', v: Buffer.from(data.subarray(pos, pos + n)) });
        pos += n;
      } else {
        const start = pos;
        while (pos < data.length) {
          const a = data[pos] as number;
          if (a === 0x5b) {
            // A fetch section: everything up to the matching "]" belongs to the atom.
            const end = data.indexOf(0x5d, pos);
            if (end < 0) throw new ImapBad('Missing "]"');
            for (let i = pos; i < end; i++) if ((data[i] as number) < 0x20 || (data[i] as number) > 0x7e) throw new ImapBad('Invalid character in a section');
            pos = end + 1;
            continue;
          }
          if (!isAtomChar(a)) break;
          pos++;
        }
        if (pos === start) throw new ImapBad(`Unexpected character 0x${c.toString(16).padStart(2, '0')}`);
        const next = data[pos];
        if (next !== undefined && next !== 0x20 && next !== 0x29 && next !== 0x28) throw new ImapBad('Invalid character in an atom');
        out.push({ t: 'atom', v: data.subarray(start, pos).toString('latin1') });
      }
      const after = data[pos];
      if (after !== undefined && after !== 0x20 && after !== 0x29 && after !== 0x28) throw new ImapBad('Expected a space between arguments');
    }
  };
  return parseList(0, false);
}

/** Split a command into tag, upper-cased name and arguments; null tag when even the tag is unusable. */
export function parseCommand(data: Buffer): { tag: string | null; command: ParsedCommand | null; error: string | null } {
  const sp = data.indexOf(0x20);
  const tag = (sp < 0 ? data : data.subarray(0, sp)).toString('latin1');
  if (!TAG.test(tag)) return { tag: null, command: null, error: 'Invalid tag' };
  if (sp < 0) return { tag, command: null, error: 'Missing command' };
  let tokens: Token[];
  try {
    tokens = tokenize(data.subarray(sp + 1));
  } catch (err) {
    return { tag, command: null, error: err instanceof ImapBad ? err.message : 'Malformed command' };
  }
  const [first, ...args] = tokens;
  if (!first || first.t !== 'atom' || !/^[A-Za-z][A-Za-z0-9.-]*$/.test(first.v)) return { tag, command: null, error: 'Missing or invalid command name' };
  return { tag, command: { tag, name: first.v.toUpperCase(), args }, error: null };
}

/** An astring/nstring argument as text (atoms, quoted strings and literals alike). */
export function astring(t: Token | undefined, what: string): string {
  if (!t) throw new ImapBad(`Missing ${what}`);
  if (t.t === 'atom') return /[\x80-\xff]/.test(t.v) ? Buffer.from(t.v, 'latin1').toString('utf8') : t.v;
  if (t.t === 'string') return t.v.toString('utf8');
  throw new ImapBad(`${what} must be a string, not a list`);
}

export function atom(t: Token | undefined, what: string): string {
  if (!t || t.t !== 'atom') throw new ImapBad(`Missing ${what}`);
  return t.v;
}

export function expectArgs(args: Token[], min: number, max: number, usage: string): void {
  if (args.length < min || args.length > max) throw new ImapBad(`Wrong number of arguments; usage: ${usage}`);
}

/** A sequence-set range; 0 stands for "*". */
export type SeqRange = readonly [number, number];

const SEQ_NUMBER = /^(\*|[1-9]\d{0,9})$/;

export function parseSequenceSet(text: string): SeqRange[] {
  if (text === '' || text.length > 100_000) throw new ImapBad('Invalid sequence set');
  const out: SeqRange[] = [];
  for (const part of text.split(',')) {
    const bounds = part.split(':');
    if (bounds.length > 2) throw new ImapBad(`Invalid sequence set "${text.slice(0, 60)}"`);
    const nums = bounds.map((b) => {
      if (!SEQ_NUMBER.test(b)) throw new ImapBad(`Invalid sequence set "${text.slice(0, 60)}"`);
      const n = b === '*' ? 0 : Number(b);
      if (n > 0xffffffff) throw new ImapBad(`Sequence number ${b} is out of range`);
      return n;
    });
    out.push([nums[0] as number, (nums[1] ?? nums[0]) as number]);
  }
  return out;
}

export function isSequenceSet(text: string): boolean {
  return /^[\d*:,]+$/.test(text);
}

/**
 * Message sequence numbers (1-based, ascending, unique) a set names in a mailbox of `count` messages.
 * Numbers beyond count are an error, as RFC 3501 requires of message sequence numbers.
 */
export function resolveSequence(ranges: SeqRange[], count: number): number[] {
  if (count === 0) {
    // "1:*" in an empty mailbox names nothing (clients send it blindly); a plain number is an error.
    if (ranges.every(([a, b]) => a === 0 || b === 0)) return [];
    throw new ImapBad('Invalid message sequence number (the mailbox is empty)');
  }
  const picked = new Picked(count);
  for (const [a0, b0] of ranges) {
    const a = a0 === 0 ? count : a0;
    const b = b0 === 0 ? count : b0;
    if (a > count || b > count) throw new ImapBad(`Invalid message sequence number (the mailbox has ${count})`);
    picked.range(Math.min(a, b), Math.max(a, b));
  }
  return picked.list();
}

/**
 * Sequence numbers 1..count picked by ranges, listed ascending without duplicates: one range is listed
 * directly; several are marked in a byte map (linear, no sort of a 100,000-number set).
 */
class Picked {
  private first: [number, number] | null = null;
  private map: Uint8Array | null = null;
  constructor(private readonly count: number) {}
  range(lo: number, hi: number): void {
    if (hi < lo) return;
    if (this.first === null && this.map === null) {
      this.first = [lo, hi];
      return;
    }
    if (this.map === null) {
      this.map = new Uint8Array(this.count + 1);
      const [a, b] = this.first as [number, number];
      this.map.fill(1, a, b + 1);
      this.first = null;
    }
    this.map.fill(1, lo, hi + 1);
  }
  list(): number[] {
    if (this.first) {
      const [a, b] = this.first;
      const out = new Array<number>(b - a + 1);
      for (let i = a; i <= b; i++) out[i - a] = i;
      return out;
    }
    const out: number[] = [];
    if (this.map) for (let i = 1; i <= this.count; i++) if (this.map[i] === 1) out.push(i);
    return out;
  }
}

/** Sequence numbers of the messages whose UIDs a set names (missing UIDs are ignored). */
export function resolveUids(ranges: SeqRange[], uids: ArrayLike<number>, count: number): number[] {
  if (count === 0) return [];
  const maxUid = uids[count - 1] as number;
  const picked = new Picked(count);
  for (const [a0, b0] of ranges) {
    const a = a0 === 0 ? maxUid : a0;
    const b = b0 === 0 ? maxUid : b0;
    // Positions [from, to) hold the UIDs within [lo, hi]; as sequence numbers, from+1 … to.
    const from = lowerBound(uids, count, Math.min(a, b));
    const to = lowerBound(uids, count, Math.max(a, b) + 1);
    picked.range(from + 1, to);
  }
  return picked.list();
}

function lowerBound(uids: ArrayLike<number>, count: number, value: number): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((uids[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
