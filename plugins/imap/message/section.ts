// BODY[section]<partial> (RFC 3501 6.4.5): parses the section text and serves the bytes of a section
// of the message's IMAP view (bare LF read as CRLF, crlf.ts) by the view offsets in the part index,
// converted from the stored original while streaming, with backpressure and with the size known
// before the first byte (literal framing); partial offsets are view offsets. Trusts ImapMessageData
// from imapDataOf(); the blob is checked to be at least as long as the offsets say (a short blob fails
// the stream, never silently shortens a literal). Hands on { size, stream }.
import { Readable } from 'node:stream';
import { viewWindow } from './crlf.ts';
import { BufferStream } from './buffer-stream.ts';
import { MAX_DEPTH, partIndexOf, type ImapMessageData, type PartIndex, type SectionSpec } from './types.ts';

/** Header bytes read for HEADER.FIELDS; a longer header is filtered on its first MAX bytes only. */
export const MAX_FIELDS_HEADER = 1024 * 1024;
const MAX_FIELD_NAMES = 200;
const FIELD_ATOM = /^[\x21-\x39\x3b-\x7e]+$/;

/** Parse the text between [ and ] of BODY[...] (e.g. "1.2.HEADER.FIELDS (From To)"); null when invalid. */
export function parseSection(text: string): SectionSpec | null {
  const m = /^((?:[1-9][0-9]{0,9})(?:\.[1-9][0-9]{0,9})*)?(?:(^|\.)([A-Za-z.]+))?(?: \((.*)\))?$/s.exec(text);
  if (!m) return null;
  const part = m[1] ? m[1].split('.').map(Number) : [];
  if (part.some((n) => n > 0xffffffff) || part.length > MAX_DEPTH * 2) return null;
  const keyword = (m[3] ?? '').toUpperCase();
  const list = m[4];
  if (keyword === '' && m[2] === '.') return null;
  let kind: SectionSpec['text'];
  switch (keyword) {
    case '': kind = 'ALL'; break;
    case 'HEADER': kind = 'HEADER'; break;
    case 'TEXT': kind = 'TEXT'; break;
    case 'MIME': kind = 'MIME'; break;
    case 'HEADER.FIELDS': kind = 'HEADER.FIELDS'; break;
    case 'HEADER.FIELDS.NOT': kind = 'HEADER.FIELDS.NOT'; break;
    default: return null;
  }
  if (kind === 'MIME' && part.length === 0) return null;
  const wantsList = kind === 'HEADER.FIELDS' || kind === 'HEADER.FIELDS.NOT';
  if (wantsList !== (list !== undefined)) return null;
  const fields = list === undefined ? [] : fieldNames(list);
  if (fields === null || (wantsList && fields.length === 0)) return null;
  return { part, text: kind, fields };
}

/** header-list contents: atoms or quoted strings separated by single spaces. */
function fieldNames(list: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  while (i < list.length) {
    if (out.length > 0) {
      if (list[i] !== ' ') return null;
      i++;
    }
    let name: string;
    if (list[i] === '"') {
      const close = list.indexOf('"', i + 1);
      if (close < 0) return null;
      name = list.slice(i + 1, close);
      i = close + 1;
    } else {
      let j = i;
      while (j < list.length && list[j] !== ' ') j++;
      name = list.slice(i, j);
      i = j;
    }
    if (!FIELD_ATOM.test(name) || out.length >= MAX_FIELD_NAMES) return null;
    out.push(name);
  }
  return out;
}

/** The entity a part number path names (RFC 3501 6.4.5 numbering, as Dovecot resolves it), or null. */
export function resolvePart(root: PartIndex, path: number[]): PartIndex | null {
  let cur = root;
  // True when cur is a whole (non-multipart) message standing in for its own part 1: it has no sub-parts.
  let messageBody = false;
  for (let i = 0; i < path.length; i++) {
    const n = path[i] as number;
    // Inside a message/rfc822 part the numbering continues in the message it carries.
    const container = i === 0 ? root : cur.m ?? cur;
    const intoMessage = i === 0 || cur.m !== undefined;
    if (container.p) {
      const child = container.p[n - 1];
      if (!child) return null;
      cur = child;
      messageBody = false;
    } else if (n === 1 && (intoMessage || !messageBody)) {
      // A non-multipart message's part 1 is its body; a leaf part's only sub-part is itself (Dovecot
      // answers BODY[1.1] for a text/plain part 1 of a multipart with part 1).
      messageBody = intoMessage;
      cur = container;
    } else {
      return null;
    }
  }
  return cur;
}

/** Streams bytes [start, end) of the message's IMAP view (crlf.ts); fails when the blob ends early. */
async function* window(open: () => Promise<Readable>, start: number, end: number): AsyncGenerator<Buffer> {
  if (end <= start) return;
  yield* viewWindow(await open(), start, end);
}

