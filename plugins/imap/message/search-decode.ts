// The text SEARCH compares, decoded the way Dovecot 2.3 decodes it (the reference IMAP server): header
// lines as its header parser reports them (folded lines joined, a leading tab read as a space, lines
// without a colon kept as a value), RFC 2047 words wherever they stand, 8-bit bytes outside them read
// as UTF-8 (invalid sequences become U+FFFD), bodies in their declared charset through iconv-lite (UTF-7
// included) or the WHATWG decoders, UTF-8 for us-ascii and for charsets neither knows, and the
// Content-Transfer-Encoding values it recognises (RFC 2045 6.4: a body in any other is not text).
// Trusts nothing: every input is bounded by the caller, nothing throws. Hands on strings.
import iconv from 'iconv-lite';

/** One header line as SEARCH sees it: `name` ('' for a line without a colon), `middle` (the colon and the whitespace it keeps), and the raw value (one character per byte). */
export interface SearchHeaderLine {
  name: string;
  middle: string;
  value: string;
}

/** Names read as UTF-8 without a converter, as Dovecot does (us-ascii text with 8-bit bytes included). */
const UTF8_NAMES = /^(?:us-ascii|ascii|utf-8|utf8)$/i;
/** iconv-lite codecs that are no character set: a part declaring one is read as UTF-8 (an unknown charset). */
const NOT_CHARSETS = new Set(['base64', 'hex', 'binary']);

export interface StreamDecoder {
  write(bytes: Buffer): string;
  end(): string;
}

function utf8Stream(): StreamDecoder {
  const d = new TextDecoder('utf-8', { ignoreBOM: true });
  return { write: (b) => d.decode(b, { stream: true }), end: () => d.decode() };
}

/** UTF-7 names as iconv-lite compares them (lower case, letters and digits only). */
const UTF7_NAMES = new Set(['utf7', 'unicode11utf7', 'utf7imap']);
/** Bytes a line-wise decoder holds at most while waiting for the end of a line. */
const MAX_HELD = 64 * 1024;

/**
 * iconv-lite's UTF-7 decoder loses characters when a chunk ends inside a shifted (base64) sequence, so
 * UTF-7 is decoded a line at a time (a shifted sequence never spans a line break).
 */
function lineWise(name: string): StreamDecoder {
  let held: Buffer = Buffer.alloc(0);
  return {
    write(bytes) {
      held = held.length > 0 ? Buffer.concat([held, bytes]) : bytes;
      const nl = held.lastIndexOf(0x0a);
      if (nl < 0 && held.length < MAX_HELD) return '';
      const cut = nl < 0 ? held.length : nl + 1;
      const out = iconv.decode(held.subarray(0, cut), name);
      held = held.subarray(cut);
      return out;
    },
    end() {
      const out = held.length > 0 ? iconv.decode(held, name) : '';
      held = Buffer.alloc(0);
      return out;
    },
  };
}

/** A streaming decoder from `charset` to text: iconv-lite, then the WHATWG decoders, then UTF-8. */
export function charsetDecoder(charset: string | null | undefined): StreamDecoder {
  const name = (charset ?? '').trim();
  if (name === '' || UTF8_NAMES.test(name)) return utf8Stream();
  const key = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  try {
    if (iconv.encodingExists(name) && !NOT_CHARSETS.has(key)) {
      if (UTF7_NAMES.has(key)) return lineWise(name);
      const d = iconv.getDecoder(name);
      return { write: (b) => d.write(b), end: () => d.end() ?? '' };
    }
  } catch {
    // a name iconv-lite chokes on: try the next decoder
  }
  try {
    const d = new TextDecoder(name);
    return { write: (b) => d.decode(b, { stream: true }), end: () => d.decode() };
  } catch {
    return utf8Stream();
  }
}

export function decodeCharset(bytes: Buffer, charset: string | null | undefined): string {
  const d = charsetDecoder(charset);
  return d.write(bytes) + d.end();
}

/** A byte string (one character per byte) read as UTF-8, invalid sequences as U+FFFD. */
const utf8Of = (binary: string): string => (/[\x80-\xff]/.test(binary) ? Buffer.from(binary, 'latin1').toString('utf8') : binary);

const HEX = /^[0-9A-Fa-f]{2}$/;

/** RFC 2047 "Q" text to bytes as Dovecot reads it: "_" is a space, "=XX" a byte, other bytes as they are; an "=" among the last two characters ends the decoding (the rest is kept as it is). */
function qDecode(text: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i) & 0xff;
    if (c === 0x5f) out.push(0x20);
    else if (c !== 0x3d) out.push(c);
    else if (i + 2 >= text.length) {
      for (let j = i; j < text.length; j++) out.push(text.charCodeAt(j) & 0xff);
      break;
    } else if (HEX.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(c);
  }
  return Buffer.from(out);
}

