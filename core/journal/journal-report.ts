// Recognises Exchange / WorkMail envelope journal reports (also inside an NDR), reads the envelope part and locates the attached originals.
// Trusts nothing: any bytes, boundaries, encodings, charsets and envelope syntax are accepted; MIME work is capped (1,000 parts, depth 20) and nothing throws.
// Hands on the envelope (sender, typed recipients with DL/forwarding annotations, every envelope line), the original bytes untouched, and a list of problems.

import { Buffer } from 'node:buffer';
import libmime from 'libmime';
import { parseHeaderBlock, headerValues, extractAddresses, summarize, type HeaderBlock } from '../mime/headers.ts';

export type JournalKind = 'exchange' | 'workmail';

export interface JournalRecipient {
  address: string;
  field: 'to' | 'cc' | 'bcc' | 'recipient';
  /** The distribution list this address was expanded from (`, Expanded: list@x`), first annotation wins. */
  expandedFrom: string | null;
  /** The address that was forwarded / redirected to this one (`, Forwarded: orig@x`), first annotation wins. */
  forwardedFrom: string | null;
}

export interface JournalEnvelope {
  /** typed = To/Cc/Bcc lines present; untyped = only Recipient: lines; exchange2003 = plain list form (Recipients: / bare address lines). */
  style: 'typed' | 'untyped' | 'exchange2003';
  sender: string | null;
  onBehalfOf: string | null;
  subject: string | null;
  /** Without the angle brackets (as `summarize` gives it for the original). */
  messageId: string | null;
  /** Deduplicated by (address, field); annotations of duplicates are merged. */
  recipients: JournalRecipient[];
  /** Every logical line of the envelope part in order (folded/wrapped lines joined); lines without a field name have name ''. */
  fields: Array<{ name: string; value: string }>;
}

export interface JournalOriginal {
  /** The attached message exactly as it was: a subarray of the input for 7bit/8bit/binary/absent transfer encoding, decoded bytes for base64/quoted-printable. */
  bytes: Buffer;
  role: 'original' | 'decrypted' | 'tnef';
  /** Lower-cased media type of the part, e.g. 'message/rfc822' or 'application/ms-tnef'. */
  contentType: string;
}

export interface JournalReport {
  kind: JournalKind;
  envelope: JournalEnvelope;
  originals: JournalOriginal[];
  /** The report arrived inside another message (a non-delivery report from the alternate journal mailbox) and was unwrapped. */
  ndrWrapped: boolean;
  /** Identity of the journal report message itself (the inner one when unwrapped): Message-ID without brackets, From as display text, Date as ISO UTC. */
  wrapper: { messageId: string | null; from: string; date: string | null };
  /** Empty when well-formed. */
  problems: string[];
}

const MAX_PARTS = 1000;
const MAX_DEPTH = 20;
const MAX_PROBLEMS = 100;
const MAX_ENVELOPE_BYTES = 16 * 1024 * 1024;
const MAX_ENVELOPE_LINES = 200_000;
const MAX_RECIPIENTS = 100_000;
/** Longest logical envelope line kept (after joining folded / wrapped lines). */
const MAX_LINE_CHARS = 64 * 1024;
/** A physical envelope line at least this long is assumed to be hard-wrapped when the next line is not a field. */
const WRAP_WIDTH = 70;

const LF = 0x0a;
const CR = 0x0d;
const HYPHEN = 0x2d;

const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const cp1252 = new TextDecoder('windows-1252');

// ---------------------------------------------------------------------------
// Detection

export function detectJournalReport(headers: HeaderBlock): JournalKind | null {
  try {
    if (headerValues(headers, 'x-ms-journal-report').length > 0) return 'exchange';
    for (const v of headerValues(headers, 'x-wm-journal-report')) {
      if (v.trim().toLowerCase() === 'journal') return 'workmail';
    }
  } catch {
    // lenient
  }
  return null;
}

// ---------------------------------------------------------------------------
// Problems and budgets

class Problems {
  readonly list: string[] = [];
  private readonly seen = new Set<string>();

