// Parses RFC 5322 address lists (mailboxes, angle addresses with source routes, groups, comments,
// quoted strings) into the four-field address structures of an IMAP ENVELOPE.
// Trusts nothing: any text is accepted, input and output are bounded, nothing throws.
// Hands on ImapAddress records; group start/end markers use the RFC 3501 NIL conventions.

export interface ImapAddress {
  name: string | null;
  adl: string | null;
  mailbox: string | null;
  host: string | null;
}

const MAX_INPUT = 64 * 1024;
const MAX_ADDRESSES = 1000;
/** Host reported for an address without a domain (NIL would mean "group syntax"). */
export const MISSING_DOMAIN = 'MISSING_DOMAIN';
/** Route reported for an angle address that starts like a route but is none. */
export const INVALID_ROUTE = 'INVALID_ROUTE';
/** Mailbox reported for an address without a local part. */
export const MISSING_MAILBOX = 'MISSING_MAILBOX';
/** Host reported for an address that cannot be read. */
export const SYNTAX_ERROR = 'SYNTAX_ERROR';

interface Token { kind: 'atom' | 'quoted' | 'special' | 'comment'; text: string }

const SPECIALS = '<>@,;:';

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const ch = s[i] as string;
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      i++;
    } else if (ch === '(') {
      let depth = 0;
      let text = '';
      for (; i < s.length; i++) {
        const c = s[i] as string;
        if (c === '\\' && i + 1 < s.length) { text += s[++i]; continue; }
        if (c === '(') { if (depth++ > 0) text += c; continue; }
        if (c === ')') { if (--depth === 0) { i++; break; } text += c; continue; }
        text += c;
      }
      out.push({ kind: 'comment', text: text.trim() });
    } else if (ch === '"') {
      let text = '';
      for (i++; i < s.length; i++) {
        const c = s[i] as string;
        if (c === '\\' && i + 1 < s.length) { text += s[++i]; continue; }
        if (c === '"') { i++; break; }
        text += c;
      }
      out.push({ kind: 'quoted', text });
    } else if (SPECIALS.includes(ch)) {
      out.push({ kind: 'special', text: ch });
      i++;
    } else {
      let j = i;
      if (ch === '[') {
        const close = s.indexOf(']', i);
        j = close < 0 ? s.length : close + 1;
      } else {
        while (j < s.length && !' \t\r\n()"<>@,;:'.includes(s[j] as string)) j++;
        // A character that cannot start any token (a stray ")") is a one-character atom: every
        // branch must consume input, or the loop would push empty atoms until memory runs out.
        if (j === i) j = i + 1;
      }
      out.push({ kind: 'atom', text: s.slice(i, j) });
      i = j;
    }
  }
  return out;
}

function phrase(tokens: Token[]): string | null {
  const words = tokens.filter((t) => t.kind === 'atom' || t.kind === 'quoted').map((t) => t.text);
  const joined = words.join(' ');
  return joined.trim() === '' ? null : joined;
}

function word(tokens: Token[]): string {
  return tokens.filter((t) => t.kind !== 'comment').map((t) => t.text).join('');
}

function lastComment(tokens: Token[]): string | null {
  const c = tokens.filter((t) => t.kind === 'comment' && t.text !== '');
  return c.length === 0 ? null : (c[c.length - 1] as Token).text;
}

/** Splits addr-spec tokens at the last "@". */
function addrSpec(tokens: Token[], name: string | null, adl: string | null): ImapAddress | null {
  let at = -1;
  tokens.forEach((t, k) => { if (t.kind === 'special' && t.text === '@') at = k; });
  const local = word(at < 0 ? tokens : tokens.slice(0, at));
  const domain = at < 0 ? '' : word(tokens.slice(at + 1));
  if (local === '' && domain === '' && name === null) return null;
  return { name, adl, mailbox: local === '' ? MISSING_MAILBOX : local, host: domain === '' ? MISSING_DOMAIN : domain };
}

