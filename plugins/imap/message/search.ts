// SEARCH evaluation over one message, answering as Dovecot 2.3 does (the reference server; see
// search-decode.ts for how text is decoded). BODY reads the bodies of the text/* and message/* leaf
// parts (RFC 2045 6.4: none in an unknown Content-Transfer-Encoding), no header at all; TEXT reads those
// bodies and every header: the message's, each MIME part's (attachment file names) and each attached
// message's. HEADER matches decoded field values, SUBJECT with whitespace runs as one space, FROM/TO/CC/BCC
// the address list as Dovecot writes it back (comments dropped, a comment after an address as its
// name, RFC 3501's envelope fields). Matching is a case-insensitive substring test over the message's
// IMAP view (bare LF read as CRLF, crlf.ts), whose offsets the part index holds. Trusts ImapMessageData
// from imapDataOf(); the blob is only read, never buffered whole. Hands on booleans and search text.
import type { Readable } from 'node:stream';
import { transferDecoder, type ChunkDecoder } from '../../../core/mime/transfer-decoding.ts';
import { parseAddressList, writeAddressList } from './address-list.ts';
import { crlfView } from './crlf.ts';
import { parseStructured } from './mime-fields.ts';
import { charsetDecoder, compressLwsp, decodeHeaderValue, headerSearchText, searchHeaderLines, transferEncodingOf, type StreamDecoder } from './search-decode.ts';
import { MAX_HEADER_BYTES } from './structure.ts';
import { partIndexOf, type ImapMessageData, type PartIndex } from './types.ts';

/** Decoded bytes examined per message at most; the rest of a huge message is not searched. */
export const MAX_SEARCH_BYTES = 64 * 1024 * 1024;
const MAX_DECODE_VALUE = 64 * 1024;

/** How SEARCH compares text: NFC, then lower case (needle and haystack alike). */
export const fold = (s: string): string => s.normalize('NFC').toLowerCase();

/** How a header key compares a field: HEADER as decoded, SUBJECT with whitespace compressed, FROM/TO/CC/BCC as an address list. */
export type HeaderMode = 'plain' | 'subject' | 'address';

const ADDRESS_FIELDS = new Set(['from', 'to', 'cc', 'bcc']);

/** The mode of the SEARCH key named after a field (FROM, TO, CC, BCC, SUBJECT); any other field compares as HEADER does. */
export function headerModeOf(field: string): HeaderMode {
  const name = field.toLowerCase();
  return ADDRESS_FIELDS.has(name) ? 'address' : name === 'subject' ? 'subject' : 'plain';
}

/** One field value (one character per byte, folded lines joined) as the key in `mode` compares it, not yet folded. */
function searchValue(raw: string, mode: HeaderMode): string {
  const v = raw.length > MAX_DECODE_VALUE ? raw.slice(0, MAX_DECODE_VALUE) : raw;
  if (mode === 'address') return decodeHeaderValue(writeAddressList(parseAddressList(v)));
  return decodeHeaderValue(mode === 'subject' ? compressLwsp(v) : v);
}

/**
 * What SEARCH HEADER/FROM/TO/… compares against: for every occurrence of `field`, its value as the key
 * in `mode` reads it (see HeaderMode), folded (NFC, lower case). Empty when the field is absent.
 * The default mode is that of the key named after the field (FROM is an address list, SUBJECT has its
 * whitespace compressed). Cacheable: it depends only on the header bytes.
 */
