// Parses RFC 5322 dates (current and obsolete syntax, section 3.3 and 4.3) into ISO 8601 UTC strings, and strips RFC 5322 comments.
// Trusts nothing about the input: any string is accepted, only its first 512 characters are read for a date, and no function throws.
// Hands on an ISO 8601 string or null (parseDate, parseDateZone with the written zone) and comment-free text (stripComments) to header summaries and envelope parsing.

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH_FULL = [
  'january', 'february', 'march', 'april', 'may', 'june',
  'july', 'august', 'september', 'october', 'november', 'december',
];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DAY_FULL = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

/** Offsets in minutes east of UTC. */
const NAMED_ZONES: Record<string, number> = {
  ut: 0, utc: 0, gmt: 0, z: 0,
  est: -300, edt: -240,
  cst: -360, cdt: -300,
  mst: -420, mdt: -360,
  pst: -480, pdt: -420,
};

/**
 * Replaces (possibly nested) RFC 5322 comments by a space, leaving quoted strings and quoted pairs
 * intact; an unclosed comment runs to the end.
 */
export function stripComments(s: string): string {
  let out = '';
  let depth = 0;
  let inQuote = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\') {
      if (depth === 0) out += s.slice(i, i + 2);
      i++;
      continue;
    }
    if (inQuote) {
      out += ch;
      if (ch === '"') inQuote = false;
      continue;
    }
    if (depth === 0 && ch === '"') {
      inQuote = true;
      out += ch;
    } else if (ch === '(') {
      if (depth === 0) out += ' ';
      depth++;
    } else if (ch === ')' && depth > 0) {
      depth--;
    } else if (depth === 0) {
      out += ch;
    }
  }
  return out;
}

function monthIndex(token: string): number {
  const t = token.toLowerCase();
  let idx = MONTHS.indexOf(t);
  if (idx === -1) idx = MONTH_FULL.indexOf(t);
  if (idx === -1 && t === 'sept') idx = 8;
  return idx;
}

function isDayName(token: string): boolean {
  const t = token.toLowerCase();
  return DAYS.includes(t) || DAY_FULL.includes(t);
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

const ISO_FALLBACK = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/** Parses an RFC 5322 date (current or obsolete syntax) into an ISO 8601 UTC string, or null. */
export function parseDate(value: string): string | null {
  try {
    const input = String(value).slice(0, 512);
    const own = parseRfc5322Date(input);
    if (own !== null) return own.iso;
    const trimmed = input.trim();
    if (ISO_FALLBACK.test(trimmed)) {
      const ms = Date.parse(trimmed.replace(' ', 'T'));
      if (Number.isFinite(ms)) return new Date(ms).toISOString();
    }
    return null;
  } catch {
    return null;
  }
}

/**
 * An RFC 5322 date with the zone it was written in (minutes east of UTC; 0 when absent or unknown),
 * for "the date in the sender's time zone" (IMAP SENTON/SENTBEFORE/SENTSINCE); null when unreadable.
 */
export function parseDateZone(value: string): { iso: string; offsetMinutes: number } | null {
  try {
    return parseRfc5322Date(String(value).slice(0, 512));
  } catch {
    return null;
  }
}

function parseRfc5322Date(input: string): { iso: string; offsetMinutes: number } | null {
  const tokens: string[] = [];
  for (const tok of stripComments(input).split(/[\s,]+/)) {
    if (tok === '') continue;
    // obsolete/common "1-Jan-2024" form
    const dashed = /^(\d{1,2})-([A-Za-z]+)-(\d{2,4})$/.exec(tok);
    if (dashed) {
      tokens.push(dashed[1] ?? '', dashed[2] ?? '', dashed[3] ?? '');
    } else {
      tokens.push(tok);
    }
  }

  let day: number | null = null;
  let month: number | null = null;
  let year: number | null = null;
  let yearDigits = 0;
  let hour: number | null = null;
  let minute = 0;
  let second = 0;
  let offset: number | null = null;

  for (const tok of tokens) {
    const time = /^(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d+)?)?(?:([+-])(\d{2}):?(\d{2})|(Z))?$/i.exec(tok);
    if (time) {
      if (hour !== null) return null;
      hour = Number(time[1]);
      minute = Number(time[2]);
      second = time[3] === undefined ? 0 : Number(time[3]);
      if (time[4] !== undefined) {
        const mm = Number(time[6]);
        if (mm > 59) return null;
        offset = (time[4] === '-' ? -1 : 1) * (Number(time[5]) * 60 + mm);
      } else if (time[7] !== undefined) {
        offset = 0;
      }
      continue;
    }
    const numericZone = /^([+-])(\d{2}):?(\d{2})$/.exec(tok);
    if (numericZone) {
      if (offset !== null) continue;
      const hh = Number(numericZone[2]);
      const mm = Number(numericZone[3]);
      if (mm > 59) return null;
      offset = (numericZone[1] === '-' ? -1 : 1) * (hh * 60 + mm);
      continue;
    }
    if (/^\d+$/.test(tok)) {
      if (tok.length <= 2 && day === null) {
        day = Number(tok);
      } else if (year === null && tok.length >= 2 && tok.length <= 4) {
        year = Number(tok);
        yearDigits = tok.length;
      } else {
        return null;
      }
      continue;
    }
    if (/^[A-Za-z]+\.?$/.test(tok)) {
      const word = tok.replace(/\.$/, '');
      const m = monthIndex(word);
      if (m !== -1) {
        if (month !== null) return null;
        month = m;
        continue;
      }
      if (isDayName(word)) continue;
      const lower = word.toLowerCase();
      const named = NAMED_ZONES[lower];
      if (named !== undefined) {
        offset ??= named;
        continue;
      }
      // Military single letters (except J) are ambiguous per RFC 5322 4.3: treat as +0000.
      if (lower.length === 1 && lower !== 'j') {
        offset ??= 0;
        continue;
      }
      // Any other word (e.g. an unofficial zone name after a numeric offset) is ignored.
      continue;
    }
    // "GMT+1", "UTC-05": no RFC 5322 zone, and POSIX reads the sign the other way round; read as +0000, as Dovecot does.
    if (/^(?:gmt|utc?)[+-]\d{1,4}$/i.test(tok)) {
      offset ??= 0;
      continue;
    }
    return null;
  }

  if (day === null || month === null || year === null || hour === null) return null;
  if (yearDigits === 2) year += year < 50 ? 2000 : 1900;
  else if (yearDigits === 3) year += 1900;
  if (day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 60) return null;
  if (second === 60) second = 59;
  const ms = Date.UTC(year, month, day, hour, minute, second) - (offset ?? 0) * 60_000;
  if (!Number.isFinite(ms)) return null;
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return null;
  return { iso: d.toISOString(), offsetMinutes: offset ?? 0 };
}