  add(p: string): void {
    if (this.seen.has(p)) return;
    if (this.list.length >= MAX_PROBLEMS) {
      if (!this.seen.has('too many problems')) {
        this.seen.add('too many problems');
        this.list.push('too many problems');
      }
      return;
    }
    this.seen.add(p);
    this.list.push(p);
  }
}

interface Budget {
  parts: number;
}

// ---------------------------------------------------------------------------
// MIME structure (offsets into one buffer, nothing copied)

interface MimeNode {
  buf: Buffer;
  start: number;
  bodyStart: number;
  end: number;
  headers: HeaderBlock;
  /** Lower-cased media type. */
  type: string;
  params: Record<string, string>;
  /** Lower-cased Content-Transfer-Encoding, '' when absent. */
  encoding: string;
}

function toBuffer(raw: unknown): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (typeof raw === 'string') return Buffer.from(raw, 'utf8');
  return Buffer.alloc(0);
}

function parseContentType(value: string | undefined, fallback: string): { type: string; params: Record<string, string> } {
  if (value === undefined) return { type: fallback, params: {} };
  try {
    const parsed = libmime.parseHeaderValue(value.slice(0, 16 * 1024), { stripComments: true });
    const type = String(parsed.value ?? '').trim().toLowerCase();
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(parsed.params ?? {})) {
      if (typeof v === 'string') params[k.toLowerCase()] = v;
    }
    // A media type without a slash is invalid: RFC 2045 says treat it as the default.
    return { type: type.includes('/') ? type : fallback, params };
  } catch {
    return { type: fallback, params: {} };
  }
}

function readNode(buf: Buffer, start: number, end: number, defaultType: string): MimeNode {
  const headers = parseHeaderBlock(buf.subarray(start, end));
  const bodyStart = headers.complete ? Math.min(end, start + headers.headerBytes) : end;
  const { type, params } = parseContentType(headerValues(headers, 'content-type')[0], defaultType);
  const encoding = (headerValues(headers, 'content-transfer-encoding')[0] ?? '').trim().toLowerCase();
  return { buf, start, bodyStart, end, headers, type, params, encoding };
}

interface Split {
  parts: Array<[number, number]>;
  closed: boolean;
  found: boolean;
  /** Stopped at maxParts before the closing delimiter. */
  limited: boolean;
}

/** Splits a multipart body at its delimiter lines (RFC 2046 5.1.1), CRLF or bare LF, ignoring preamble and epilogue. */
function splitMultipart(buf: Buffer, from: number, to: number, boundary: string, maxParts: number): Split {
  const parts: Array<[number, number]> = [];
  const delim = Buffer.from(`--${boundary}`, 'utf8');
  const region = buf.subarray(0, to);
  let pos = from;
  let partStart = -1;
  let closed = false;
  let found = false;
  let limited = false;
  while (pos < to) {
    const idx = region.indexOf(delim, pos);
    if (idx === -1) break;
    if (idx !== from && buf[idx - 1] !== LF) {
      pos = idx + 1;
      continue;
    }
    let p = idx + delim.length;
    const isClose = buf[p] === HYPHEN && buf[p + 1] === HYPHEN && p + 1 < to;
    if (isClose) p += 2;
    while (p < to && (buf[p] === 0x20 || buf[p] === 0x09)) p++;
    if (!isClose && p < to && buf[p] !== CR && buf[p] !== LF) {
      pos = idx + 1; // a longer boundary that merely starts with ours
      continue;
    }
    found = true;
    if (partStart !== -1) {
      let partEnd = idx;
      if (partEnd > partStart && buf[partEnd - 1] === LF) partEnd--;
      if (partEnd > partStart && buf[partEnd - 1] === CR) partEnd--;
      parts.push([partStart, partEnd]);
    }
    if (isClose) {
      closed = true;
      partStart = -1;
      break;
    }
    if (parts.length >= maxParts) {
      partStart = -1;
      limited = true;
      break;
    }
    const nl = region.indexOf(LF, p);
    partStart = nl === -1 ? to : nl + 1;
    pos = partStart;
  }
  if (partStart !== -1) parts.push([partStart, to]);
  return { parts, closed, found, limited };
}

