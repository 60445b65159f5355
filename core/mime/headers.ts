// Parses the header block of a raw message into fields, and derives a summary (date, from, to, cc, subject, Message-ID) and bare addresses.
// Trusts nothing about the input: any bytes, line endings, sizes or syntax are accepted, only maxBytes of it is read, and no function throws.
// Hands on plain strings (unfolded raw values, decoded display text, lowercased-domain addr-specs) for journaling, routing and indexing.

import { Buffer } from 'node:buffer';
import libmime from 'libmime';

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

// ---------------------------------------------------------------------------
// Dates (RFC 5322 section 3.3 plus the obsolete forms of section 4.3)

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH_FULL = [
  'january', 'february', 'march', 'april', 'may', 'june',
  'july', 'august', 'september', 'october', 'november', 'december',
];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DAY_FULL = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

/** Offsets in minutes east of UTC. */
const NAMED_ZONES: Record<string, number> = {
  ut: 0, utc: 0, gmt: 0, z: 0,
  est: -300, edt: -240,
  cst: -360, cdt: -300,
  mst: -420, mdt: -360,
  pst: -480, pdt: -420,
};

/**
 * Replaces (possibly nested) RFC 5322 comments by a space, leaving quoted strings and quoted pairs
 * intact; an unclosed comment runs to the end.
 */
export function stripComments(s: string): string {
  let out = '';
  let depth = 0;
  let inQuote = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\') {
      if (depth === 0) out += s.slice(i, i + 2);
      i++;
      continue;
    }
    if (inQuote) {
      out += ch;
      if (ch === '"') inQuote = false;
      continue;
    }
    if (depth === 0 && ch === '"') {
      inQuote = true;
      out += ch;
    } else if (ch === '(') {
      if (depth === 0) out += ' ';
      depth++;
    } else if (ch === ')' && depth > 0) {
      depth--;
    } else if (depth === 0) {
      out += ch;
    }
  }
  return out;
}

function monthIndex(token: string): number {
  const t = token.toLowerCase();
  let idx = MONTHS.indexOf(t);
  if (idx === -1) idx = MONTH_FULL.indexOf(t);
  if (idx === -1 && t === 'sept') idx = 8;
  return idx;
}

function isDayName(token: string): boolean {
  const t = token.toLowerCase();
  return DAYS.includes(t) || DAY_FULL.includes(t);
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

const ISO_FALLBACK = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/** Parses an RFC 5322 date (current or obsolete syntax) into an ISO 8601 UTC string, or null. */
export function parseDate(value: string): string | null {
  try {
    const input = String(value).slice(0, 512);
    const own = parseRfc5322Date(input);
    if (own !== null) return own;
    const trimmed = input.trim();
    if (ISO_FALLBACK.test(trimmed)) {
      const ms = Date.parse(trimmed.replace(' ', 'T'));
      if (Number.isFinite(ms)) return new Date(ms).toISOString();
    }
    return null;
  } catch {
    return null;
  }
}

function parseRfc5322Date(input: string): string | null {
  const tokens: string[] = [];
  for (const tok of stripComments(input).split(/[\s,]+/)) {
    if (tok === '') continue;
    // obsolete/common "1-Jan-2024" form
    const dashed = /^(\d{1,2})-([A-Za-z]+)-(\d{2,4})$/.exec(tok);
    if (dashed) {
      tokens.push(dashed[1] ?? '', dashed[2] ?? '', dashed[3] ?? '');
    } else {
      tokens.push(tok);
    }
  }

  let day: number | null = null;
  let month: number | null = null;
  let year: number | null = null;
  let yearDigits = 0;
  let hour: number | null = null;
  let minute = 0;
  let second = 0;
  let offset: number | null = null;

  for (const tok of tokens) {
    const time = /^(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d+)?)?(?:([+-])(\d{2}):?(\d{2})|(Z))?$/i.exec(tok);
    if (time) {
      if (hour !== null) return null;
      hour = Number(time[1]);
      minute = Number(time[2]);
      second = time[3] === undefined ? 0 : Number(time[3]);
      if (time[4] !== undefined) {
        const mm = Number(time[6]);
        if (mm > 59) return null;
        offset = (time[4] === '-' ? -1 : 1) * (Number(time[5]) * 60 + mm);
      } else if (time[7] !== undefined) {
        offset = 0;
      }
      continue;
    }
    const numericZone = /^([+-])(\d{2}):?(\d{2})$/.exec(tok);
    if (numericZone) {
      if (offset !== null) continue;
      const hh = Number(numericZone[2]);
      const mm = Number(numericZone[3]);
      if (mm > 59) return null;
      offset = (numericZone[1] === '-' ? -1 : 1) * (hh * 60 + mm);
      continue;
    }
    if (/^\d+$/.test(tok)) {
      if (tok.length <= 2 && day === null) {
        day = Number(tok);
      } else if (year === null && tok.length >= 2 && tok.length <= 4) {
        year = Number(tok);
        yearDigits = tok.length;
      } else {
        return null;
      }
      continue;
    }
    if (/^[A-Za-z]+\.?$/.test(tok)) {
      const word = tok.replace(/\.$/, '');
      const m = monthIndex(word);
      if (m !== -1) {
        if (month !== null) return null;
        month = m;
        continue;
      }
      if (isDayName(word)) continue;
      const lower = word.toLowerCase();
      const named = NAMED_ZONES[lower];
      if (named !== undefined) {
        offset ??= named;
        continue;
      }
      // Military single letters (except J) are ambiguous per RFC 5322 4.3: treat as +0000.
      if (lower.length === 1 && lower !== 'j') {
        offset ??= 0;
        continue;
      }
      // Any other word (e.g. an unofficial zone name after a numeric offset) is ignored.
      continue;
    }
    return null;
  }

  if (day === null || month === null || year === null || hour === null) return null;
  if (yearDigits === 2) year += year < 50 ? 2000 : 1900;
  else if (yearDigits === 3) year += 1900;
  if (day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 60) return null;
  if (second === 60) second = 59;
  const ms = Date.UTC(year, month, day, hour, minute, second) - (offset ?? 0) * 60_000;
  if (!Number.isFinite(ms)) return null;
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString();
}

