// Recognises Exchange / WorkMail envelope journal reports (also inside an NDR), reads the envelope part and locates the attached originals.
// Trusts nothing: any bytes, boundaries, encodings, charsets and envelope syntax are accepted; MIME work is capped (1,000 parts, depth 20) and nothing throws.
// Hands on the envelope (sender, typed recipients with DL/forwarding annotations, every envelope line), the original bytes untouched, and a list of problems.

import { Buffer } from 'node:buffer';
import { parseHeaderBlock, headerValues, summarize, type HeaderBlock } from '../mime/headers.ts';
import { MAX_DEPTH, MAX_PARTS, Problems, partBody, readNode, walkLeaves, type Budget, type MimeNode } from '../mime/multipart.ts';
import { decodeText, emptyEnvelope, parseEnvelope } from './journal-envelope.ts';

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

const MAX_ENVELOPE_BYTES = 16 * 1024 * 1024;

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

function toBuffer(raw: unknown): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (typeof raw === 'string') return Buffer.from(raw, 'utf8');
  return Buffer.alloc(0);
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