/** RFC 2047 "B" text to bytes, up to the first character that is not base64 (as Dovecot shows what it got so far). */
function bDecode(text: string): Buffer {
  const m = /^[A-Za-z0-9+/\s]*={0,2}/.exec(text);
  return Buffer.from((m?.[0] ?? '').replace(/\s+/g, ''), 'base64');
}

/**
 * A header value (one character per byte) decoded as Dovecot's message_header_decode_utf8 does:
 * every "=?charset?Q|B?text?=" is decoded wherever it stands, whitespace between two of them is
 * dropped, and the other bytes are read as UTF-8 (invalid sequences as U+FFFD).
 */
export function decodeHeaderValue(raw: string): string {
  let out = '';
  let start = 0;
  let pos = 0;
  while (pos + 1 < raw.length) {
    const at = raw.indexOf('=?', pos);
    if (at < 0) break;
    const q1 = raw.indexOf('?', at + 2);
    const q2 = q1 < 0 ? -1 : raw.indexOf('?', q1 + 1);
    const q3 = q2 < 0 ? -1 : raw.indexOf('?', q2 + 1);
    const enc = q1 < 0 ? '' : raw[q1 + 1]?.toUpperCase();
    const between = raw.slice(start, at);
    const emit = !/^[ \t\r\n]*$/.test(between);
    if (emit) out += utf8Of(between);
    if (q3 < 0 || raw[q3 + 1] !== '=' || (enc !== 'Q' && enc !== 'B')) {
      // Not an encoded word: it stays text (the whitespace before it was dropped, as Dovecot does).
      start = at;
      pos = at + 2;
      continue;
    }
    const text = raw.slice(q2 + 1, q3);
    const bytes = enc === 'Q' ? qDecode(text) : bDecode(text);
    if (bytes.length > 0) out += decodeCharset(bytes, raw.slice(at + 2, q1));
    pos = q3 + 2;
    start = pos;
  }
  return out + utf8Of(raw.slice(start));
}

/** Runs of spaces and tabs as one space, leading ones dropped (what SEARCH SUBJECT compares, as Dovecot). */
export function compressLwsp(s: string): string {
  return s.replace(/^[ \t]+/, '').replace(/[ \t]+/g, ' ');
}

const MAX_LINES = 10_000;

/**
 * The lines of a header block as Dovecot's header parser reports them for searching: a field's
 * continuation lines joined without their line breaks (a leading tab read as a space), a line without
 * a colon kept whole as a value with an empty name; the blank line ends the header.
 */
export function searchHeaderLines(bytes: Buffer): SearchHeaderLine[] {
  const text = bytes.toString('latin1');
  const out: SearchHeaderLine[] = [];
  let pos = 0;
  while (pos < text.length && out.length < MAX_LINES) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    let line = text.slice(pos, nl);
    pos = nl + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '') break;
    const last = out[out.length - 1];
    if ((line[0] === ' ' || line[0] === '\t') && last !== undefined) {
      last.value += line[0] === '\t' ? ' ' + line.slice(1) : line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 0) {
      out.push({ name: '', middle: '', value: line });
      continue;
    }
    const name = line.slice(0, colon).replace(/[ \t]+$/, '');
    const skip = line[colon + 1] === ' ' || line[colon + 1] === '\t' ? 1 : 0;
    out.push({ name, middle: line.slice(name.length, colon + 1 + skip), value: line.slice(colon + 1 + skip) });
  }
  return out;
}

/** How SEARCH TEXT reads one header block: every line as name, middle and decoded value. */
export function headerSearchText(bytes: Buffer): string {
  return searchHeaderLines(bytes).map((l) => `${l.name}${l.middle}${decodeHeaderValue(l.value)}`).join('\n');
}

export type TransferEncoding = 'identity' | 'base64' | 'quoted-printable';

/**
 * The transfer encoding of a body from its Content-Transfer-Encoding value (null: field absent, 7bit),
 * or null when the value is not one Dovecot recognises (7bit, 8bit, binary, base64, quoted-printable,
 * optionally followed by ";"): such a body is not searched (RFC 2045 6.4).
 */
export function transferEncodingOf(value: string | null): TransferEncoding | null {
  if (value === null) return 'identity';
  const v = value.replace(/\([^()]*\)/g, ' ').trim();
  const m = /^([^\s()<>@,;:\\"/[\]?=]+)\s*(?:;.*)?$/s.exec(v);
  switch (m?.[1]?.toLowerCase()) {
    case '7bit': case '8bit': case 'binary': return 'identity';
    case 'base64': return 'base64';
    case 'quoted-printable': return 'quoted-printable';
    default: return null;
  }
}