/**
 * Visits the leaves of a MIME tree in document order (multiparts are opened, message/* parts are leaves).
 * Returns false when the visitor asked to stop.
 */
function walkLeaves(
  node: MimeNode,
  depth: number,
  budget: Budget,
  problems: Problems,
  visit: (leaf: MimeNode, depth: number) => boolean,
): boolean {
  if (!node.type.startsWith('multipart/')) return visit(node, depth);
  if (depth >= MAX_DEPTH) {
    problems.add('mime nesting too deep');
    return true;
  }
  const boundary = node.params['boundary'];
  if (boundary === undefined || boundary.length === 0) {
    problems.add('multipart without boundary');
    return true;
  }
  const remaining = MAX_PARTS - budget.parts;
  if (remaining <= 0) {
    problems.add('mime part limit reached');
    return true;
  }
  const split = splitMultipart(node.buf, node.bodyStart, node.end, boundary, remaining);
  if (!split.found) {
    problems.add('multipart boundary not found');
    return true;
  }
  if (split.limited) problems.add('mime part limit reached');
  else if (!split.closed) problems.add('multipart not closed');
  const childDefault = node.type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
  for (const [s, e] of split.parts) {
    if (budget.parts >= MAX_PARTS) {
      problems.add('mime part limit reached');
      return true;
    }
    budget.parts++;
    const child = readNode(node.buf, s, e, childDefault);
    if (!walkLeaves(child, depth + 1, budget, problems, visit)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Transfer encodings

function hexValue(b: number | undefined): number {
  if (b === undefined) return -1;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  return -1;
}

function decodeQuotedPrintable(src: Buffer): Buffer {
  const out = Buffer.allocUnsafe(src.length);
  let j = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i] ?? 0;
    if (b !== 0x3d) {
      out[j++] = b;
      continue;
    }
    const hi = hexValue(src[i + 1]);
    const lo = hexValue(src[i + 2]);
    if (hi !== -1 && lo !== -1) {
      out[j++] = hi * 16 + lo;
      i += 2;
      continue;
    }
    // soft line break, possibly with transport padding before the line end
    let k = i + 1;
    while (src[k] === 0x20 || src[k] === 0x09) k++;
    if (src[k] === CR && src[k + 1] === LF) {
      i = k + 1;
    } else if (src[k] === LF) {
      i = k;
    } else if (k >= src.length) {
      i = k;
    } else {
      out[j++] = b; // a stray '=' is kept
    }
  }
  return out.subarray(0, j);
}

function partBody(node: MimeNode, problems: Problems): Buffer {
  const body = node.buf.subarray(node.bodyStart, node.end);
  const enc = node.encoding;
  if (enc === '' || enc === '7bit' || enc === '8bit' || enc === 'binary') return body;
  if (enc === 'base64') return Buffer.from(body.toString('latin1'), 'base64');
  if (enc === 'quoted-printable') return decodeQuotedPrintable(body);
  problems.add(`unknown transfer encoding ${printable(enc, 40)}`);
  return body;
}

// ---------------------------------------------------------------------------
// Charsets

const ASCII_LABELS = new Set(['us-ascii', 'ascii', 'ansi_x3.4-1968', 'iso646-us', 'us', 'iso-ir-6', 'cp367', 'ibm367']);

function printable(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return s.slice(0, max).replace(/[^\x21-\x7e]/g, '?');
}

function has8bit(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if ((bytes[i] ?? 0) >= 0x80) return true;
  return false;
}

function utf8OrCp1252(bytes: Buffer): string {
  try {
    return utf8Fatal.decode(bytes);
  } catch {
    return cp1252.decode(bytes);
  }
}

function decodeText(bytes: Buffer, charsetParam: string | undefined, problems: Problems): string {
  const label = (charsetParam ?? '').trim().toLowerCase();
  const eight = has8bit(bytes);
  if (label === '' || ASCII_LABELS.has(label)) {
    if (!eight) return bytes.toString('latin1');
    problems.add('undeclared 8-bit charset');
    return utf8OrCp1252(bytes);
  }
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label, { fatal: true, ignoreBOM: true });
  } catch {
    problems.add(`unknown charset ${printable(label, 40)}`);
    return eight ? utf8OrCp1252(bytes) : bytes.toString('latin1');
  }
  try {
    return decoder.decode(bytes);
  } catch {
    problems.add(`invalid bytes for charset ${printable(label, 40)}`);
    if (decoder.encoding === 'utf-8') return cp1252.decode(bytes); // the usual mislabelled legacy text
    try {
      return new TextDecoder(label).decode(bytes);
    } catch {
      return cp1252.decode(bytes);
    }
  }
}

