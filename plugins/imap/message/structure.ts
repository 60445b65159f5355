// Streaming MIME structure scanner: reads a raw message chunk by chunk and records every entity's
// header and body offsets, its MIME fields, line count and (for messages) the header fields of the
// ENVELOPE. Memory is bounded: only the header being read (≤ MAX_HEADER_BYTES) and a short prefix of
// the current line are held, never a body. Trusts nothing: missing or unterminated boundaries, bare LF,
// 8-bit headers (kept as raw bytes) and absurd nesting give a sensible tree (text/plain where unparseable, RFC 3501) and
// never an exception. Hands on the Entity tree to bodystructure.ts.
import type { HeaderField } from '../../../core/mime/headers.ts';
import { buildEnvelope } from './envelope.ts';
import { mimeFieldsOf, type MimeFields } from './mime-fields.ts';
import { MAX_DEPTH, MAX_PARTS } from './types.ts';

export const MAX_HEADER_BYTES = 256 * 1024;
/** Bytes of each line kept for boundary matching (RFC 2046 boundaries are ≤ 70 characters). */
const LINE_KEEP = 256;
const LF = 0x0a;
const CR = 0x0d;

export interface Entity {
  h: number;
  b: number;
  e: number;
  lines: number;
  mime: MimeFields;
  kind: 'multipart' | 'message' | 'leaf';
  /** ENVELOPE of this entity when it is a message (top level or encapsulated). */
  envelope: string | null;
  children: Entity[];
  msg: Entity | null;
}

interface Frame {
  entity: Entity;
  state: 'header' | 'preamble' | 'body' | 'epilogue';
  depth: number;
  isMessage: boolean;
  defaultType: string;
  lfAtB: number;
  boundary: string | null;
  /** The boundary as latin1 bytes, for matching lines without decoding them. */
  boundaryBytes: Buffer | null;
}

const TEXT_PLAIN = (): MimeFields => mimeFieldsOf([], 'text/plain');
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const MAX_FIELDS = 10_000;
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

function decodeValue(binary: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[^\u0000-\u007f]/.test(binary)) return binary;
  try {
    return utf8Strict.decode(Buffer.from(binary, 'latin1'));
  } catch {
    return binary;
  }
}

/**
 * The fields of a header block, unfolded the way IMAP servers report them: line breaks removed,
 * whitespace after the colon dropped, continuation and trailing whitespace kept. With `raw`, each
 * value is a byte string (one character per byte, as ENVELOPE/BODYSTRUCTURE pass 8-bit bytes on
 * unchanged); otherwise UTF-8 when it decodes as such, else latin1 (for matching text). Lines that are
 * not fields are skipped with their continuations.
 */
export function headerFieldsOf(bytes: Buffer, raw = false): HeaderField[] {
  const text = bytes.toString('latin1');
  const fields: HeaderField[] = [];
  let name: string | null = null;
  let parts: string[] = [];
  const flush = (): void => {
    if (name !== null && fields.length < MAX_FIELDS) fields.push({ name, value: raw ? parts.join('') : decodeValue(parts.join('')) });
    name = null;
    parts = [];
  };
  let pos = 0;
  let skipping = true;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    let line = text.slice(pos, nl);
    pos = nl + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '') break;
    if (line[0] === ' ' || line[0] === '\t') {
      if (!skipping) parts.push(line);
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    const fieldName = colon > 0 ? line.slice(0, colon).replace(/[ \t]+$/, '') : '';
    skipping = !FIELD_NAME.test(fieldName);
    if (skipping) continue;
    name = fieldName;
    parts = [line.slice(colon + 1).replace(/^[ \t]+/, '')];
  }
  flush();
  return fields;
}

export class MimeScanner {
  private offset = 0;
  private lfCount = 0;
  private parts = 1;
  private readonly stack: Frame[] = [];
  readonly root: Entity;
  // current line
  private lineStart = 0;
  private lineLen = 0;
  private prefix: Buffer[] = [];
  private prefixLen = 0;
  private lastByte = -1;
  /** Where the previous line's terminator starts (the CRLF before a boundary belongs to it). */
  private prevTermStart = 0;
  // the header being collected (always the top frame's)
  private header: Buffer[] = [];
  private headerLen = 0;

  constructor() {
    this.root = this.newEntity(0);
    this.stack.push({ entity: this.root, state: 'header', depth: 0, isMessage: true, defaultType: 'text/plain', lfAtB: 0, boundary: null, boundaryBytes: null });
  }