export function headerSearchValues(headerBytes: Buffer, field: string, mode: HeaderMode = headerModeOf(field)): string[] {
  const name = field.toLowerCase();
  const out: string[] = [];
  for (const line of searchHeaderLines(headerBytes.subarray(0, MAX_HEADER_BYTES))) {
    if (line.name !== '' && line.name.toLowerCase() === name) out.push(fold(searchValue(line.value, mode)));
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

/** SEARCH HEADER/FROM/TO/CC/BCC/SUBJECT on a header block (see headerSearchValues); empty needle = field present. */
export function headerMatches(headerBytes: Buffer, field: string, needle: string, mode: HeaderMode = headerModeOf(field)): boolean {
  return headerValuesMatch(headerSearchValues(headerBytes, field, mode), needle);
}

interface Segment {
  start: number;
  end: number;
  kind: 'header' | 'body';
  part: PartIndex;
}

/** Every header and every leaf body of the message, in byte order (multipart preambles and epilogues are no text). */
function segmentsOf(root: PartIndex): Segment[] {
  const out: Segment[] = [];
  // The part index is bounded in depth (types.ts), so the recursion is too.
  const walk = (p: PartIndex): void => {
    out.push({ start: p.h, end: p.b, kind: 'header', part: p });
    if (p.p) for (const c of p.p) walk(c);
    else if (p.m) walk(p.m);
    else out.push({ start: p.b, end: p.e, kind: 'body', part: p });
  };
  walk(root);
  return out.filter((s) => s.end > s.start).sort((a, b) => a.start - b.start || (a.kind === 'header' ? -1 : 1));
}

/** Where scanned text goes: folded pieces of one segment between begin() and end(). */
interface TextSink {
  readonly done: boolean;
  begin(kind: 'header' | 'body'): void;
  feed(text: string): void;
  end(): void;
}

/** Case-insensitive substring search over text arriving in pieces. */
class Matcher implements TextSink {
  private tail = '';
  found = false;
  constructor(private readonly needle: string) {}
  get done(): boolean {
    return this.found;
  }
  begin(): void {
    this.tail = '';
  }
  feed(text: string): void {
    if (this.found || text === '') return;
    const hay = this.tail + fold(text);
    if (hay.includes(this.needle)) this.found = true;
    this.tail = hay.slice(Math.max(0, hay.length - this.needle.length + 1));
  }
  end(): void {
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
  begin(): void {}
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
  end(): void {
    if (!this.over) this.parts.push(SEPARATOR);
  }
  text(): string | null {
    return this.over ? null : this.parts.join('');
  }
}

/** SEARCH BODY/TEXT: case-insensitive substring match on decoded text (see the module header). */
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

/** Collects folded text into a head (every header TEXT reads) and a body (what BODY reads), each kept up to `limit` characters. */
class SplitCollector implements TextSink {
  readonly head: string[] = [];
  readonly body: string[] = [];
  private into: string[] = this.head;
  private headLength = 0;
  private bodyLength = 0;
  truncated = false;
  constructor(private readonly limit: number) {}
  get done(): boolean {
    return false;
  }
  begin(kind: 'header' | 'body'): void {
    this.into = kind === 'header' ? this.head : this.body;
  }
  feed(text: string): void {
    if (text === '') return;
    const folded = fold(text);
    const inHead = this.into === this.head;
    const room = this.limit - (inHead ? this.headLength : this.bodyLength);
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const piece = folded.length > room ? folded.slice(0, room) : folded;
    if (piece.length < folded.length) this.truncated = true;
    this.into.push(piece);
    if (inHead) this.headLength += piece.length;
    else this.bodyLength += piece.length;
  }
  end(): void {
    this.into.push(SEPARATOR);
  }
}

/** The text SEARCH TEXT and BODY compare against, for a search index: see collectSearchText(). */
export interface SearchText {
  /** The folded text of every header SEARCH TEXT reads (the message's, its MIME parts', attached messages'), segments separated by NUL. */
  head: string;
  /** The folded text SEARCH BODY reads, segments separated by NUL. */
  body: string;
  /** True when either was cut at the limit or the message is past MAX_SEARCH_BYTES (an index must then not rule it out). */
  truncated: boolean;
}

/**
 * The exact text SEARCH TEXT/BODY match against, split into headers and bodies, each up to `limit`
 * characters: SEARCH TEXT matches a needle iff head or body contains it (segments never join), SEARCH
 * BODY iff body does, so an index built from it can rule messages out without changing any answer
 * (when not truncated).
 */
export async function collectSearchText(open: () => Promise<Readable>, data: ImapMessageData, limit: number): Promise<SearchText> {
  const sink = new SplitCollector(limit);
  const complete = await scanText(open, data, 'TEXT', sink);
  const trim = (parts: string[]): string => parts.join('').replace(/\u0000+$/, '');
  return { head: trim(sink.head), body: trim(sink.body), truncated: sink.truncated || !complete };
}

export function collectedMatches(text: string, needle: string): boolean {
  const want = fold(needle);
  return want === '' || text.includes(want);
}

/** What a leaf body's header says about reading it: null when it is not searched (not text, or an unknown transfer encoding). */
interface BodyReading {
  transfer: 'identity' | 'base64' | 'quoted-printable';
  charset: string | null;
}

/**
 * How Dovecot reads a leaf's body from its header lines: text when the (last) Content-Type is text/*
 * or message/* (or absent, or unreadable: RFC 2045 5.2 makes that text/plain), in the charset of the
 * first Content-Type (UTF-8 when none), and only in a transfer encoding it knows (the last field).
 */
function bodyReading(header: Buffer): BodyReading | null {
  let type: string | null = null;
  let charset: string | null | undefined;
  let cte: string | null = null;
  for (const line of searchHeaderLines(header)) {
    const name = line.name.toLowerCase();
    if (name === 'content-type') {
      const parsed = parseStructured(line.value);
      type = parsed.value.toLowerCase();
      if (charset === undefined) charset = parsed.params.find(([k]) => k.toLowerCase() === 'charset')?.[1] ?? null;
    } else if (name === 'content-transfer-encoding') cte = line.value;
  }
  if (type !== null) {
    const m = /^([^\s/]+)\s*\/\s*([^\s]+)/.exec(type);
    if (m && m[1] !== 'text' && m[1] !== 'message') return null;
  }
  const transfer = transferEncodingOf(cte);
  if (transfer === null) return null;
  return { transfer, charset: charset ?? null };
}

async function scanText(open: () => Promise<Readable>, data: ImapMessageData, where: 'BODY' | 'TEXT', sink: TextSink): Promise<boolean> {
  const root = partIndexOf(data.parts);
  if (!root) return true;
  const segments = segmentsOf(root);
  if (segments.length === 0) return true;
  let seg = 0;
  let transfer: ChunkDecoder | null = null;
  let chars: StreamDecoder | null = null;
  let header: Buffer[] = [];
  let headerLength = 0;
  /** The header bytes of each part whose body is still to come. */
  const headers = new Map<PartIndex, Buffer>();
  let reading: BodyReading | null = null;
  let budget = MAX_SEARCH_BYTES;
  const feeds = (s: Segment): boolean => s.kind === 'body' ? reading !== null : where === 'TEXT';
  const start = (s: Segment): void => {
    if (s.kind === 'body') {
      const h = headers.get(s.part);
      headers.delete(s.part);
      reading = bodyReading(h ?? Buffer.alloc(0));
      transfer = reading ? transferDecoder(reading.transfer === 'identity' ? null : reading.transfer, { base64url: false }) : null;
      chars = reading ? charsetDecoder(reading.charset) : null;
    }
    if (feeds(s)) sink.begin(s.kind);
  };
  const finish = (s: Segment): void => {
    if (s.kind === 'header') {
      const bytes = Buffer.concat(header);
      header = [];
      headerLength = 0;
      if (!s.part.p && !s.part.m) headers.set(s.part, bytes);
      if (where === 'TEXT') {
        sink.feed(headerSearchText(bytes));
        sink.end();
      }
    } else if (reading && transfer && chars) {
      const t = transfer as ChunkDecoder;
      const c = chars as StreamDecoder;
      sink.feed(c.write(t.end()) + c.end());
      sink.end();
    }
    transfer = null;
    chars = null;
    reading = null;
  };
  const feed = (s: Segment, bytes: Buffer): void => {
    budget -= bytes.length;
    if (s.kind === 'header') {
      if (headerLength < MAX_HEADER_BYTES) {
        header.push(Buffer.from(bytes));
        headerLength += bytes.length;
      }
      return;
    }
    if (transfer && chars) sink.feed((chars as StreamDecoder).write((transfer as ChunkDecoder).write(bytes)));
  };
  const src = await open();
  let pos = 0;
  let started = -1;
  try {
    for await (const chunk of crlfView(src)) {
      const from = pos;
      pos += chunk.length;
      while (seg < segments.length && !sink.done && budget > 0) {
        const s = segments[seg] as Segment;
        if (s.start >= pos) break;
        if (started !== seg) {
          start(s);
          started = seg;
        }
        const a = Math.max(s.start, from);
        const b = Math.min(s.end, pos);
        if (b > a) feed(s, chunk.subarray(a - from, b - from));
        if (s.end > pos) break;
        finish(s);
        seg++;
      }
      if (sink.done || seg >= segments.length || budget <= 0) break;
    }
    if (!sink.done && seg < segments.length && started === seg) finish(segments[seg] as Segment);
  } finally {
    src.destroy();
  }
  /** Whether every segment was read (not cut short by the byte budget). */
  return budget > 0;
}