// ---------------------------------------------------------------------------
// Envelope part

interface Logical {
  name: string;
  value: string;
  lineNo: number;
  lastPhysicalLength: number;
}

const FIELD_LINE = /^([A-Za-z][A-Za-z0-9._-]{0,63})[ \t]*:(.*)$/s;
const RECIPIENT_FIELDS = new Set(['to', 'cc', 'bcc', 'recipient']);
const ANNOTATION = /^\s*(expanded|forwarded)\s*:(.*)$/is;

function isWsp(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t';
}

function extractMessageId(value: string): string | null {
  const open = value.indexOf('<');
  if (open !== -1) {
    const close = value.indexOf('>', open + 1);
    if (close !== -1) {
      const inner = value.slice(open + 1, close).trim();
      if (inner.length > 0) return inner.slice(0, 998);
    }
  }
  const trimmed = value.trim();
  if (trimmed.length > 0 && !/[\s<>]/.test(trimmed)) return trimmed.slice(0, 998);
  return null;
}

/** Splits at commas outside quotes and angle brackets. */
function splitTopLevel(value: string): string[] {
  const out: string[] = [];
  let depthAngle = 0;
  let inQuote = false;
  let last = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (inQuote) {
      if (ch === '\\') i++;
      else if (ch === '"') inQuote = false;
    } else if (ch === '"') {
      inQuote = true;
    } else if (ch === '<') {
      depthAngle++;
    } else if (ch === '>') {
      if (depthAngle > 0) depthAngle--;
    } else if (ch === ',' && depthAngle === 0) {
      out.push(value.slice(last, i));
      last = i + 1;
    }
  }
  out.push(value.slice(last));
  return out;
}

function firstAddress(value: string): string | null {
  return extractAddresses(value.slice(0, 4096))[0] ?? null;
}

/** Field names whose value is (part of) a recipient list, so an annotation line or a bare address line belongs to them. */
function isListContext(l: Logical): boolean {
  const lower = l.name.toLowerCase();
  return RECIPIENT_FIELDS.has(lower) || lower === 'recipients' || lower === 'smtp' || lower === '';
}

/** Appends a continuation to a logical line, unless the line is already at its size cap. */
function append(prev: Logical, text: string, separator: string, physicalLength: number, problems: Problems): void {
  if (prev.value.length >= MAX_LINE_CHARS) {
    problems.add('envelope line too long');
    return;
  }
  const tail = prev.value.trimEnd();
  prev.value = `${tail}${separator}${text}`.slice(0, MAX_LINE_CHARS);
  prev.lastPhysicalLength = physicalLength;
}

