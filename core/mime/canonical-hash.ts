// Message identity hash that ignores what changes per hop or per copy, so the same mail seen through two
// hubs, journaled twice or re-imported from an mbox is recognised as one message without trusting
// Message-ID (forged, missing and reused IDs are common). The dedup plugin keys copies by it
// ("c<version>:<hash>"), and a capture recognised as a copy is merged WITHOUT its own bytes being stored:
// a false collision loses a message, a missed one only costs a duplicate. Every rule below therefore
// leans to "keep it in the hash" unless the part is known to be added or rewritten in transit or on import.
//
// Rules (version 1; bump CANONICAL_VERSION whenever the output for any input changes):
//  1. Only the header block within the first 1 MiB is parsed (parseHeaderBlock from headers.ts); if no blank
//     line ends it within that limit, the bytes after the last whole header line are hashed as body under a
//     "truncated" marker, so nothing past the limit is ignored (and copies of such messages may not merge).
//  2. Per-hop and per-copy header fields are dropped entirely (names compared case-insensitively):
//     - trace and delivery stamps, each hop adds its own: Received, X-Received, Return-Path, Delivered-To,
//       X-Original-To, Envelope-To, X-Envelope-*, X-Rcpt-To, X-Gm-Original-To;
//     - Exchange transport state, rewritten per organisation/forest/tenant: X-MS-Exchange-Organization-*,
//       X-MS-Exchange-Forest-*, X-MS-Exchange-Transport-*, X-MS-Exchange-CrossTenant-*, X-MS-Journal-Report;
//     - authentication verdicts of the receiving hop: Authentication-Results, Received-SPF, ARC-*;
//     - signatures: DKIM-Signature, DomainKey-Signature, X-Google-DKIM-Signature. An outbound gateway or a
//       forwarder may add one, so copies taken before and after it differ; a signature is derived from
//       content that is hashed anyway plus the signer's identity and time, so it carries nothing authored;
//     - scanner stamps: X-Spam-*, X-Virus-*, X-Microsoft-Antispam(-*), X-Forefront-Antispam-Report(-*),
//       X-MS-Exchange-AntiSpam-*. Each filtering hop writes its own scores, hosts and times; a scanner that
//       also changes the content (a tagged Subject) still yields a different hash, as it should;
//     - our own annotations: X-Postern-*;
//     - mbox / MUA state added on import or by the mail store: Status, X-Status, X-Keywords, X-UID,
//       Content-Length, Lines, X-Mozilla-Status*, X-Mozilla-Keys, X-IMAP, X-IMAPbase; and a first line
//       "From ..." (the mbox separator) if an importer left it in.
//     Kept on purpose: Bcc (authored by the sender and removed at submission, so it does not vary per hop;
//     a sender's copy with Bcc against a recipient's copy without it are different views, and losing the
//     Bcc list to a merge would hide who was blind-copied), Message-ID, Date, Resent-*, List-* and all
//     other fields.
//  3. Header names are lower-cased. Values are unfolded (parseHeaderBlock), runs of SP/HTAB/CR/LF become
//     one space, and leading/trailing whitespace is trimmed; the value bytes are otherwise exact (8-bit
//     bytes are hashed as they came, whatever the rest of the header block's encoding, so a dropped field
//     with stray 8-bit bytes cannot change how kept fields are hashed). Encoded-words are not decoded.
//  4. Kept fields are sorted by lower-cased name with a stable sort: fields of the same name keep their
//     relative order (it carries meaning: Resent-* blocks, several To/Comments fields), while the order
//     between different names carries none (RFC 5322 3.6) and gateways that rebuild the header block
//     (e.g. store-and-forward through a mail store) change it.
//  5. Header lines that are not fields (no colon, invalid name, continuation of such a line) are not
//     dropped: some readers show them as text, and two messages differing only there must not merge.
//     They are hashed with their position (number of fields before them), trailing whitespace trimmed.
//  6. Body: split at LF; trailing SP, HTAB and CR are stripped from every line (this normalises CRLF vs LF,
//     and the trailing whitespace transports add or remove, which RFC 2045 6.7 tells decoders to ignore);
//     trailing empty lines are removed; everything else (leading whitespace, empty lines inside, lone
//     CRs, NULs, 8-bit bytes) is hashed exactly. A message without a body, with an empty body and without
//     the blank line after the header hash the same.
//  7. The hash input is unambiguous: a magic string with the version, then length-prefixed records, so no
//     choice of bytes inside a field can imitate a field boundary or the start of the body.
// Addresses inside fields are not parsed or reordered ("To: a, b" and "To: b, a" differ): no hub reorders
// them, and parsing address lists invites false merges.
//
// Hash input (SHA-256, all integers big-endian):
//   "postern-canonical-hash" 0x00  u32 version
//   per kept field, in sorted order:    "H"  u32 len  name-bytes(lower-case)  u32 len  value-bytes
//   per non-field header line:          "S"  u32 fields-before  u32 len  line-bytes
//   if the header block was truncated:  "T"
//   always:                             "B"  body-bytes(normalised)  u32 high  u32 low (body length)
//
// Known gaps (copies that will NOT be recognised): content rewritten in transit (8bit to quoted-printable
// downgrade, re-encoded encoded-words, added disclaimers or footers, Exchange MIME/TNEF conversion, tagged
// subjects, list footers), headers beyond 1 MiB. Known losses on merge (by design): whatever a later copy
// carried only in dropped fields (e.g. X-MS-Exchange-Organization-BCC); its envelope is kept per capture.
// Format=flowed text (RFC 3676) marks soft breaks by a trailing space, which rule 6 ignores.

