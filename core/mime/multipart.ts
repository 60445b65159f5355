// Generic MIME multipart machinery: content-type parsing, delimiter splitting (RFC 2046), leaf walking and transfer decoding.
// Trusts nothing: any bytes, boundaries and encodings are accepted; work is capped (1,000 parts, depth 20) and problems are collected, never thrown.
// Hands on MimeNode offsets into the caller's buffer, decoded part bodies (base64/quoted-printable) and a deduplicated, capped problem list.

import { Buffer } from 'node:buffer';
import libmime from 'libmime';
import { parseHeaderBlock, headerValues, type HeaderBlock } from './headers.ts';

export const MAX_PARTS = 1000;
export const MAX_DEPTH = 20;
const MAX_PROBLEMS = 100;

const LF = 0x0a;
const CR = 0x0d;
const HYPHEN = 0x2d;

// ---------------------------------------------------------------------------
// Problems and budgets

export class Problems {
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

export interface Budget {
  parts: number;
}

// ---------------------------------------------------------------------------
// MIME structure (offsets into one buffer, nothing copied)

export interface MimeNode {
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

export function readNode(buf: Buffer, start: number, end: number, defaultType: string): MimeNode {
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
export function walkLeaves(
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

export function partBody(node: MimeNode, problems: Problems): Buffer {
  const body = node.buf.subarray(node.bodyStart, node.end);
  const enc = node.encoding;
  if (enc === '' || enc === '7bit' || enc === '8bit' || enc === 'binary') return body;
  if (enc === 'base64') return Buffer.from(body.toString('latin1'), 'base64');
  if (enc === 'quoted-printable') return decodeQuotedPrintable(body);
  problems.add(`unknown transfer encoding ${printable(enc, 40)}`);
  return body;
}

export function printable(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return s.slice(0, max).replace(/[^\x21-\x7e]/g, '?');
}
