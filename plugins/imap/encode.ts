// IMAP output encodings: strings as quoted strings or literals, NIL, INTERNALDATE, and mailbox names
// in modified UTF-7 (RFC 3501 5.1.3), and SEARCH dates. Pure functions; callers hand in already-decided values.

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
 * SENTBEFORE/SENTON/SENTSINCE day of a message from its Date field lines: the calendar day as written
 * (RFC 3501 disregards time and timezone), read as Dovecot's message_date_parse reads the first Date
 * field (sentDateDay); a missing or unreadable Date counts as day 0 (1-Jan-1970), as in Dovecot.
 */
export function sentDay(dateLines: Buffer): number {
  const text = dateLines.toString('latin1');
  const colon = text.indexOf(':');
  if (colon < 0) return 0;
  const end = text.search(/\r?\n(?![ \t])/);
  return sentDateDay(text.slice(colon + 1, end < 0 ? undefined : end)) ?? 0;
}

const ATEXT = /[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\xff]/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The day (UTC day number of the date as written) of a Date value, read exactly as Dovecot 2.3 reads it:
 * [weekday ","] day month [yy]yy hh(:|.)mm[(:|.)ss] [zone], tokens being RFC 5322 atoms with comments and
 * whitespace between them skipped; whatever follows the zone is ignored, an unknown zone is UTC, a
 * two-digit year below 70 is 20xx, and a date or time out of range makes the value unreadable (null).
 */
export function sentDateDay(value: string): number | null {
  const s = value.slice(0, 1024);
  let pos = 0;
  const skip = (): number => {
    while (pos < s.length) {
      const c = s[pos];
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n') { pos++; continue; }
      if (c !== '(') break;
      let depth = 0;
      for (; pos < s.length; pos++) {
        const d = s[pos];
        if (d === '\\') pos++;
        else if (d === '(') depth++;
        else if (d === ')' && --depth === 0) break;
      }
      if (pos >= s.length) return -1;
      pos++;
    }
    return pos < s.length ? 1 : 0;
  };
  /** The next atom: [ret, text], ret -1 on an error, 0 at the end (text ''), else 1. */
  const next = (): [number, string] => {
    if (pos >= s.length) return [0, ''];
    if (!ATEXT.test(s[pos] as string)) return [-1, ''];
    const from = pos;
    while (pos < s.length && ATEXT.test(s[pos] as string)) pos++;
    const word = s.slice(from, pos);
    return [skip() < 0 ? -1 : 1, word];
  };
  const digits = (w: string): boolean => /^\d+$/.test(w);
  const timeSep = (): boolean => s[pos] === ':' || s[pos] === '.';
  skip();
  let [ret, tok] = next();
  if (ret <= 0) return null;
  if (tok.length === 3) {
    if (s[pos] !== ',') return null;
    pos++;
    skip();
    [ret, tok] = next();
    if (ret <= 0) return null;
  }
  if (tok.length < 1 || tok.length > 2 || !digits(tok)) return null;
  const day = Number(tok);
  [ret, tok] = next();
  if (ret <= 0 || tok.length < 3) return null;
  const month = MONTHS.findIndex((m) => m.toLowerCase() === tok.slice(0, 3).toLowerCase());
  if (month < 0) return null;
  [ret, tok] = next();
  if (ret <= 0 || (tok.length !== 2 && tok.length !== 4) || !digits(tok)) return null;
  let year = Number(tok);
  if (tok.length === 2) year += year < 70 ? 2000 : 1900;
  else if (year < 1900) return null;
  [ret, tok] = next();
  if (ret <= 0 || tok.length < 1 || tok.length > 2 || !digits(tok)) return null;
  const hour = Number(tok);
  if (!timeSep()) return null;
  pos++;
  skip();
  [ret, tok] = next();
  if (ret < 0 || tok.length !== 2 || !digits(tok)) return null;
  const minute = Number(tok);
  let second = 0;
  if (pos < s.length && timeSep()) {
    pos++;
    skip();
    [ret, tok] = next();
    if (ret <= 0 || tok.length !== 2 || !digits(tok)) return null;
    second = Number(tok);
  }
  if (next()[0] < 0) return null;
  const leap = month === 1 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 1 : 0;
  if (day < 1 || day > (DAYS_IN_MONTH[month] as number) + leap || hour > 23 || minute > 59 || second > 60) return null;
  return Math.floor(Date.UTC(year, month, day) / 86400000);
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