// ---------------------------------------------------------------------------
// Addresses (RFC 5322 address-list, and RFC 5321 paths)

type Token =
  | { kind: 'atom'; text: string }
  | { kind: 'quoted'; text: string }
  | { kind: 'literal'; text: string }
  | { kind: 'special'; text: string }
  | { kind: 'ws' }
  | { kind: 'bad' };

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a0-\uffff]$/u;
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a0-\uffff]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a0-\uffff]+)*$/u;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function isAtext(ch: string): boolean {
  return ATEXT.test(ch);
}

function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const ch = s[i] ?? '';
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      i++;
      if (tokens[tokens.length - 1]?.kind !== 'ws') tokens.push({ kind: 'ws' });
      continue;
    }
    if (ch === '(') {
      let depth = 0;
      while (i < s.length) {
        const c = s[i];
        if (c === '\\') i++;
        else if (c === '(') depth++;
        else if (c === ')') {
          depth--;
          if (depth === 0) {
            i++;
            break;
          }
        }
        i++;
      }
      if (tokens[tokens.length - 1]?.kind !== 'ws') tokens.push({ kind: 'ws' });
      continue;
    }
    if (ch === '"') {
      let text = '';
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        text += s[i];
        i++;
      }
      i++; // closing quote (or past the end)
      tokens.push({ kind: 'quoted', text });
      continue;
    }
    if (ch === '[') {
      const close = s.indexOf(']', i + 1);
      const end = close === -1 ? s.length : close;
      const inner = s.slice(i + 1, end);
      i = end + 1;
      tokens.push(/[[\\]/.test(inner) ? { kind: 'bad' } : { kind: 'literal', text: `[${inner.trim()}]` });
      continue;
    }
    if ('.@,;:<>'.includes(ch)) {
      tokens.push({ kind: 'special', text: ch });
      i++;
      continue;
    }
    if (isAtext(ch)) {
      const start = i;
      while (i < s.length && isAtext(s[i] ?? '')) i++;
      tokens.push({ kind: 'atom', text: s.slice(start, i) });
      continue;
    }
    // Control characters, stray ')', ']', '\' and the like.
    tokens.push({ kind: 'bad' });
    i++;
  }
  return tokens;
}

function isSpecial(tok: Token | undefined, ch: string): boolean {
  return tok?.kind === 'special' && tok.text === ch;
}

