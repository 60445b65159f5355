// Serializes values in IMAP syntax (RFC 3501 section 4): quoted strings, literals, NIL and lists.
// Works on byte strings (one character per byte of the original header, see types.ts): 8-bit header
// bytes are passed on unchanged, as Dovecot does, since RFC 3501 leaves undecoded 8-bit header text
// undefined and re-encoding it (latin1 → UTF-8) would alter what the archive holds; clients (imapflow,
// Python imaplib, mutt) read literals as bytes. Trusts nothing about the text: CR, LF, NUL, 8-bit bytes
// and many quotes or backslashes force a literal, whose length counts those bytes. Hands on byte
// strings ready to splice into FETCH responses (written with the latin1 encoding).

/** Quotes and backslashes escaped in a quoted string; more than this many make a literal (as Dovecot). */
const MAX_ESCAPES = 4;

/** An IMAP string: quoted when it can be, else a literal ({n}CRLF followed by the bytes). */
export function istring(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000\r\n\u0080-\uffff]/.test(s)) return literal(s);
  const escapes = s.match(/["\\]/g)?.length ?? 0;
  if (escapes > MAX_ESCAPES) return literal(s);
  return `"${s.replace(/["\\]/g, (c) => '\\' + c)}"`;
}

function literal(s: string): string {
  return `{${Buffer.byteLength(s, 'latin1')}}\r\n${s}`;
}

/**
 * Text for people (subjects, display names), as Dovecot answers it: unchanged in quotes when it can be;
 * otherwise whitespace runs become one space, the ends are trimmed, and the result is a literal.
 */
export function humanNstring(s: string | null): string {
  if (s === null) return 'NIL';
  // eslint-disable-next-line no-control-regex
  if (!/[\u0000\r\n\t"\\\u0080-\uffff]|^ | {2}| $/.test(s)) return `"${s}"`;
  const clean = s.replace(/\u0000/g, '\u0080').replace(/[ \t\r\n]+/g, ' ').trim();
  return clean === '' ? '""' : literal(clean);
}

/** nstring: NIL for null. */
export function nstring(s: string | null | undefined): string {
  return s === null || s === undefined ? 'NIL' : istring(s);
}

/** A parenthesized list, or NIL when empty. */
export function nlist(items: string[]): string {
  return items.length === 0 ? 'NIL' : `(${items.join(' ')})`;
}
