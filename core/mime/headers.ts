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

function splitFields(text: string): HeaderField[] {
  const fields: HeaderField[] = [];
  let name: string | null = null;
  let parts: string[] = [];
  // true while the lines belong to a skipped (malformed) line or precede the first field
  let discarding = true;

  const flush = (): void => {
    if (name !== null) fields.push({ name, value: finishValue(parts) });
    name = null;
    parts = [];
  };

  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl === -1) nl = text.length;
    let line = text.slice(pos, nl);
    pos = nl + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);

    if (isWsp(line[0])) {
      // Continuation of the previous line; ignored before the first field or after a skipped line.
      if (!discarding) parts.push(line);
      continue;
    }

    flush();
    if (fields.length >= MAX_FIELDS) break;

    const colon = line.indexOf(':');
    if (colon <= 0) {
      discarding = true;
      continue;
    }
    const rawName = line.slice(0, colon);
    const fieldName = rawName.slice(0, trimmedEnd(rawName, ' \t'));
    let valid = fieldName.length > 0;
    for (let i = 0; valid && i < fieldName.length; i++) {
      if (!isFieldNameChar(fieldName.charCodeAt(i))) valid = false;
    }
    if (!valid) {
      discarding = true;
      continue;
    }
    discarding = false;
    name = fieldName;
    parts = [line.slice(colon + 1)];
  }
  flush();
  return fields;
}

export function headerValues(block: HeaderBlock, name: string): string[] {
  const out: string[] = [];
  try {
    const wanted = String(name).toLowerCase();
    const fields = Array.isArray(block?.fields) ? block.fields : [];
    for (const field of fields) {
      if (typeof field?.name === 'string' && field.name.toLowerCase() === wanted) out.push(String(field.value));
    }
  } catch {
    // lenient: return what was collected
  }
  return out;
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
  try {
    const result = libmime.decodeWords(input);
    if (typeof result === 'string') decoded = result;
  } catch {
    decoded = input; // malformed encoded-word that libmime rejects: keep the raw text
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
    const first = (name: string): string => headerValues(block, name)[0] ?? '';
    const joined = (name: string): string => headerValues(block, name).join(', ');
    const dateValue = headerValues(block, 'date')[0];
    return {
      date: dateValue === undefined ? null : parseDate(dateValue),
      from: displayText(first('from')),
      to: displayText(joined('to')),
      cc: displayText(joined('cc')),
      subject: displayText(first('subject')),
      messageId: extractMessageId(headerValues(block, 'message-id')[0]),
    };
  } catch {
    return { date: null, from: '', to: '', cc: '', subject: '', messageId: null };
  }
}