/** Joins lines into logical lines: WSP-folded lines, annotation-only lines and hard-wrapped fragments continue the previous one. */
function logicalLines(text: string, problems: Problems): Logical[] {
  const out: Logical[] = [];
  let prev: Logical | null = null;
  let pos = 0;
  let lineNo = 0;
  while (pos < text.length) {
    if (lineNo >= MAX_ENVELOPE_LINES) {
      problems.add('envelope truncated');
      break;
    }
    let nl = text.indexOf('\n', pos);
    if (nl === -1) nl = text.length;
    let line = text.slice(pos, nl);
    pos = nl + 1;
    lineNo++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length > MAX_LINE_CHARS) {
      problems.add('envelope line too long');
      line = line.slice(0, MAX_LINE_CHARS);
    }
    line = line.replace(/\r/g, ' ');
    const trimmed = line.trim();
    if (trimmed === '') {
      prev = null;
      continue;
    }
    if (isWsp(line[0]) && prev !== null) {
      append(prev, trimmed, ' ', line.length, problems);
      continue;
    }
    const m = FIELD_LINE.exec(trimmed);
    if (m !== null) {
      const name = m[1] ?? '';
      const lower = name.toLowerCase();
      if (prev !== null && (lower === 'expanded' || lower === 'forwarded') && isListContext(prev)) {
        // an annotation wrapped onto its own line
        prev.value = prev.value.trimEnd().replace(/,$/, '');
        append(prev, trimmed, ', ', line.length, problems);
        continue;
      }
      prev = { name, value: (m[2] ?? '').trim(), lineNo, lastPhysicalLength: line.length };
      out.push(prev);
      continue;
    }
    if (prev !== null && looksWrapped(prev, trimmed)) {
      append(prev, trimmed, prev.value.trimEnd().endsWith(',') ? ' ' : '', line.length, problems);
      continue;
    }
    prev = { name: '', value: trimmed, lineNo, lastPhysicalLength: line.length };
    out.push(prev);
  }
  return out;
}

const LIST_FIELDS = new Set(['recipients', 'smtp', '']);
const COMPLETE_ADDRESS = /^<?[^\s@<>]+@[^\s@<>]+\.[^\s@<>.]+>?$/;

function looksWrapped(prev: Logical, line: string): boolean {
  const tail = prev.value.trimEnd();
  if (tail.length === 0) return false;
  const lastCh = tail[tail.length - 1];
  if (lastCh === ',' || lastCh === '@' || lastCh === '.' || lastCh === '-') return true;
  if (line.startsWith('@') || line.startsWith('.')) return true;
  // In the Exchange 2003 list form a complete address on its own line is the next recipient, not a wrapped tail.
  if (LIST_FIELDS.has(prev.name.toLowerCase()) && COMPLETE_ADDRESS.test(line)) return false;
  return prev.lastPhysicalLength >= WRAP_WIDTH;
}

interface EnvelopeBuilder {
  recipients: JournalRecipient[];
  index: Map<string, JournalRecipient>;
}

function addRecipient(b: EnvelopeBuilder, r: JournalRecipient, problems: Problems): JournalRecipient {
  const key = `${r.field}\u0000${r.address}`;
  const existing = b.index.get(key);
  if (existing !== undefined) return existing;
  if (b.recipients.length >= MAX_RECIPIENTS) {
    problems.add('too many recipients');
    return r;
  }
  b.index.set(key, r);
  b.recipients.push(r);
  return r;
}

/**
 * Reads `addr[, Expanded: x][, Forwarded: y]…` (also a list of addresses, each followed by its annotations).
 * Returns false when no address was found at all.
 */
function readRecipientSpec(value: string, field: JournalRecipient['field'], b: EnvelopeBuilder, problems: Problems): boolean {
  let current: JournalRecipient | null = null;
  let any = false;
  for (const segment of splitTopLevel(value.slice(0, 64 * 1024))) {
    if (segment.trim() === '') continue;
    const ann = ANNOTATION.exec(segment);
    if (ann !== null) {
      const addr = firstAddress(ann[2] ?? '');
      if (current !== null && addr !== null) {
        if ((ann[1] ?? '').toLowerCase() === 'expanded') current.expandedFrom ??= addr;
        else current.forwardedFrom ??= addr;
      }
      continue;
    }
    const addrs = extractAddresses(segment.slice(0, 4096));
    for (const address of addrs) {
      current = addRecipient(b, { address, field, expandedFrom: null, forwardedFrom: null }, problems);
      any = true;
    }
  }
  return any;
}

