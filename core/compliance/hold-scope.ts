// Legal-hold scopes: validation of a scope from outside, the header search expression, and whether a
// hold covers one archive entry. Pure functions over the stored message record; the store evaluates
// them inside deleteEntries/purge so no caller can skip them.
//
// Search expression syntax: whitespace-separated terms, all of which must match (AND). A term is
// `field:value` or a bare `value`; a value may be double-quoted to contain spaces ("field:\"a b\"").
// Fields: from, to, cc, subject, message-id, participant (any of from/to/cc and envelope addresses).
// A bare value matches from, to, cc or subject. Matching is a case-insensitive substring test in which
// any run of whitespace (spaces, tabs, folded line ends) counts as one space, in values and headers.
// Example: `from:@example.com subject:"contract 42"`.
//
// A query that uses the search query language's operators or fields (OR, NOT, "-", parentheses,
// before:/after:/on:, larger:/smaller:, user:, a trailing "*") is read in that language instead
// (core/search/QUERY.md, evaluated by hold-language.ts; body, attachment, Bcc and folder terms are
// refused: the stored record cannot decide them). Queries in the original syntax keep their meaning.
//
// Addresses compare as the router compares them (core/router/address-rules.ts): a hold on
// dave@example.com covers dave+legal@example.com when "+" is the sub-address separator. Local parts
// always compare case-insensitively here, whatever routing.localPartCase says: a hold errs on keeping.
import { PosternError } from '../errors.ts';
import { USER_NAME, addressKey, type MessageRecord } from '../storage/types.ts';
import { extractAddresses } from '../mime/addresses.ts';
import { DEFAULT_ADDRESS_RULES, withoutSubaddress, type AddressRules } from '../router/address-rules.ts';
import { HOLD_NAME, type HoldScope, type NewHold } from './types.ts';
import { isoInstant } from './retention-rules.ts';
import { parseQuery, type QueryNode } from '../search/query.ts';
import { checkHoldLanguage, languageCovers, usesSearchLanguage } from './hold-language.ts';

export const QUERY_FIELDS = ['from', 'to', 'cc', 'subject', 'message-id', 'participant'] as const;
export type QueryField = (typeof QUERY_FIELDS)[number];
export interface QueryTerm { field: QueryField | null; value: string }

const MAX_QUERY = 1000;
const MAX_TERMS = 32;

/** Every run of whitespace as one space: a tab or a folded line end in a header equals a space. */
function collapse(s: string): string {
  return s.replace(/\s+/gu, ' ');
}

/** Parses a search expression into terms; INVALID_INPUT names the offending part. */
export function parseHoldQuery(text: string): QueryTerm[] {
  if (text.length > MAX_QUERY) throw new PosternError('INVALID_INPUT', `Hold query is longer than ${MAX_QUERY} characters`);
  const terms: QueryTerm[] = [];
  const re = /\s*(?:([A-Za-z-]+):)?(?:"([^"]*)"|([^\s"]+))\s*/y;
  let pos = 0;
  const src = text.trim();
  while (pos < src.length) {
    re.lastIndex = pos;
    const m = re.exec(src);
    if (!m || re.lastIndex === pos) throw new PosternError('INVALID_INPUT', `Hold query cannot be parsed at "${src.slice(pos, pos + 20)}" (unbalanced quote?)`);
    pos = re.lastIndex;
    const field = m[1]?.toLowerCase() ?? null;
    if (field !== null && !(QUERY_FIELDS as readonly string[]).includes(field)) {
      throw new PosternError('INVALID_INPUT', `Hold query field "${field}" is unknown; use ${QUERY_FIELDS.join(', ')}`);
    }
    const value = collapse((m[2] ?? m[3] ?? '').toLowerCase());
    if (value.trim() === '') throw new PosternError('INVALID_INPUT', `Hold query term "${m[0].trim()}" has an empty value`);
    terms.push({ field: field as QueryField | null, value });
  }
  if (terms.length === 0) throw new PosternError('INVALID_INPUT', 'Hold query is empty');
  if (terms.length > MAX_TERMS) throw new PosternError('INVALID_INPUT', `Hold query has more than ${MAX_TERMS} terms`);
  return terms;
}

/** Checks and normalises a new hold (name, scope); at least one scope criterion is required. */
export function validateNewHold(h: NewHold): NewHold {
  if (!HOLD_NAME.test(h.name)) throw new PosternError('INVALID_INPUT', `Hold name "${h.name}" must match ${HOLD_NAME.source}`);
  if ((h.description ?? '').length > 2000) throw new PosternError('INVALID_INPUT', 'Hold description is longer than 2000 characters');
  return { ...h, scope: validateHoldScope(h.scope) };
}

