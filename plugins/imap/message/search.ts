// SEARCH evaluation over one message: BODY/TEXT match the decoded text (transfer encodings and charsets
// decoded, streaming, one pass, bounded work), HEADER/FROM/TO/… match RFC 2047-decoded header values.
// Matching is a case-insensitive substring test over the message's IMAP view (bare LF read as CRLF,
// crlf.ts), whose offsets the part index holds. Trusts ImapMessageData from imapDataOf(); the blob is
// only read, never buffered whole. Hands on booleans.
import type { Readable } from 'node:stream';
import libmime from 'libmime';
import { transferDecoder, type ChunkDecoder } from '../../../core/mime/transfer-decoding.ts';
import { crlfView } from './crlf.ts';
import { headerFieldsOf, MAX_HEADER_BYTES } from './structure.ts';
import { partIndexOf, type ImapMessageData, type PartIndex } from './types.ts';

/** Decoded bytes examined per message at most; the rest of a huge message is not searched. */
export const MAX_SEARCH_BYTES = 64 * 1024 * 1024;
const MAX_DECODE_VALUE = 64 * 1024;

/** How SEARCH compares text: NFC, then lower case (needle and haystack alike). */
export const fold = (s: string): string => s.normalize('NFC').toLowerCase();

function decodedValue(raw: string): string {
  const v = raw.length > MAX_DECODE_VALUE ? raw.slice(0, MAX_DECODE_VALUE) : raw;
  try {
    const d = libmime.decodeWords(v);
    return typeof d === 'string' ? d : v;
  } catch {
    return v;
  }
}

/**
 * What SEARCH HEADER/FROM/TO/… compares against: for every occurrence of `field`, its RFC 2047-decoded
 * value and its raw value, both folded (NFC, lower case). Empty when the field is absent. Cacheable:
 * it depends only on the header bytes.
 */
export function headerSearchValues(headerBytes: Buffer, field: string): string[] {
  const name = field.toLowerCase();
  const out: string[] = [];
  for (const f of headerFieldsOf(headerBytes.subarray(0, MAX_HEADER_BYTES))) {
    if (f.name.toLowerCase() === name) out.push(fold(decodedValue(f.value)), fold(f.value));
  }
  return out;
}

/** Case-insensitive substring of any value from headerSearchValues(); an empty needle asks whether the field is present. */
export function headerValuesMatch(values: readonly string[], needle: string): boolean {
  if (values.length === 0) return false;
  const want = fold(needle);
  return want === '' || values.some((v) => v.includes(want));
}

/**
 * headerValuesMatch() over the values joined as NUL + values.join(NUL) ('' when the field is absent):
 * a needle cannot hold NUL, so it matches within one value or not at all.
 */
export function joinedValuesMatch(joined: string, needle: string): boolean {
  if (joined === '') return false;
  const want = fold(needle);
  return want === '' || joined.includes(want);
}

/** SEARCH HEADER/FROM/TO/CC/BCC/SUBJECT: case-insensitive substring of the decoded (RFC 2047) header values; empty needle = field present. */
export function headerMatches(headerBytes: Buffer, field: string, needle: string): boolean {
  return headerValuesMatch(headerSearchValues(headerBytes, field), needle);
}

function textDecoder(charset: string | undefined): TextDecoder {
  try {
    return new TextDecoder(charset ?? 'utf-8');
  } catch {
    return new TextDecoder('windows-1252');
  }
}

interface Segment {
  start: number;
  end: number;
  kind: 'header' | 'text';
  part: PartIndex;
}

/** What a search reads: headers (decoded as fields) and text/* bodies, in byte order. */
function segmentsOf(root: PartIndex, where: 'BODY' | 'TEXT'): Segment[] {
  const out: Segment[] = [];
  // The part index is bounded in depth (types.ts), so the recursion is too.
  const walk = (p: PartIndex): void => {
    if (p.p) for (const c of p.p) walk(c);
    else if (p.m) {
      out.push({ start: p.m.h, end: p.m.b, kind: 'header', part: p.m });
      walk(p.m);
    } else if (p.t.startsWith('text/') || p.t === 'message/delivery-status') out.push({ start: p.b, end: p.e, kind: 'text', part: p });
  };
  if (where === 'TEXT') out.push({ start: root.h, end: root.b, kind: 'header', part: root });
  walk(root);
  return out.filter((s) => s.end > s.start).sort((a, b) => a.start - b.start);
}

/** Where scanned text goes: folded pieces of one segment, then a reset between segments. */
interface TextSink {
  readonly done: boolean;
  feed(text: string): void;
  reset(): void;
}

/** Case-insensitive substring search over text arriving in pieces. */
class Matcher implements TextSink {
  private tail = '';
  found = false;
  constructor(private readonly needle: string) {}
  get done(): boolean {
    return this.found;
  }
  feed(text: string): void {
    if (this.found || text === '') return;
    const hay = this.tail + fold(text);
    if (hay.includes(this.needle)) this.found = true;
    this.tail = hay.slice(Math.max(0, hay.length - this.needle.length + 1));
  }
  reset(): void {
    this.tail = '';
  }
}

/** Segment separator in collected text: IMAP strings cannot hold NUL, so no needle spans two segments. */
const SEPARATOR = '\u0000';

/** Collects the folded text of every segment, up to `limit` characters (then gives up: `over`). */
class Collector implements TextSink {
  private readonly parts: string[] = [];
  private length = 0;
  over = false;
  constructor(private readonly limit: number) {}
  get done(): boolean {
    return this.over;
  }
  feed(text: string): void {
    if (this.over || text === '') return;
    const folded = fold(text);
    this.length += folded.length;
    if (this.length > this.limit) {
      this.over = true;
      this.parts.length = 0;
      return;
    }
    this.parts.push(folded);
  }
  reset(): void {
    if (!this.over) this.parts.push(SEPARATOR);
  }
  text(): string | null {
    return this.over ? null : this.parts.join('');
  }
}