export async function readRange(open: () => Promise<Readable>, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of window(open, start, end)) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

/** Field names by length, lower case as bytes, for matching header lines without decoding them. */
function nameTable(names: string[]): Map<number, Buffer[]> {
  const table = new Map<number, Buffer[]>();
  for (const n of new Set(names.map((x) => x.toLowerCase()))) {
    const bytes = Buffer.from(n, 'latin1');
    const list = table.get(bytes.length);
    if (list) list.push(bytes);
    else table.set(bytes.length, [bytes]);
  }
  return table;
}

/** Whether header[start, start+length) equals one of `candidates` ignoring ASCII case. */
function nameIn(header: Buffer, start: number, length: number, candidates: Buffer[] | undefined): boolean {
  if (!candidates) return false;
  for (const c of candidates) {
    let i = 0;
    for (; i < length; i++) {
      let b = header[start + i] as number;
      if (b >= 0x41 && b <= 0x5a) b += 0x20;
      if (b !== c[i]) break;
    }
    if (i === length) return true;
  }
  return false;
}

/** The header lines whose field names are (or, with not, are not) in `names`, then CRLF. */
export function filterHeader(header: Buffer, names: string[], not: boolean): Buffer {
  const table = nameTable(names);
  const out: Buffer[] = [];
  let keep = false;
  let pos = 0;
  while (pos < header.length) {
    const nl = header.indexOf(0x0a, pos);
    const end = nl < 0 ? header.length : nl + 1;
    const start = pos;
    pos = end;
    const first = header[start];
    if (first === 0x0d || first === 0x0a) break; // the blank line
    if (first === 0x20 || first === 0x09) {
      if (keep) out.push(header.subarray(start, end));
      continue;
    }
    let colon = start;
    while (colon < end && header[colon] !== 0x3a) colon++;
    if (colon === start || colon === end) {
      keep = false;
      continue;
    }
    let nameEnd = colon;
    while (nameEnd > start && (header[nameEnd - 1] === 0x20 || header[nameEnd - 1] === 0x09)) nameEnd--;
    keep = nameIn(header, start, nameEnd - start, table.get(nameEnd - start)) !== not;
    if (keep) out.push(header.subarray(start, end));
  }
  // A last line without a line break still ends before the blank line.
  const last = out[out.length - 1];
  if (last && last[last.length - 1] !== 0x0a) out.push(Buffer.from('\r\n'));
  out.push(Buffer.from('\r\n'));
  return Buffer.concat(out);
}

function clip(size: number, partial?: { start: number; length: number }): [number, number] {
  if (!partial) return [0, size];
  const start = Math.min(Math.max(0, partial.start), size);
  return [start, Math.min(size, start + Math.max(0, partial.length))];
}

/** The bytes of a section (whole message for part=[] and text 'ALL'), optionally a <start.length> window. */
export async function sectionOf(
  data: ImapMessageData, spec: SectionSpec, open: () => Promise<Readable>, partial?: { start: number; length: number },
  /** The top-level header of the view (from a cache), for HEADER.FIELDS of the message itself. */
  topHeader?: () => Promise<Buffer>,
): Promise<{ size: number; stream: Readable }> {
  const root = partIndexOf(data.parts);
  const target = root === null ? null : resolvePart(root, spec.part);
  const empty = { size: 0, stream: new BufferStream(Buffer.alloc(0)) };
  if (!target) return empty;
  // HEADER, TEXT and HEADER.FIELDS of a part refer to the message a message/rfc822 part carries.
  const msg = spec.part.length === 0 ? target : target.m ?? null;
  let range: [number, number];
  switch (spec.text) {
    case 'ALL': range = spec.part.length === 0 ? [0, target.e] : [target.b, target.e]; break;
    case 'MIME': range = [target.h, target.b]; break;
    case 'HEADER': if (!msg) return empty; range = [msg.h, msg.b]; break;
    case 'TEXT': if (!msg) return empty; range = [msg.b, msg.e]; break;
    default: {
      if (!msg) return empty;
      const whole = spec.part.length === 0 && topHeader && msg.h === 0 && msg.b === data.headerSize ? await topHeader() : null;
      const header = whole ? whole.subarray(0, MAX_FIELDS_HEADER) : await readRange(open, msg.h, Math.min(msg.b, msg.h + MAX_FIELDS_HEADER));
      const bytes = filterHeader(header, spec.fields, spec.text === 'HEADER.FIELDS.NOT');
      const [s, e] = clip(bytes.length, partial);
      return { size: e - s, stream: new BufferStream(bytes.subarray(s, e)) };
    }
  }
  const [s, e] = clip(range[1] - range[0], partial);
  if (e <= s) return empty;
  return { size: e - s, stream: Readable.from(window(open, range[0] + s, range[0] + e), { objectMode: false }) };
}