function parseEnvelope(text: string, problems: Problems): JournalEnvelope {
  const lines = logicalLines(text.startsWith('\ufeff') ? text.slice(1) : text, problems);
  const fields: Array<{ name: string; value: string }> = [];
  const b: EnvelopeBuilder = { recipients: [], index: new Map() };
  let sender: string | null = null;
  let onBehalfOf: string | null = null;
  let subject: string | null = null;
  let messageId: string | null = null;
  let typed = false;
  let list2003 = false;
  let inRecipientList = false;

  for (const l of lines) {
    fields.push({ name: l.name, value: l.value });
    const lower = l.name.toLowerCase();
    const garbled = (): void => problems.add(`garbled envelope line ${l.lineNo}`);
    if (lower === 'smtp' && inRecipientList) {
      // "SMTP:user@x" on its own line inside an Exchange 2003 recipient list
      if (!readRecipientSpec(l.value, 'recipient', b, problems)) garbled();
      continue;
    }
    if (lower !== '') inRecipientList = false;
    switch (lower) {
      case 'sender': {
        const a = firstAddress(l.value);
        if (a === null) garbled();
        else sender ??= a;
        break;
      }
      case 'on-behalf-of': {
        const a = firstAddress(l.value);
        if (a === null) garbled();
        else onBehalfOf ??= a;
        break;
      }
      case 'subject':
        subject ??= l.value;
        break;
      case 'message-id': {
        const id = extractMessageId(l.value);
        if (id === null) garbled();
        else messageId ??= id;
        break;
      }
      case 'to':
      case 'cc':
      case 'bcc':
      case 'recipient': {
        const field = lower as JournalRecipient['field'];
        if (field !== 'recipient') typed = true;
        if (!readRecipientSpec(l.value, field, b, problems)) garbled();
        break;
      }
      case 'recipients': {
        // Exchange 2003: "Recipients: a@x, b@y", possibly continued with one address per line
        list2003 = true;
        inRecipientList = true;
        if (l.value.trim() !== '' && !readRecipientSpec(l.value, 'recipient', b, problems)) garbled();
        break;
      }
      case '': {
        if (inRecipientList && readRecipientSpec(l.value, 'recipient', b, problems)) break;
        garbled();
        break;
      }
      default:
        break; // unknown field (Label, Mailbox, SentUtc, …): kept in `fields` only
    }
  }

  if (sender === null) problems.add('no sender in envelope');
  if (b.recipients.length === 0) problems.add('no recipients in envelope');
  const style: JournalEnvelope['style'] = typed ? 'typed' : list2003 ? 'exchange2003' : 'untyped';
  return { style, sender, onBehalfOf, subject, messageId, recipients: b.recipients, fields };
}

function emptyEnvelope(): JournalEnvelope {
  return { style: 'untyped', sender: null, onBehalfOf: null, subject: null, messageId: null, recipients: [], fields: [] };
}

// ---------------------------------------------------------------------------
// Report

const MESSAGE_TYPES = new Set(['message/rfc822', 'message/global']);
const TNEF_TYPES = new Set(['application/ms-tnef', 'application/vnd.ms-tnef']);

/** An IRM-protected message carries Content-Class rpmsg.message (or is itself an rpmsg container). */
function isProtected(message: Buffer): boolean {
  const h = parseHeaderBlock(message, 256 * 1024);
  for (const v of headerValues(h, 'content-class')) if (/rpmsg\.message/i.test(v)) return true;
  for (const v of headerValues(h, 'content-type')) if (/x-microsoft-rpmsg-message/i.test(v)) return true;
  return false;
}

