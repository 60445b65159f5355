// Parses the text envelope part of a journal report (charset, logical lines, sender, subject, Message-ID, To/Cc/Bcc/Recipient lines, Exchange 2003 lists).
// Trusts nothing: any text, charset label and envelope syntax are accepted; lines, line length and recipients are capped, and nothing throws.
// Hands on a JournalEnvelope (deduplicated recipients with DL/forwarding annotations, every logical line) and adds problems to the caller's list.

import { Buffer } from 'node:buffer';
import { extractAddresses } from '../mime/addresses.ts';
import { printable, type Problems } from '../mime/multipart.ts';
import type { JournalEnvelope, JournalRecipient } from './journal-report.ts';

const MAX_ENVELOPE_LINES = 200_000;
const MAX_RECIPIENTS = 100_000;
/** Longest logical envelope line kept (after joining folded / wrapped lines). */
const MAX_LINE_CHARS = 64 * 1024;
/** A physical envelope line at least this long is assumed to be hard-wrapped when the next line is not a field. */
const WRAP_WIDTH = 70;

const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const cp1252 = new TextDecoder('windows-1252');

// ---------------------------------------------------------------------------
// Charsets

const ASCII_LABELS = new Set(['us-ascii', 'ascii', 'ansi_x3.4-1968', 'iso646-us', 'us', 'iso-ir-6', 'cp367', 'ibm367']);

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

export function decodeText(bytes: Buffer, charsetParam: string | undefined, problems: Problems): string {
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

export function parseEnvelope(text: string, problems: Problems): JournalEnvelope {
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

export function emptyEnvelope(): JournalEnvelope {
  return { style: 'untyped', sender: null, onBehalfOf: null, subject: null, messageId: null, recipients: [], fields: [] };
}