export function validateHoldScope(s: HoldScope): HoldScope {
  const out: HoldScope = {};
  const bounded = (v: string[], what: string): void => {
    if (v.length === 0 || v.length > 1000) throw new PosternError('INVALID_INPUT', `Hold ${what} must list 1 to 1000 values`);
  };
  if (s.users !== undefined) {
    bounded(s.users, 'users');
    for (const u of s.users) if (!USER_NAME.test(u)) throw new PosternError('INVALID_INPUT', `Hold user "${u}" is not a valid user name`);
    out.users = [...new Set(s.users)];
  }
  if (s.addresses !== undefined) {
    bounded(s.addresses, 'addresses');
    for (const a of s.addresses) if (!/^[^\s@<>]+@[^\s@<>]+$/.test(a)) throw new PosternError('INVALID_INPUT', `Hold address "${a}" is not an address`);
    out.addresses = [...new Set(s.addresses.map(addressKey))];
  }
  if (s.dateRange !== undefined) {
    const { from, to, field } = s.dateRange;
    if (field !== 'date' && field !== 'archivedAt') throw new PosternError('INVALID_INPUT', `Hold date field "${String(field)}" must be "date" or "archivedAt"`);
    if (from === undefined && to === undefined) throw new PosternError('INVALID_INPUT', 'Hold date range needs "from", "to" or both');
    const range: NonNullable<HoldScope['dateRange']> = { field };
    if (from !== undefined) range.from = isoInstant(from, 'Hold date range "from"');
    if (to !== undefined) range.to = isoInstant(to, 'Hold date range "to"', { endOfDay: true });
    if (range.from !== undefined && range.to !== undefined && range.from > range.to) throw new PosternError('INVALID_INPUT', 'Hold date range "from" is after "to"');
    out.dateRange = range;
  }
  if (s.query !== undefined) {
    parseHoldExpression(s.query);
    out.query = s.query.trim();
  }
  if (Object.keys(out).length === 0) throw new PosternError('INVALID_INPUT', 'A hold needs a scope: users, addresses, dateRange and/or query (use hold-everything for all mail)');
  return out;
}

/** Anything address-like, for header text the address parser finds no mailbox in (a hold errs on keeping). */
const LOOSE_ADDR = /[^\s<>,;:"()[\]]+@[^\s<>,;:"()[\]]+/g;

/**
 * Every participant address of a message, case-folded: summary From/To/Cc (parsed as the router
 * parses address lists, plus anything address-like) and all capture envelopes.
 */
export function participantsOf(m: MessageRecord): string[] {
  const set = new Set<string>();
  for (const field of [m.from, m.to, m.cc]) {
    for (const a of extractAddresses(field)) set.add(addressKey(a));
    for (const a of field.match(LOOSE_ADDR) ?? []) set.add(addressKey(a));
  }
  for (const c of m.captures) {
    if (c.mailFrom) set.add(addressKey(c.mailFrom));
    for (const r of c.rcptTo) set.add(addressKey(r));
    for (const r of c.journal?.recipients ?? []) set.add(addressKey(r.address));
    if (c.journal?.sender) set.add(addressKey(c.journal.sender));
  }
  return [...set];
}

/**
 * The participants with, after them, the addresses they route to without their sub-address
 * ("dave+legal@x" adds "dave@x"), so a scope naming an address covers its sub-addresses as routing does.
 */
export function participantKeysOf(m: MessageRecord, rules: AddressRules = DEFAULT_ADDRESS_RULES): string[] {
  const own = participantsOf(m);
  const set = new Set(own);
  for (const p of own) {
    const base = withoutSubaddress(p, rules.subaddressSeparator);
    if (base !== null) set.add(base);
  }
  return [...set];
}

function termMatches(t: QueryTerm, m: MessageRecord, participants: string[]): boolean {
  const has = (s: string | null): boolean => collapse((s ?? '').toLowerCase()).includes(t.value);
  switch (t.field) {
    case 'from': return has(m.from);
    case 'to': return has(m.to);
    case 'cc': return has(m.cc);
    case 'subject': return has(m.subject);
    case 'message-id': return has(m.messageIdHeader);
    case 'participant': return participants.some((p) => p.includes(t.value));
    default: return has(m.from) || has(m.to) || has(m.cc) || has(m.subject);
  }
}

type HoldQuery = { terms: QueryTerm[] } | { language: QueryNode };

/** A hold query in either syntax: the original one unless the text uses the search language's operators. */
export function parseHoldExpression(text: string): HoldQuery {
  const language = (): HoldQuery => {
    const node = parseQuery(text);
    checkHoldLanguage(node);
    return { language: node };
  };
  if (!usesSearchLanguage(text)) {
    try {
      return { terms: parseHoldQuery(text) };
    } catch (err) {
      // Not the original syntax: the original error unless the search language reads it.
      try {
        return language();
      } catch {
        throw err;
      }
    }
  }
  return language();
}

const parsed = new Map<string, HoldQuery>();
/** Parsed queries of stored holds, cached (bounded: holds are few; the cache is cleared when it fills). */
function parsedQuery(text: string): HoldQuery {
  let q = parsed.get(text);
  if (!q) {
    if (parsed.size >= 1024) parsed.clear();
    q = parseHoldExpression(text);
    parsed.set(text, q);
  }
  return q;
}

/** Whether a hold's scope covers an entry of `user` pointing at message `m`, under the router's address rules. */
export function holdCovers(scope: HoldScope, user: string, m: MessageRecord, rules: AddressRules = DEFAULT_ADDRESS_RULES): boolean {
  if (scope.users && !scope.users.includes(user)) return false;
  let participants: string[] | null = null;
  if (scope.addresses) {
    participants = participantKeysOf(m, rules);
    if (!scope.addresses.some((a) => participants?.includes(a))) return false;
  }
  if (scope.dateRange) {
    const { from, to, field } = scope.dateRange;
    const raw = field === 'date' ? m.date : m.archivedAt;
    // A message without a parsable Date header is covered: a hold errs on the side of keeping.
    const t = raw === null ? NaN : Date.parse(raw);
    if (!Number.isNaN(t)) {
      if (from !== undefined && t < Date.parse(from)) return false;
      if (to !== undefined && t > Date.parse(to)) return false;
    }
  }
  if (scope.query) {
    participants ??= participantKeysOf(m, rules);
    const p = participants;
    const q = parsedQuery(scope.query);
    if ('terms' in q ? !q.terms.every((t) => termMatches(t, m, p)) : !languageCovers(q.language, user, m, p)) return false;
  }
  return true;
}
