// Serializes values in IMAP syntax (RFC 3501 section 4): quoted strings, literals, NIL and lists.
// Trusts nothing about the text: CR, LF, NUL, 8-bit characters and many quotes or backslashes force a
// literal, whose length counts the UTF-8 bytes the server will write. Hands on strings ready to splice
// into FETCH responses.

/** Quotes and backslashes escaped in a quoted string; more than this many make a literal (as Dovecot). */
const MAX_ESCAPES = 4;

/** An IMAP string: quoted when it can be, else a literal ({n}CRLF followed by the UTF-8 bytes). */
export function istring(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000\r\n\u0080-\uffff]/.test(s)) return literal(s);
  const escapes = s.match(/["\\]/g)?.length ?? 0;
  if (escapes > MAX_ESCAPES) return literal(s);
  return `"${s.replace(/["\\]/g, (c) => '\\' + c)}"`;
}

function literal(s: string): string {
  return `{${Buffer.byteLength(s, 'utf8')}}\r\n${s}`;
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
