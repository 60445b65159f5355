// The data the imap plugin stores with each message (MessageRecord.attributes.imap) and its validation.
// Trusts nothing read back from storage: imapDataOf checks every field and bound before handing it on,
// and refuses data of earlier formats (offsets and sizes of the raw bytes rather than of the CRLF
// view), so such messages are recomputed from their blob instead of served with wrong sizes.
// Hands on ImapMessageData (serialized ENVELOPE/BODY/BODYSTRUCTURE plus the part index) and SectionSpec.

/** Limits shared by the parser, the validator and the section resolver. */
export const MAX_DEPTH = 32;
export const MAX_PARTS = 2000;

/**
 * One MIME entity, by byte offsets into the message's IMAP view (crlf.ts: the original with every bare
 * LF read as CRLF; the original itself when it is CRLF already): header [h, b), body [b, e). A multipart
 * lists its children in `p`; a message/rfc822 part holds its encapsulated message in `m`.
 */
export interface PartIndex {
  h: number;
  b: number;
  e: number;
  /** "type/subtype", lower case. */
  t: string;
  /** Content-Transfer-Encoding, lower case, when not 7bit. */
  x?: string;
  /** Charset parameter, lower case, when present. */
  c?: string;
  p?: PartIndex[];
  m?: PartIndex;
}

export interface ImapMessageData {
  /**
   * Serialized IMAP ENVELOPE, a byte string: one character per byte, 8-bit header bytes as they are
   * in the message, literal lengths count bytes; written with Buffer.from(s, 'latin1').
   */
  envelope: string;
  /** Serialized non-extensible BODY (sizes and line counts of the CRLF view). */
  body: string;
  /** Serialized BODYSTRUCTURE with extension data (sizes and line counts of the CRLF view). */
  bodystructure: string;
  /** Opaque part index used by sectionOf() and textMatches() (a PartIndex, view offsets). */
  parts: unknown;
  /** Bytes of the top-level header including the blank line, in the view. */
  headerSize: number;
  /** How envelope, body and bodystructure map to bytes (see envelope). */
  encoding: 'latin1';
  /** Format marker: offsets and sizes are those of the CRLF view (data without it is recomputed). */
  view: 'crlf';
  /** Size of the CRLF view: RFC822.SIZE and what SEARCH LARGER/SMALLER compare. */
  size: number;
  /**
   * The top-level header of the view (headerSize bytes, one character per byte) when it is at most
   * MAX_STORED_HEADER bytes: header FETCH and SEARCH read it instead of the blob. Absent in older data.
   */
  header?: string;
}

/** Headers up to this size are stored with the IMAP data. */
export const MAX_STORED_HEADER = 16 * 1024;

export interface SectionSpec {
  part: number[];
  text: 'ALL' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';
  fields: string[];
}

const isOffset = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The part index when `value` is a well-formed one (offsets ordered, depth and count bounded). */
export function partIndexOf(value: unknown): PartIndex | null {
  let count = 0;
  const check = (v: unknown, depth: number): boolean => {
    if (typeof v !== 'object' || v === null || depth > MAX_DEPTH + 2 || ++count > MAX_PARTS * 2) return false;
    const n = v as Record<string, unknown>;
    if (!isOffset(n.h) || !isOffset(n.b) || !isOffset(n.e) || n.h > n.b || n.b > n.e) return false;
    if (typeof n.t !== 'string' || (n.x !== undefined && typeof n.x !== 'string') || (n.c !== undefined && typeof n.c !== 'string')) return false;
    if (n.p !== undefined && (!Array.isArray(n.p) || !n.p.every((c) => check(c, depth + 1)))) return false;
    if (n.m !== undefined && !check(n.m, depth + 1)) return false;
    return true;
  };
  return check(value, 0) ? (value as PartIndex) : null;
}

/** The stored data of a message (from MessageRecord.attributes), validated; null if absent, invalid or of an earlier format. */
export function imapDataOf(attributes: Record<string, unknown> | undefined): ImapMessageData | null {
  const v = attributes?.imap;
  if (typeof v !== 'object' || v === null) return null;
  const d = v as Record<string, unknown>;
  if (d.view !== 'crlf' || d.encoding !== 'latin1') return null;
  if (typeof d.envelope !== 'string' || typeof d.body !== 'string' || typeof d.bodystructure !== 'string') return null;
  if (!d.envelope.startsWith('(') || !d.body.startsWith('(') || !d.bodystructure.startsWith('(')) return null;
  if ([d.envelope, d.body, d.bodystructure].some((s) => /[^\u0000-\u00ff]/.test(s))) return null;
  const root = partIndexOf(d.parts);
  if (!isOffset(d.headerSize) || !isOffset(d.size) || root === null || root.e > d.size || d.headerSize > d.size) return null;
  const header = typeof d.header === 'string' && d.header.length === d.headerSize && !/[^\u0000-\u00ff]/.test(d.header) ? { header: d.header } : {};
  return { envelope: d.envelope, body: d.body, bodystructure: d.bodystructure, parts: d.parts, headerSize: d.headerSize, encoding: 'latin1', view: 'crlf', size: d.size, ...header };
}