import { Buffer, isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { HashWriter } from './hash-writer.ts';
import { parseHeaderBlock, type HeaderBlock } from './headers.ts';

export interface CanonicalHash {
  /** Hex SHA-256 of the canonical form. */
  hash: string;
  /** Version of the rules; copies only match under the same version. */
  version: number;
}

export const CANONICAL_VERSION = 1;

/** Header bytes considered; the rest of an unterminated header block is hashed as body. */
const HEADER_LIMIT = 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

const MAGIC = 'postern-canonical-hash\0';
const FALLBACK_MAGIC = 'postern-canonical-hash-fallback\0';
const MAGIC_BYTES = Buffer.from(MAGIC, 'latin1');

/** Field names dropped entirely (lower case). */
const DROPPED_NAMES: readonly string[] = [
  // trace and delivery
  'received', 'x-received', 'return-path', 'delivered-to', 'x-original-to', 'envelope-to', 'x-rcpt-to',
  'x-gm-original-to',
  // Exchange journaling
  'x-ms-journal-report',
  // authentication verdicts and signatures
  'authentication-results', 'received-spf', 'dkim-signature', 'domainkey-signature', 'x-google-dkim-signature',
  // scanner stamps
  'x-microsoft-antispam', 'x-forefront-antispam-report',
  // mbox / MUA state
  'status', 'x-status', 'x-keywords', 'x-uid', 'content-length', 'lines', 'x-mozilla-keys',
  'x-imap', 'x-imapbase',
];

/** Name prefixes dropped entirely (lower case). */
const DROPPED_PREFIXES: readonly string[] = [
  'x-envelope-',
  'x-ms-exchange-organization-', 'x-ms-exchange-forest-', 'x-ms-exchange-transport-', 'x-ms-exchange-crosstenant-',
  'arc-',
  'x-spam-', 'x-virus-', 'x-microsoft-antispam-', 'x-forefront-antispam-report-', 'x-ms-exchange-antispam-',
  'x-mozilla-status',
  'x-postern-',
];

const DROPPED_SET = new Set(DROPPED_NAMES);

export const CANONICAL_RULES: string = [
  `Canonical message hash, version ${CANONICAL_VERSION} (hex SHA-256). A later copy with the same hash is merged into the stored message, so the rules only ignore what is added or rewritten in transit or on import.`,
  '1. Only the header block within the first 1 MiB is parsed; if it has no blank line by then, the rest is hashed as body under a "truncated" marker (nothing is ignored).',
  `2. Dropped header fields (case-insensitive), because each hop, scanner, signer, mail store or importer adds its own: ${DROPPED_NAMES.join(', ')}; and every field starting with ${DROPPED_PREFIXES.map((p) => `${p}*`).join(', ')}. An mbox "From " separator line at the very top is ignored too.`,
  '   Kept on purpose: Bcc (authored, removed at submission so it does not vary per hop; losing it to a merge would hide who was blind-copied), Message-ID, Date, Resent-*, List-* and all other fields.',
  '3. Header names are lower-cased; values are unfolded, runs of spaces, tabs and line breaks become one space, leading and trailing whitespace is trimmed; value bytes are otherwise exact (no decoding of encoded-words or charsets).',
  '4. Kept fields are stably sorted by name: same-name fields keep their order (it carries meaning), the order between different names carries none and some gateways rebuild it.',
  '5. Header lines that are not fields (no colon, invalid name) are hashed with their position, not dropped: some readers display them.',
  '6. Body: CRLF and LF are equivalent, trailing spaces/tabs/CRs on each line and trailing empty lines are ignored; everything else is exact. No body, an empty body and a missing blank line hash the same.',
  '7. Addresses are not parsed or reordered: "To: a, b" and "To: b, a" are different messages.',
  '8. The hash input is a versioned magic string and length-prefixed records, so field contents cannot imitate field or body boundaries.',
].join('\n');

/** True for a per-hop or per-copy field name that rule 2 leaves out of the hash. */
export function isDroppedField(name: string): boolean {
  return isDroppedLower(name.toLowerCase());
}

function isDroppedLower(lower: string): boolean {
  if (DROPPED_SET.has(lower)) return true;
  for (const prefix of DROPPED_PREFIXES) if (lower.startsWith(prefix)) return true;
  return false;
}

function toBuffer(raw: unknown): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (typeof raw === 'string') return Buffer.from(raw, 'utf8');
  return Buffer.alloc(0);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function isWspByte(c: number | undefined): boolean {
  return c === SP || c === HT;
}

/** True when normaliseValue would return the value unchanged: no HTAB/CR/LF, no leading, trailing or double space. */
function isNormalised(value: string): boolean {
  const last = value.length - 1;
  for (let i = 0; i <= last; i++) {
    const c = value.charCodeAt(i);
    if (c === 9 || c === 10 || c === 13) return false;
    if (c === 32 && (i === 0 || i === last || value.charCodeAt(i - 1) === 32)) return false;
  }
  return true;
}

/** Runs of SP/HTAB/CR/LF to one space, then trimmed (no end-anchored regex: those are quadratic on long runs). */
function normaliseValue(value: string): string {
  if (isNormalised(value)) return value;
  const collapsed = value.replace(/[ \t\r\n]+/g, ' ');
  const start = collapsed.startsWith(' ') ? 1 : 0;
  const end = collapsed.length > start && collapsed.endsWith(' ') ? collapsed.length - 1 : collapsed.length;
  return collapsed.slice(start, end);
}

/** Index just past the last byte of raw[start, end) that is not SP, HTAB or CR. */
function trimLineEnd(raw: Buffer, start: number, end: number): number {
  let e = end;
  while (e > start) {
    const c = raw[e - 1];
    if (c !== SP && c !== HT && c !== CR) break;
    e--;
  }
  return e;
}

/**
 * Walks the header lines in raw[0, end) the way parseHeaderBlock splits them and writes an "S" record for
 * each line it discards (not a field start and not a continuation of a field), and for every line after
 * the last field it returned (it stops after a fixed number of fields). Stops at the first empty line.
 */
function writeStrayHeaderLines(out: HashWriter, raw: Buffer, end: number, fieldCount: number): void {
  let seen = 0;
  let discarding = true;
  let overflow = false;
  let pos = 0;
  let lineNo = 0;
  while (pos < end) {
    let nl = raw.indexOf(LF, pos);
    if (nl === -1 || nl >= end) nl = end;
    const lineStart = pos;
    let lineEnd = nl;
    pos = nl + 1;
    if (lineEnd > lineStart && raw[lineEnd - 1] === CR) lineEnd--;
    const first = lineNo === 0;
    lineNo++;
    if (lineEnd === lineStart) break; // the blank line ending the block

    let stray: boolean;
    if (overflow) {
      stray = true;
    } else if (isWspByte(raw[lineStart])) {
      stray = discarding;
    } else {
      // Searched within the line only: a search running past it would be quadratic on colon-less lines.
      let nameEnd = -1;
      for (let i = lineStart; i < lineEnd; i++) {
        if (raw[i] === COLON) {
          nameEnd = i;
          break;
        }
      }
      while (nameEnd > lineStart && isWspByte(raw[nameEnd - 1])) nameEnd--;
      let valid = nameEnd > lineStart;
      for (let i = lineStart; valid && i < nameEnd; i++) {
        const c = raw[i] ?? 0;
        if (c < 33 || c > 126 || c === COLON) valid = false;
      }
      if (!valid) {
        discarding = true;
        stray = true;
        // An mbox "From " separator an importer left at the top is per-copy state.
        if (first && raw.subarray(lineStart, Math.min(lineStart + 5, lineEnd)).toString('latin1') === 'From ') continue;
      } else if (seen >= fieldCount) {
        overflow = true;
        stray = true;
      } else {
        seen++;
        discarding = false;
        stray = false;
      }
    }
    if (stray) {
      out.tag('S');
      out.u32(seen);
      out.field(raw, lineStart, trimLineEnd(raw, lineStart, lineEnd));
    }
  }
}

/** Writes raw[start..] with the body rules; returns the number of canonical body bytes. */
function writeBody(out: HashWriter, raw: Buffer, start: number): number {
  let total = 0;
  let started = false;
  let pendingEmpty = 0;
  let pos = start;
  for (;;) {
    const nl = raw.indexOf(LF, pos);
    const end = nl === -1 ? raw.length : nl;
    const trimmed = trimLineEnd(raw, pos, end);
    if (trimmed === pos) {
      pendingEmpty++;
    } else {
      const newlines = started ? pendingEmpty + 1 : pendingEmpty;
      out.newlines(newlines);
      out.bytes(raw, pos, trimmed);
      total += newlines + (trimmed - pos);
      started = true;
      pendingEmpty = 0;
    }
    if (nl === -1) break;
    pos = nl + 1;
  }
  return total;
}

function canonicalHashUnsafe(raw: Buffer, parsed: HeaderBlock | undefined): string {
  // A complete block parsed by the caller from the same first bytes is exactly what parsing here gives,
  // as long as it ends within this function's own limit (the caller may scan further).
  const block = parsed?.complete && parsed.headerBytes <= raw.length && parsed.headerBytes <= HEADER_LIMIT ? parsed : parseHeaderBlock(raw, HEADER_LIMIT);
  const limit = Math.min(HEADER_LIMIT, raw.length);

  // The bytes parseHeaderBlock decoded, and where the body (or the unparsed rest) begins.
  let headerEnd: number;
  let bodyStart: number;
  let truncated = false;
  if (block.complete) {
    headerEnd = block.headerBytes;
    bodyStart = block.headerBytes;
  } else if (limit < raw.length) {
    truncated = true;
    headerEnd = raw.subarray(0, limit).lastIndexOf(LF) + 1;
    bodyStart = headerEnd;
  } else {
    headerEnd = raw.length;
    bodyStart = raw.length;
  }

  // parseHeaderBlock decodes the whole block as UTF-8 if valid, else as latin1: re-encoding each value the
  // same way restores its exact bytes, independent of other (possibly dropped) fields.
  const encoding: BufferEncoding = isUtf8(raw.subarray(0, headerEnd)) ? 'utf8' : 'latin1';

  const kept: Array<{ name: string; value: string }> = [];
  for (const field of block.fields) {
    const name = field.name.toLowerCase();
    if (isDroppedLower(name)) continue;
    kept.push({ name, value: normaliseValue(field.value) });
  }
  kept.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const out = new HashWriter();
  out.bytes(MAGIC_BYTES);
  out.u32(CANONICAL_VERSION);
  for (const { name, value } of kept) {
    // eslint-disable-next-line no-control-regex
    const valueEncoding: BufferEncoding = encoding === 'latin1' && /[^\u0000-\u00ff]/.test(value) ? 'utf8' : encoding;
    out.tag('H');
    out.text(name, 'latin1');
    out.text(value, valueEncoding);
  }
  writeStrayHeaderLines(out, raw, headerEnd, block.fields.length);
  if (truncated) out.tag('T');
  out.tag('B');
  out.u64(writeBody(out, raw, bodyStart));
  return out.digest();
}

/**
 * Canonical identity hash of a whole message (see the rules above). Accepts any bytes and never throws;
 * if the canonical form cannot be built, falls back to a hash of the exact bytes (distinct from any
 * canonical hash, so it can only match an identical message). `headers`, when given, must be
 * parseHeaderBlock of the same bytes (limit 1 MiB), as core hands it on in the message context: it is
 * used only when complete, so the header block is not parsed a second time.
 */
export function canonicalHash(raw: Buffer, headers?: HeaderBlock): CanonicalHash {
  const buf = toBuffer(raw);
  try {
    return { hash: canonicalHashUnsafe(buf, headers), version: CANONICAL_VERSION };
  } catch {
    const hash = createHash('sha256');
    hash.update(FALLBACK_MAGIC, 'latin1');
    hash.update(u32(CANONICAL_VERSION));
    hash.update(buf);
    return { hash: hash.digest('hex'), version: CANONICAL_VERSION };
  }
}