/** SEARCH BODY/TEXT: case-insensitive substring match on decoded text (transfer encodings and charsets decoded to UTF-8). */
export async function textMatches(open: () => Promise<Readable>, data: ImapMessageData, where: 'BODY' | 'TEXT', needle: string): Promise<boolean> {
  const want = fold(needle);
  if (want === '') return true;
  const matcher = new Matcher(want);
  await scanText(open, data, where, matcher);
  return matcher.found;
}

/**
 * The folded decoded text SEARCH BODY/TEXT compares against, segments separated by NUL, or null when
 * it is longer than `limit` characters. `collectedMatches` tests it exactly as textMatches() would.
 */
export async function collectText(open: () => Promise<Readable>, data: ImapMessageData, where: 'BODY' | 'TEXT', limit: number): Promise<string | null> {
  const collector = new Collector(limit);
  await scanText(open, data, where, collector);
  return collector.text();
}

/** Collects folded text into a head (the top-level header segment) and a body, each kept up to `limit` characters. */
class SplitCollector implements TextSink {
  readonly head: string[] = [];
  readonly body: string[] = [];
  private inHead: boolean;
  private headLength = 0;
  private bodyLength = 0;
  truncated = false;
  constructor(private readonly limit: number, headFirst: boolean) {
    this.inHead = headFirst;
  }
  get done(): boolean {
    return false;
  }
  feed(text: string): void {
    if (text === '') return;
    const folded = fold(text);
    const used = this.inHead ? this.headLength : this.bodyLength;
    const room = this.limit - used;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const piece = folded.length > room ? folded.slice(0, room) : folded;
    if (piece.length < folded.length) this.truncated = true;
    (this.inHead ? this.head : this.body).push(piece);
    if (this.inHead) this.headLength += piece.length;
    else this.bodyLength += piece.length;
  }
  reset(): void {
    if (this.inHead) this.inHead = false;
    else this.body.push(SEPARATOR);
  }
}

/** The text SEARCH TEXT and BODY compare against, for a search index: see collectSearchText(). */
export interface SearchText {
  /** The folded top-level header as SEARCH TEXT reads it ("Name: decoded value" lines). */
  head: string;
  /** The folded text SEARCH BODY reads, segments separated by NUL. */
  body: string;
  /** True when either was cut at the limit or the message is past MAX_SEARCH_BYTES (an index must then not rule it out). */
  truncated: boolean;
}

/**
 * The exact text SEARCH TEXT/BODY match against, split into the top-level header and the body, each up
 * to `limit` characters: SEARCH TEXT matches a needle iff head or body contains it (segments never
 * join), SEARCH BODY iff body does, so an index built from it can rule messages out without changing
 * any answer (when not truncated).
 */
export async function collectSearchText(open: () => Promise<Readable>, data: ImapMessageData, limit: number): Promise<SearchText> {
  const root = partIndexOf(data.parts);
  if (!root) return { head: '', body: '', truncated: false };
  const sink = new SplitCollector(limit, root.b > root.h);
  const complete = await scanText(open, data, 'TEXT', sink);
  return { head: sink.head.join(''), body: sink.body.join(''), truncated: sink.truncated || !complete };
}

export function collectedMatches(text: string, needle: string): boolean {
  const want = fold(needle);
  return want === '' || text.includes(want);
}

async function scanText(open: () => Promise<Readable>, data: ImapMessageData, where: 'BODY' | 'TEXT', sink: TextSink): Promise<boolean> {
  const root = partIndexOf(data.parts);
  if (!root) return true;
  const segments = segmentsOf(root, where);
  if (segments.length === 0) return true;
  let seg = 0;
  let transfer: ChunkDecoder | null = null;
  let chars: TextDecoder | null = null;
  let header: Buffer[] = [];
  let budget = MAX_SEARCH_BYTES;
  const finish = (s: Segment): void => {
    if (s.kind === 'header') {
      const fields = headerFieldsOf(Buffer.concat(header));
      sink.feed(fields.map((f) => `${f.name}: ${decodedValue(f.value)}`).join('\n'));
      header = [];
    } else if (transfer && chars) {
      sink.feed(chars.decode(transfer.end(), { stream: true }) + chars.decode());
    }
    transfer = null;
    chars = null;
    sink.reset();
  };
  const feed = (s: Segment, bytes: Buffer): void => {
    budget -= bytes.length;
    if (s.kind === 'header') {
      if (header.reduce((n, b) => n + b.length, 0) < MAX_HEADER_BYTES) header.push(Buffer.from(bytes));
      return;
    }
    transfer ??= transferDecoder(s.part.x);
    chars ??= textDecoder(s.part.c);
    sink.feed(chars.decode(transfer.write(bytes), { stream: true }));
  };
  const src = await open();
  let pos = 0;
  try {
    for await (const chunk of crlfView(src)) {
      const from = pos;
      pos += chunk.length;
      while (seg < segments.length && !sink.done && budget > 0) {
        const s = segments[seg] as Segment;
        if (s.start >= pos) break;
        const a = Math.max(s.start, from);
        const b = Math.min(s.end, pos);
        if (b > a) feed(s, chunk.subarray(a - from, b - from));
        if (s.end > pos) break;
        finish(s);
        seg++;
      }
      if (sink.done || seg >= segments.length || budget <= 0) break;
    }
    if (!sink.done && seg < segments.length) finish(segments[seg] as Segment);
  } finally {
    src.destroy();
  }
  /** Whether every segment was read (not cut short by the byte budget). */
  return budget > 0;
}