  private newEntity(h: number): Entity {
    return { h, b: h, e: h, lines: 0, mime: TEXT_PLAIN(), kind: 'leaf', envelope: null, children: [], msg: null };
  }

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      // Fast path: body lines that lie wholly in this chunk and do not start with "-" need nothing
      // but counting (only headers and boundary lines are looked at).
      if (this.lineLen === 0 && this.top().state !== 'header') {
        while (pos < chunk.length && (chunk[pos] !== 0x2d || !this.mayBeBoundary(chunk, pos))) {
          const nl = chunk.indexOf(LF, pos);
          if (nl < 0) break;
          this.offset += nl + 1 - pos;
          this.lfCount++;
          this.lineStart = this.offset;
          this.prevTermStart = this.offset - (nl > pos && chunk[nl - 1] === CR ? 2 : 1);
          this.lastByte = LF;
          pos = nl + 1;
        }
        if (pos >= chunk.length) break;
      }
      const nl = chunk.indexOf(LF, pos);
      const end = nl < 0 ? chunk.length : nl + 1;
      const seg = chunk.subarray(pos, end);
      if (this.top().state === 'header' && this.headerLen < MAX_HEADER_BYTES) {
        const take = seg.subarray(0, MAX_HEADER_BYTES - this.headerLen);
        this.header.push(Buffer.from(take));
        this.headerLen += take.length;
      }
      if (this.prefixLen < LINE_KEEP) {
        // A view, not a copy: it is dropped when the line ends.
        const take = seg.subarray(0, LINE_KEEP - this.prefixLen);
        this.prefix.push(take);
        this.prefixLen += take.length;
      }
      const crBeforeLf = nl >= 0 && (nl > pos ? chunk[nl - 1] === CR : this.lastByte === CR);
      this.lineLen += seg.length;
      this.lastByte = seg.length > 0 ? (seg[seg.length - 1] as number) : this.lastByte;
      this.offset += seg.length;
      if (nl >= 0) this.endLine(crBeforeLf ? 2 : 1);
      pos = end;
    }
  }

  /** Whether the line at pos could be a delimiter of an open multipart (undecidable counts as yes). */
  private mayBeBoundary(chunk: Buffer, pos: number): boolean {
    if (pos + 1 >= chunk.length) return true;
    if (chunk[pos + 1] !== 0x2d) return false;
    for (const f of this.stack) {
      const b = f.boundaryBytes;
      if (b === null || (f.state !== 'preamble' && f.state !== 'body')) continue;
      if (pos + 2 + b.length > chunk.length) return true;
      if (chunk.compare(b, 0, b.length, pos + 2, pos + 2 + b.length) === 0) return true;
    }
    return false;
  }

  /** Finish: an unterminated last line is a line too; then every open entity ends here. */
  end(): Entity {
    if (this.lineLen > 0) this.endLine(0);
    while (this.stack.length > 0) this.close(this.stack.pop() as Frame, this.offset, this.lfCount);
    return this.root;
  }

  /** Bytes of input currently held (the header being read and the current line's prefix). */
  retainedBytes(): number {
    return this.headerLen + this.prefixLen;
  }

  private top(): Frame {
    return this.stack[this.stack.length - 1] as Frame;
  }

  private endLine(termLen: number): void {
    const start = this.lineStart;
    const next = this.offset;
    const contentLen = this.lineLen - termLen;
    // Only a line starting with "--" can be a boundary: the others need no text at all.
    let content = '';
    if (contentLen >= 2) {
      const head = this.prefix.length === 1 ? (this.prefix[0] as Buffer) : Buffer.concat(this.prefix, this.prefixLen);
      if (head[0] === 0x2d && head[1] === 0x2d) content = head.toString('latin1', 0, Math.min(contentLen, head.length));
    }
    this.prefix = [];
    this.prefixLen = 0;
    this.lineLen = 0;
    this.line(content, contentLen === 0, start, next);
    if (termLen > 0) this.lfCount++;
    this.lineStart = next;
    this.prevTermStart = next - termLen;
  }

  private line(content: string, blank: boolean, start: number, next: number): void {
    if (content !== '' && this.boundaryLine(content, start, next)) return;
    const frame = this.top();
    if (frame.state === 'header' && blank) this.endHeader(frame, next);
  }

  private boundaryLine(content: string, start: number, next: number): boolean {
    for (let d = this.stack.length - 1; d >= 0; d--) {
      const f = this.stack[d] as Frame;
      if (f.boundary === null || (f.state !== 'preamble' && f.state !== 'body')) continue;
      if (!content.startsWith(f.boundary, 2)) continue;
      const closing = content.startsWith('--', 2 + f.boundary.length);
      if (!closing && this.parts >= MAX_PARTS) return false;
      // The line break before the delimiter belongs to it (RFC 2046 5.1.1).
      const lfBefore = start === 0 ? 0 : this.lfCount - 1;
      while (this.stack.length - 1 > d) this.close(this.stack.pop() as Frame, start === 0 ? 0 : this.prevTermStart, lfBefore);
      if (closing) {
        f.state = 'epilogue';
        return true;
      }
      f.state = 'body';
      const child = this.newEntity(next);
      this.parts++;
      f.entity.children.push(child);
      const childDefault = f.entity.mime.subtype.toLowerCase() === 'digest' ? 'message/rfc822' : 'text/plain';
      this.openEntity(child, f.depth + 1, false, childDefault);
      return true;
    }
    return false;
  }

  private openEntity(entity: Entity, depth: number, isMessage: boolean, defaultType: string): void {
    this.header = [];
    this.headerLen = 0;
    this.stack.push({ entity, state: 'header', depth, isMessage, defaultType, lfAtB: 0, boundary: null, boundaryBytes: null });
  }

  private endHeader(frame: Frame, bodyStart: number): void {
    const e = frame.entity;
    e.b = bodyStart;
    frame.lfAtB = this.lfCount + 1;
    const bytes = Buffer.concat(this.header, this.headerLen).subarray(0, bodyStart - e.h);
    this.header = [];
    this.headerLen = 0;
    const fields = headerFieldsOf(bytes, true);
    e.mime = mimeFieldsOf(fields, frame.defaultType);
    if (frame.isMessage) e.envelope = buildEnvelope(fields);
    const type = e.mime.type.toLowerCase();
    const subtype = e.mime.subtype.toLowerCase();
    const nestable = frame.depth < MAX_DEPTH && this.parts < MAX_PARTS;
    if (type === 'multipart') {
      if (!nestable) e.mime = TEXT_PLAIN();
      else {
        e.kind = 'multipart';
        frame.state = 'preamble';
        // An empty boundary would match every "--" line: treat it as missing.
        frame.boundary = e.mime.boundary === '' ? null : e.mime.boundary;
        frame.boundaryBytes = frame.boundary === null ? null : Buffer.from(frame.boundary, 'latin1');
        return;
      }
    } else if (type === 'message' && subtype === 'rfc822') {
      if (!nestable) e.mime = TEXT_PLAIN();
      else {
        e.kind = 'message';
        frame.state = 'body';
        const inner = this.newEntity(bodyStart);
        this.parts++;
        e.msg = inner;
        this.openEntity(inner, frame.depth + 1, true, 'text/plain');
        return;
      }
    }
    frame.state = 'body';
  }

  /** Ends a frame's entity at `pos`, `lfBefore` being the number of LFs before pos. */
  private close(frame: Frame, pos: number, lfBefore: number): void {
    const e = frame.entity;
    // An empty part whose only line break the next delimiter owns ("--a\r\n--b"): it starts where it ends.
    if (pos < e.h) e.h = pos;
    if (frame.state === 'header') {
      const bytes = Buffer.concat(this.header, this.headerLen).subarray(0, Math.max(0, pos - e.h));
      this.header = [];
      this.headerLen = 0;
      const fields = headerFieldsOf(bytes, true);
      e.mime = mimeFieldsOf(fields, frame.defaultType);
      if (frame.isMessage) e.envelope = buildEnvelope(fields);
      const t = e.mime.type.toLowerCase();
      if (t === 'multipart' || (t === 'message' && e.mime.subtype.toLowerCase() === 'rfc822')) e.mime = TEXT_PLAIN();
      e.b = Math.max(e.h, pos);
      e.e = e.b;
      return;
    }
    // The blank line that ended the header was the line break a delimiter owns (a part holding only a
    // header): the header ends without it, where the entity ends.
    if (pos < e.b) e.b = Math.max(e.h, pos);
    e.e = Math.max(e.b, pos);
    e.lines = e.e === e.b ? 0 : Math.max(0, lfBefore - frame.lfAtB);
    if (e.kind === 'multipart' && e.children.length === 0) e.children.push(this.newEntity(e.b));
  }
}

/** Scans a whole stream; only bounded state is held whatever the message size. */
export async function scanStructure(raw: AsyncIterable<Buffer | Uint8Array | string>): Promise<{ root: Entity; size: number }> {
  const scanner = new MimeScanner();
  let size = 0;
  for await (const chunk of raw) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    size += buf.length;
    scanner.push(buf);
  }
  return { root: scanner.end(), size };
}