/** Every address of a header value, groups flattened with their start and end markers. */
export function parseAddressList(value: string): ImapAddress[] {
  const tokens = tokenize(value.length > MAX_INPUT ? value.slice(0, MAX_INPUT) : value);
  const out: ImapAddress[] = [];
  let i = 0;
  const isSpecial = (t: Token | undefined, chars: string): boolean => t !== undefined && t.kind === 'special' && chars.includes(t.text);

  const mailbox = (stop: string): void => {
    const start = i;
    while (i < tokens.length && !isSpecial(tokens[i], '<' + stop)) i++;
    const before = tokens.slice(start, i);
    if (isSpecial(tokens[i], '<')) {
      i++;
      const inner: Token[] = [];
      while (i < tokens.length && !isSpecial(tokens[i], '>')) inner.push(tokens[i++] as Token);
      i++;
      // Anything after the closing bracket up to the next separator is ignored (comments).
      while (i < tokens.length && !isSpecial(tokens[i], stop)) i++;
      let adl: string | null = null;
      let spec = inner;
      const colon = inner.findIndex((t) => isSpecial(t, ':'));
      if (colon < 0 && isSpecial(inner[0], '@')) {
        // A source route without its ":" (<@host>): nothing usable, reported as Dovecot does.
        out.push({ name: phrase(before), adl: INVALID_ROUTE, mailbox: MISSING_MAILBOX, host: MISSING_DOMAIN });
        return;
      }
      if (colon >= 0 && isSpecial(inner[0], '@')) {
        adl = word(inner.slice(0, colon));
        spec = inner.slice(colon + 1);
      } else if (colon >= 0) {
        // A group inside angle brackets (<Undisclosed-Recipient:;>): reported as Dovecot does.
        out.push({ name: phrase(before), adl: null, mailbox: word(inner.slice(0, colon)), host: SYNTAX_ERROR });
        return;
      }
      // Words separated by spaces before the "@" (<Undisclosed Recipients@host>) are no local part.
      const at = spec.findIndex((t) => isSpecial(t, '@'));
      const local = (at < 0 ? spec : spec.slice(0, at)).filter((t) => t.kind === 'atom' || t.kind === 'quoted');
      if (local.length > 1) {
        out.push({ name: phrase(before), adl, mailbox: (local[0] as Token).text, host: SYNTAX_ERROR });
        return;
      }
      const a = addrSpec(spec, phrase(before), adl);
      if (a) out.push(a);
      else out.push({ name: phrase(before), adl, mailbox: MISSING_MAILBOX, host: MISSING_DOMAIN });
    } else {
      const a = addrSpec(before, lastComment(before), null);
      if (a) out.push(a);
    }
  };

  while (i < tokens.length && out.length < MAX_ADDRESSES) {
    const before = i;
    if (isSpecial(tokens[i], ',;>')) { i++; continue; }
    // A group: display-name ":" [mailbox-list] ";"
    let j = i;
    while (j < tokens.length && !isSpecial(tokens[j], '<>,;:@')) j++;
    if (isSpecial(tokens[j], ':')) {
      out.push({ name: null, adl: null, mailbox: phrase(tokens.slice(i, j)) ?? '', host: null });
      i = j + 1;
      while (i < tokens.length && !isSpecial(tokens[i], ';') && out.length < MAX_ADDRESSES) {
        if (isSpecial(tokens[i], ',')) { i++; continue; }
        mailbox(',;');
      }
      i++;
      out.push({ name: null, adl: null, mailbox: null, host: null });
      continue;
    }
    mailbox(',');
    if (i === before) i++; // defensive: never spin on a token no rule consumes
  }
  return out;
}

/** Characters of an atom (RFC 5322 atext, 8-bit bytes included, as Dovecot's parser counts them). */
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\xff]$/;

/** A word as Dovecot writes it: as it is when it is all atext (dots too unless `dotIsSpecial`), else quoted with '"', '\' and "'" escaped. */
function maybeQuoted(s: string, dotIsSpecial: boolean): string {
  if ([...s].every((c) => ATEXT.test(c) || (!dotIsSpecial && c === '.'))) return s;
  return `"${s.replace(/["\\']/g, (c) => '\\' + c)}"`;
}

/**
 * An address list written back as Dovecot's message_address_write does: what SEARCH FROM/TO/CC/BCC
 * compare (comments dropped, a comment after a bare address as its name, every mailbox in angle
 * brackets, groups as "name: members;"). Names holding an encoded word are left unquoted so they decode.
 */
export function writeAddressList(list: readonly ImapAddress[]): string {
  let out = '';
  let first = true;
  let inGroup = false;
  for (const a of list) {
    if (first) first = false;
    else out += ', ';
    if (a.host === null) {
      if (!inGroup) {
        const name = a.mailbox ?? '';
        out += name === '' ? '""' : name.includes('=?') ? name : maybeQuoted(name, true);
        out += ': ';
        first = true;
      } else {
        if (out.endsWith(', ')) out = out.slice(0, -2);
        else if (out.endsWith(': ')) out = out.slice(0, -1);
        out += ';';
      }
      inGroup = !inGroup;
      continue;
    }
    const mailbox = a.mailbox ?? '';
    if (a.name !== null) out += a.name.includes('=?') ? a.name : maybeQuoted(a.name, true);
    if (a.adl !== null || mailbox !== '' || a.host !== '') {
      if (a.name !== null && a.name !== '') out += ' ';
      out += `<${a.adl !== null ? `${a.adl}:` : ''}${mailbox === '' ? '""' : maybeQuoted(mailbox, false)}${a.host !== '' ? `@${a.host}` : ''}>`;
    }
  }
  return out;
}
