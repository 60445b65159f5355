// Parses the header block of a raw message into fields and derives a summary (date, from, to, cc, subject, Message-ID); re-exports date/address parsing.
// Trusts nothing about the input: any bytes, line endings, sizes or syntax are accepted, only maxBytes of it is read, and no function throws.
// Hands on plain strings (unfolded raw values, decoded display text, lowercased-domain addr-specs) for journaling, routing and indexing.

import { Buffer } from 'node:buffer';
import libmime from 'libmime';
import { parseDate } from './date.ts';

export { parseDate, stripComments } from './date.ts';
export { extractAddresses } from './addresses.ts';

export interface HeaderField {
  /** Field name as written (original case). */
  name: string;
  /** Unfolded raw value: line breaks before WSP removed, one leading WSP removed, trailing CR/LF/WSP trimmed. */
  value: string;
}

export interface HeaderBlock {
  fields: HeaderField[];
  /** Offset of the first body byte (after the blank line); without a blank line, the number of bytes scanned. */
  headerBytes: number;
  /** False when no blank line was found within the limit. */
  complete: boolean;
}

export interface MessageSummary {
  /** ISO 8601 UTC, null if missing or unparseable. */
  date: string | null;
  from: string;
  to: string;
  cc: string;
  subject: string;
  /** Without the angle brackets. */
  messageId: string | null;
}

const DEFAULT_MAX_BYTES = 1024 * 1024;
const MAX_FIELDS = 10_000;
const MAX_TEXT_CHARS = 998;
/** Upper bound on the raw text handed to libmime, keeps decoding time bounded for huge values. */
const MAX_DECODE_INPUT = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function toBuffer(raw: unknown): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (typeof raw === 'string') return Buffer.from(raw, 'utf8');
  return Buffer.alloc(0);
}

function resolveLimit(maxBytes: unknown, length: number): number {
  let limit = DEFAULT_MAX_BYTES;
  if (typeof maxBytes === 'number' && !Number.isNaN(maxBytes)) {
    limit = maxBytes === Infinity ? length : Math.max(0, Math.floor(maxBytes));
  }
  return Math.min(limit, length);
}

/** UTF-8 when the bytes are valid UTF-8, latin1 otherwise. */
function decodeHeaderBytes(bytes: Buffer): string {
  if (bytes.length === 0) return '';
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

function isFieldNameChar(code: number): boolean {
  return code >= 33 && code <= 126 && code !== 58;
}

function isWsp(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t';
}

/** Index just past the last character that is not in `chars` (a manual loop: a /[...]+$/ regex is quadratic on long runs). */
function trimmedEnd(s: string, chars: string): number {
  let end = s.length;
  while (end > 0 && chars.includes(s[end - 1] ?? '')) end--;
  return end;
}

function finishValue(parts: string[]): string {
  const value = parts.join('');
  const start = isWsp(value[0]) ? 1 : 0;
  const end = trimmedEnd(value, ' \t\r\n');
  return end > start ? value.slice(start, end) : '';
}

export function parseHeaderBlock(raw: Buffer, maxBytes: number = DEFAULT_MAX_BYTES): HeaderBlock {
  try {
    const buf = toBuffer(raw);
    const limit = resolveLimit(maxBytes, buf.length);
    const view = buf.subarray(0, limit);

    // Locate the blank line that ends the header block: an empty line terminated by LF or CRLF.
    let headerEnd = -1;
    let bodyStart = -1;
    let lineStart = 0;
    while (lineStart < limit) {
      const first = view[lineStart];
      if (first === LF) {
        headerEnd = lineStart;
        bodyStart = lineStart + 1;
        break;
      }
      if (first === CR && view[lineStart + 1] === LF) {
        headerEnd = lineStart;
        bodyStart = lineStart + 2;
        break;
      }
      const nl = view.indexOf(LF, lineStart);
      if (nl === -1) break;
      lineStart = nl + 1;
    }

    let complete = true;
    let headerBytes = bodyStart;
    if (bodyStart === -1) {
      complete = false;
      headerBytes = limit;
      if (limit < buf.length) {
        // Cut off by the limit: the last line may be partial, keep only whole lines.
        headerEnd = view.lastIndexOf(LF) + 1;
      } else {
        headerEnd = limit;
      }
    }

    const text = decodeHeaderBytes(view.subarray(0, headerEnd));
    const fields = splitFields(text);
    return { fields, headerBytes, complete };
  } catch {
    return { fields: [], headerBytes: 0, complete: false };
  }
}

const CR_CODE = 13;
const SP_CODE = 32;
const HT_CODE = 9;
const LF_CODE = 10;
const COLON_CODE = 58;

/**
 * The unfolded value of a field whose first line's value is text[start, end) and whose continuation
 * lines (each without its line break) are `more`: one leading WSP and trailing SP/HTAB/CR/LF removed.
 * Same result as finishValue([first, ...more]) without building the joined string for one-line fields.
 */
function fieldValue(text: string, start: number, end: number, more: string[] | null): string {
  if (more !== null) return finishValue([text.slice(start, end), ...more]);
  let s = start;
  const first = text.charCodeAt(s);
  if (end > s && (first === SP_CODE || first === HT_CODE)) s++;
  let e = end;
  while (e > s) {
    const c = text.charCodeAt(e - 1);
    if (c !== SP_CODE && c !== HT_CODE && c !== CR_CODE && c !== LF_CODE) break;
    e--;
  }
  return e > s ? text.slice(s, e) : '';
}

/**
 * Splits the decoded header block into fields. Works on offsets into `text` (no string per line): a
 * line is text[pos, lineEnd) without its LF and one trailing CR; a field's first line is kept as an
 * offset range and only continuation lines are copied.
 */
function splitFields(text: string): HeaderField[] {
  const fields: HeaderField[] = [];
  let name: string | null = null;
  let valueStart = 0;
  let valueEnd = 0;
  let more: string[] | null = null;
  // true while the lines belong to a skipped (malformed) line or precede the first field
  let discarding = true;

  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl === -1) nl = text.length;
    const lineStart = pos;
    let lineEnd = nl;
    pos = nl + 1;
    if (lineEnd > lineStart && text.charCodeAt(lineEnd - 1) === CR_CODE) lineEnd--;

    const first = text.charCodeAt(lineStart);
    if (lineEnd > lineStart && (first === SP_CODE || first === HT_CODE)) {
      // Continuation of the previous line; ignored before the first field or after a skipped line.
      if (!discarding) (more ??= []).push(text.slice(lineStart, lineEnd));
      continue;
    }

    if (name !== null) fields.push({ name, value: fieldValue(text, valueStart, valueEnd, more) });
    name = null;
    more = null;
    if (fields.length >= MAX_FIELDS) break;

    // Searched within the line only: a search running past it would be quadratic on colon-less lines.
    let colon = -1;
    for (let i = lineStart; i < lineEnd; i++) {
      if (text.charCodeAt(i) === COLON_CODE) {
        colon = i - lineStart;
        break;
      }
    }
    if (colon <= 0) {
      discarding = true;
      continue;
    }
    let nameEnd = lineStart + colon;
    while (nameEnd > lineStart && (text.charCodeAt(nameEnd - 1) === SP_CODE || text.charCodeAt(nameEnd - 1) === HT_CODE)) nameEnd--;
    let valid = nameEnd > lineStart;
    for (let i = lineStart; valid && i < nameEnd; i++) {
      if (!isFieldNameChar(text.charCodeAt(i))) valid = false;
    }
    if (!valid) {
      discarding = true;
      continue;
    }
    discarding = false;
    name = text.slice(lineStart, nameEnd);
    valueStart = lineStart + colon + 1;
    valueEnd = lineEnd;
  }
  if (name !== null) fields.push({ name, value: fieldValue(text, valueStart, valueEnd, more) });
  return fields;
}