/** Validates a whitespace-free token run as local@domain and renders it, or returns null. */
function renderAddrSpec(tokens: Token[]): string | null {
  const at = tokens.findIndex((t) => isSpecial(t, '@'));
  if (at <= 0 || at === tokens.length - 1) return null;
  if (tokens.findIndex((t, idx) => idx > at && isSpecial(t, '@')) !== -1) return null;

  // local-part: word *("." word)
  const words: string[] = [];
  for (let i = 0; i < at; i++) {
    const t = tokens[i];
    if (i % 2 === 0) {
      if (t?.kind === 'atom') words.push(t.text);
      else if (t?.kind === 'quoted' && !CONTROL.test(t.text)) words.push(t.text);
      else return null;
    } else if (!isSpecial(t, '.')) {
      return null;
    }
  }
  if (at % 2 === 0) return null; // ended on a dot
  const localText = words.join('.');
  if (localText.length === 0) return null;
  const local = DOT_ATOM.test(localText) ? localText : `"${localText.replace(/(["\\])/g, '\\$1')}"`;

  // domain: dot-atom or a domain literal
  const domainTokens = tokens.slice(at + 1);
  let domain: string;
  const only = domainTokens[0];
  if (domainTokens.length === 1 && only?.kind === 'literal') {
    if (CONTROL.test(only.text)) return null;
    domain = only.text;
  } else {
    const labels: string[] = [];
    for (let i = 0; i < domainTokens.length; i++) {
      const t = domainTokens[i];
      if (i % 2 === 0) {
        if (t?.kind !== 'atom') return null;
        labels.push(t.text);
      } else if (!isSpecial(t, '.')) {
        return null;
      }
    }
    if (domainTokens.length % 2 === 0) return null; // ended on a dot
    domain = labels.join('.');
  }
  return `${local}@${domain.toLowerCase()}`;
}

/** Contents of an angle-addr: drops whitespace and an obsolete source route ("@a,@b:"). */
function angleCandidate(tokens: Token[]): string | null {
  let start = 0;
  for (let i = 0; i < tokens.length; i++) if (isSpecial(tokens[i], ':')) start = i + 1;
  return renderAddrSpec(tokens.slice(start).filter((t) => t.kind !== 'ws'));
}

/**
 * Splits a mailbox without angle brackets at whitespace between words, so a stray display
 * name does not merge with the address; whitespace next to "." or "@" is obsolete CFWS and dropped.
 */
function bareCandidates(tokens: Token[]): string[] {
  const chunks: Token[][] = [];
  let chunk: Token[] = [];
  let pendingWs = false;
  for (const t of tokens) {
    if (t.kind === 'ws') {
      pendingWs = true;
      continue;
    }
    const last = chunk[chunk.length - 1];
    const joins = isSpecial(last, '.') || isSpecial(last, '@') || isSpecial(t, '.') || isSpecial(t, '@');
    if (pendingWs && chunk.length > 0 && !joins) {
      chunks.push(chunk);
      chunk = [];
    }
    pendingWs = false;
    chunk.push(t);
  }
  if (chunk.length > 0) chunks.push(chunk);
  const out: string[] = [];
  for (const c of chunks) {
    const addr = renderAddrSpec(c);
    if (addr !== null) out.push(addr);
  }
  return out;
}

export function extractAddresses(value: string): string[] {
  const seen = new Set<string>();
  try {
    const tokens = tokenize(typeof value === 'string' ? value : String(value ?? ''));
    let current: Token[] = [];
    let angles: string[] = [];
    let sawAngle = false;

    const flush = (): void => {
      const found = sawAngle ? angles : bareCandidates(current);
      for (const a of found) seen.add(a);
      current = [];
      angles = [];
      sawAngle = false;
    };

    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (t === undefined) continue;
      if (isSpecial(t, ',') || isSpecial(t, ';')) {
        flush();
      } else if (isSpecial(t, ':')) {
        // group start ("name:"), or the end of a bare source route: drop what came before
        current = [];
      } else if (isSpecial(t, '<')) {
        const inner: Token[] = [];
        i++;
        while (i < tokens.length && !isSpecial(tokens[i], '>')) {
          const it = tokens[i];
          if (it !== undefined) inner.push(it);
          i++;
        }
        sawAngle = true;
        const addr = angleCandidate(inner);
        if (addr !== null) angles.push(addr);
      } else if (isSpecial(t, '>')) {
        // stray closing bracket: ignore
      } else {
        current.push(t);
      }
    }
    flush();
  } catch {
    // lenient: return what was collected
  }
  return [...seen];
}