function buildReport(buf: Buffer, headers: HeaderBlock, kind: JournalKind, ndrWrapped: boolean, budget: Budget): JournalReport {
  const problems = new Problems();
  const summary = summarize(headers);
  const wrapper = { messageId: summary.messageId, from: summary.from, date: summary.date };

  const root: MimeNode = readNode(buf, 0, buf.length, 'text/plain');
  if (budget.parts < MAX_PARTS) budget.parts++;
  const textParts: MimeNode[] = [];
  const messages: MimeNode[] = [];
  const tnefs: MimeNode[] = [];
  if (!root.type.startsWith('multipart/')) problems.add('report is not multipart');
  walkLeaves(root, 0, budget, problems, (leaf) => {
    if (leaf === root) return true; // a single-part report has no envelope part of its own
    if (leaf.type === 'text/plain') {
      if (textParts.length === 0) textParts.push(leaf);
    } else if (MESSAGE_TYPES.has(leaf.type)) {
      messages.push(leaf);
    } else if (TNEF_TYPES.has(leaf.type)) {
      tnefs.push(leaf);
    }
    return true;
  });

  let envelope: JournalEnvelope;
  const found = textParts[0];
  if (found === undefined) {
    problems.add('envelope part not found');
    envelope = emptyEnvelope();
  } else {
    let bytes = partBody(found, problems);
    if (bytes.length > MAX_ENVELOPE_BYTES) {
      problems.add('envelope truncated');
      bytes = bytes.subarray(0, MAX_ENVELOPE_BYTES);
    }
    envelope = parseEnvelope(decodeText(bytes, found.params['charset'], problems), problems);
  }

  const originals: JournalOriginal[] = [];
  const messageBytes = messages.map((m) => partBody(m, problems));
  let protectedIdx = -1;
  if (messageBytes.length > 1) protectedIdx = messageBytes.findIndex((m) => isProtected(m));
  const originalIdx = protectedIdx === -1 ? 0 : protectedIdx;
  messages.forEach((m, i) => {
    originals.push({ bytes: messageBytes[i] ?? Buffer.alloc(0), role: i === originalIdx ? 'original' : 'decrypted', contentType: m.type });
  });
  for (const t of tnefs) originals.push({ bytes: partBody(t, problems), role: 'tnef', contentType: t.type });
  if (originals.length === 0) problems.add('no message/rfc822 part');

  return { kind, envelope, originals, ndrWrapped, wrapper, problems: problems.list };
}

/** Finds an embedded message whose own headers mark it as a journal report (searching nested messages too). */
function findWrappedReport(node: MimeNode, depth: number, budget: Budget): { bytes: Buffer; headers: HeaderBlock; kind: JournalKind } | null {
  const ignored = new Problems();
  let result: { bytes: Buffer; headers: HeaderBlock; kind: JournalKind } | null = null;
  walkLeaves(node, depth, budget, ignored, (leaf, leafDepth) => {
    if (leaf === node || !MESSAGE_TYPES.has(leaf.type)) return true;
    const bytes = partBody(leaf, ignored);
    const headers = parseHeaderBlock(bytes);
    const kind = detectJournalReport(headers);
    if (kind !== null) {
      result = { bytes, headers, kind };
      return false;
    }
    if (leafDepth + 1 >= MAX_DEPTH || budget.parts >= MAX_PARTS) return true;
    budget.parts++;
    const inner = readNode(bytes, 0, bytes.length, 'text/plain');
    if (!inner.type.startsWith('multipart/')) return true;
    const nested = findWrappedReport(inner, leafDepth + 1, budget);
    if (nested !== null) {
      result = nested;
      return false;
    }
    return true;
  });
  return result;
}

/** Parse a report (or an NDR containing one). Returns null if the bytes are not a journal report at all (after NDR unwrapping). */
export function parseJournalReport(raw: Buffer): JournalReport | null {
  try {
    const buf = toBuffer(raw);
    const budget: Budget = { parts: 0 };
    const headers = parseHeaderBlock(buf);
    const kind = detectJournalReport(headers);
    if (kind !== null) return buildReport(buf, headers, kind, false, budget);

    const root = readNode(buf, 0, buf.length, 'text/plain');
    if (!root.type.startsWith('multipart/')) return null;
    budget.parts++;
    const wrapped = findWrappedReport(root, 0, budget);
    if (wrapped === null) return null;
    return buildReport(wrapped.bytes, wrapped.headers, wrapped.kind, true, budget);
  } catch {
    return null;
  }
}