interface HeaderIndex {
  fields: HeaderField[];
  count: number;
  /** Lower-cased field name → values in order. */
  byName: Map<string, string[]>;
}

/**
 * Per-block index for headerValues (routing, journal detection and the summary ask for a dozen names
 * per message). Rebuilt when the block's field list is replaced or changes length; header blocks are
 * treated as read-only once parsed.
 */
const INDEXES = new WeakMap<HeaderBlock, HeaderIndex>();

function indexOf(block: HeaderBlock, fields: HeaderField[]): HeaderIndex {
  const known = INDEXES.get(block);
  if (known && known.fields === fields && known.count === fields.length) return known;
  const byName = new Map<string, string[]>();
  for (const field of fields) {
    if (typeof field?.name !== 'string') continue;
    const key = field.name.toLowerCase();
    const value = String(field.value);
    const list = byName.get(key);
    if (list) list.push(value);
    else byName.set(key, [value]);
  }
  const index = { fields, count: fields.length, byName };
  INDEXES.set(block, index);
  return index;
}

export function headerValues(block: HeaderBlock, name: string): string[] {
  try {
    const wanted = String(name).toLowerCase();
    const fields = Array.isArray(block?.fields) ? block.fields : [];
    if (typeof block === 'object' && block !== null) return [...(indexOf(block, fields).byName.get(wanted) ?? [])];
    return [];
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------
// Summary

function capCodePoints(s: string, max: number): string {
  let i = 0;
  let count = 0;
  while (i < s.length && count < max) {
    const c = s.codePointAt(i) ?? 0;
    i += c > 0xffff ? 2 : 1;
    count++;
  }
  return i >= s.length ? s : s.slice(0, i);
}

function displayText(raw: string): string {
  const input = raw.length > MAX_DECODE_INPUT ? raw.slice(0, MAX_DECODE_INPUT) : raw;
  let decoded = input;
  // Every rewrite decodeWords makes needs an encoded-word ("=?") or its NUL-delimited join marker.
  if (input.includes('=?') || input.includes('\u0000')) {
    try {
      const result = libmime.decodeWords(input);
      if (typeof result === 'string') decoded = result;
    } catch {
      decoded = input; // malformed encoded-word that libmime rejects: keep the raw text
    }
  }
  // eslint-disable-next-line no-control-regex
  const clean = decoded.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, ' ');
  return capCodePoints(clean, MAX_TEXT_CHARS);
}

function extractMessageId(value: string | undefined): string | null {
  if (value === undefined) return null;
  const open = value.indexOf('<');
  if (open !== -1) {
    const close = value.indexOf('>', open + 1);
    if (close !== -1) {
      const inner = value.slice(open + 1, close).trim();
      if (inner.length > 0) return capCodePoints(inner, MAX_TEXT_CHARS);
    }
  }
  const trimmed = value.trim();
  if (trimmed.length > 0 && !/[\s<>]/.test(trimmed)) return capCodePoints(trimmed, MAX_TEXT_CHARS);
  return null;
}

export function summarize(block: HeaderBlock): MessageSummary {
  try {
    const dateValue = headerValues(block, 'date')[0];
    return {
      date: dateValue === undefined ? null : parseDate(dateValue),
      from: displayText(headerValues(block, 'from')[0] ?? ''),
      to: displayText(headerValues(block, 'to').join(', ')),
      cc: displayText(headerValues(block, 'cc').join(', ')),
      subject: displayText(headerValues(block, 'subject')[0] ?? ''),
      messageId: extractMessageId(headerValues(block, 'message-id')[0]),
    };
  } catch {
    return { date: null, from: '', to: '', cc: '', subject: '', messageId: null };
  }
}
