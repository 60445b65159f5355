// IMAP output encodings: strings as quoted strings or literals, NIL, INTERNALDATE, and mailbox names
// in modified UTF-7 (RFC 3501 5.1.3), and SEARCH dates. Pure functions; callers hand in already-decided values.
import { parseDateZone } from '../../core/mime/date.ts';

/** A string as an IMAP quoted string when safe, else as a literal (non-ASCII, CR/LF, long). */
export function str(value: string): string {
  if (value.length < 1024 && /^[\x20-\x7e]*$/.test(value)) return `"${value.replace(/[\\"]/g, (c) => '\\' + c)}"`;
  return `{${Buffer.byteLength(value, 'utf8')}}\r\n${value}`;
}

export function nstr(value: string | null | undefined): string {
  return value === null || value === undefined ? 'NIL' : str(value);
}

/** Whether a string can be sent as an atom (flag names, section field names). */
export function isAtom(value: string): boolean {
  return /^[^\x00-\x20\x7f-\xff(){%*"\\\]]+$/.test(value);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 3501 date-time in UTC: "01-Dec-2026 02:47:37 +0000". */
export function internalDate(when: string | number): string {
  const d = new Date(when);
  const t = Number.isNaN(d.getTime()) ? new Date(0) : d;
  const p = (n: number): string => String(n).padStart(2, '0');
  return `"${p(t.getUTCDate())}-${MONTHS[t.getUTCMonth()]}-${t.getUTCFullYear()} ${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:${p(t.getUTCSeconds())} +0000"`;
}

/** SEARCH date argument ("1-Feb-1994") as a UTC day number, or null when malformed. */
export function parseSearchDate(text: string): number | null {
  const m = /^"?(\d{1,2})-([A-Za-z]{3})-(\d{4})"?$/.exec(text);
  if (!m) return null;
  const month = MONTHS.findIndex((x) => x.toLowerCase() === (m[2] as string).toLowerCase());
  const day = Number(m[1]);
  if (month < 0 || day < 1 || day > 31) return null;
  return Math.floor(Date.UTC(Number(m[3]), month, day) / 86400000);
}

export function dayNumber(when: string | number | null): number | null {
  if (when === null) return null;
  const t = new Date(when).getTime();
  return Number.isNaN(t) ? null : Math.floor(t / 86400000);
}

/**
 * SENTBEFORE/SENTON/SENTSINCE day of a message from its Date field lines: the calendar day in the zone
 * the date was written in (RFC 3501 disregards time and timezone), as Dovecot compares it; a missing
 * or unreadable Date counts as day 0 (1-Jan-1970), as in Dovecot.
 */
export function sentDay(dateLines: Buffer): number {
  const text = dateLines.toString('latin1');
  const colon = text.indexOf(':');
  if (colon < 0) return 0;
  const end = text.search(/\r?\n(?![ \t])/);
  const value = text.slice(colon + 1, end < 0 ? undefined : end).replace(/\r?\n/g, '');
  const parsed = parseDateZone(value);
  if (!parsed) return 0;
  return Math.floor((Date.parse(parsed.iso) + parsed.offsetMinutes * 60_000) / 86400000);
}

/** Modified UTF-7 of a mailbox name. */
export function encodeMailboxName(name: string): string {
  let out = '';
  let pending = '';
  const flush = (): void => {
    if (pending === '') return;
    const utf16 = Buffer.alloc(pending.length * 2);
    for (let i = 0; i < pending.length; i++) utf16.writeUInt16BE(pending.charCodeAt(i), i * 2);
    out += '&' + utf16.toString('base64').replace(/=+$/, '').replace(/\//g, ',') + '-';
    pending = '';
  };
  for (const ch of name) {
    const code = ch.codePointAt(0) as number;
    if (code >= 0x20 && code <= 0x7e) {
      flush();
      out += ch === '&' ? '&-' : ch;
    } else {
      pending += ch;
    }
  }
  flush();
  return out;
}

/** A mailbox name from modified UTF-7; null when the encoding is broken. */
export function decodeMailboxName(name: string): string | null {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const ch = name[i] as string;
    if (ch !== '&') {
      if (ch.charCodeAt(0) > 0x7e || ch.charCodeAt(0) < 0x20) return null;
      out += ch;
      continue;
    }
    const end = name.indexOf('-', i);
    if (end < 0) return null;
    const b64 = name.slice(i + 1, end);
    i = end;
    if (b64 === '') {
      out += '&';
      continue;
    }
    if (!/^[A-Za-z0-9+,]+$/.test(b64)) return null;
    const bytes = Buffer.from(b64.replace(/,/g, '/'), 'base64');
    if (bytes.length % 2 !== 0) return null;
    for (let j = 0; j < bytes.length; j += 2) out += String.fromCharCode(bytes.readUInt16BE(j));
  }
  return out;
}
