// Retention rules: parse durations, validate policies, and compute an entry's retainUntil/purgeAfter
// from the rules that match it ("longest minimum wins"; the longest maximum too, and a matching rule
// without a maximum means no automatic purge). Pure functions; the store calls computeRetention at
// commit time so no caller can archive without them. Trusts nothing in a policy it did not validate.
import { PosternError } from '../errors.ts';
import { GROUP_NAME, USER_NAME, addressKey } from '../storage/types.ts';
import { POLICY_NAME, type Direction, type EntryRetention, type PolicyMatch, type RetentionPolicy } from './types.ts';

const DURATION = /^(\d{1,4})([dwmy])$/;
/** "forever" as an instant: later than any real date, still a valid ISO string that sorts last. */
export const FOREVER = '9999-12-31T23:59:59.999Z';

/** Adds a duration ("30d", "6w", "18m", "7y", "forever") to an instant, in UTC calendar units. */
export function addDuration(from: Date, duration: string): Date {
  if (duration === 'forever') return new Date(FOREVER);
  const m = DURATION.exec(duration);
  if (!m) throw new PosternError('INVALID_INPUT', `Duration "${duration}" must be a number and a unit d, w, m or y (e.g. "30d", "7y"), or "forever"`);
  const n = Number(m[1]);
  const d = new Date(from.getTime());
  switch (m[2]) {
    case 'd': d.setUTCDate(d.getUTCDate() + n); break;
    case 'w': d.setUTCDate(d.getUTCDate() + 7 * n); break;
    case 'm': d.setUTCMonth(d.getUTCMonth() + n); break;
    default: d.setUTCFullYear(d.getUTCFullYear() + n);
  }
  if (d.getTime() > Date.parse(FOREVER)) return new Date(FOREVER);
  return d;
}

/** A rough length for comparing durations (only used to check maximum ≥ minimum). */
function approximateDays(duration: string): number {
  if (duration === 'forever') return Infinity;
  const m = DURATION.exec(duration);
  if (!m) return NaN;
  return Number(m[1]) * ({ d: 1, w: 7, m: 31, y: 366 } as const)[m[2] as 'd' | 'w' | 'm' | 'y'];
}

const list = (v: unknown, what: string, valid: (s: string) => boolean): string[] | undefined => {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0 || v.length > 1000) throw new PosternError('INVALID_INPUT', `Policy ${what} must be a non-empty list of at most 1000`);
  for (const s of v) if (typeof s !== 'string' || !valid(s)) throw new PosternError('INVALID_INPUT', `Policy ${what} value "${String(s)}" is not valid`);
  return v as string[];
};

/** Checks a policy from outside (API, config) and returns it normalised (addresses and domains case-folded). */
export function validatePolicy(p: RetentionPolicy): RetentionPolicy {
  if (!POLICY_NAME.test(p.name)) throw new PosternError('INVALID_INPUT', `Policy name "${p.name}" must match ${POLICY_NAME.source}`);
  addDuration(new Date(0), p.minimum);
  if (p.maximum !== undefined) {
    if (p.maximum === 'forever') throw new PosternError('INVALID_INPUT', `Policy "${p.name}": leave maximum out instead of "forever"`);
    addDuration(new Date(0), p.maximum);
    if (approximateDays(p.maximum) < approximateDays(p.minimum)) {
      throw new PosternError('INVALID_INPUT', `Policy "${p.name}": maximum "${p.maximum}" is shorter than minimum "${p.minimum}"`);
    }
  }
  const m = p.match;
  const match: PolicyMatch = {};
  const users = list(m.users, 'users', (s) => USER_NAME.test(s));
  const groups = list(m.groups, 'groups', (s) => GROUP_NAME.test(s.toLowerCase()));
  const addresses = list(m.addresses, 'addresses', (s) => /^[^\s@<>]+@[^\s@<>]+$/.test(s));
  const domains = list(m.domains, 'domains', (s) => /^@?[^\s@<>]+$/.test(s));
  const folders = list(m.folders, 'folders', (s) => s !== '' && !s.includes('\u0000'));
  if (users) match.users = users;
  if (groups) match.groups = groups.map((g) => g.toLowerCase());
  if (addresses) match.addresses = addresses.map(addressKey);
  if (domains) match.domains = domains.map((d) => d.replace(/^@/, '').toLowerCase());
  if (folders) match.folders = folders;
  if (m.direction !== undefined) {
    if (m.direction !== 'received' && m.direction !== 'sent') throw new PosternError('INVALID_INPUT', `Policy direction "${String(m.direction)}" must be "received" or "sent"`);
    match.direction = m.direction;
  }
  return { ...p, match };
}

/** What a rule is matched against: one entry being archived. */
export interface RetentionSubject {
  user: string;
  groups: string[];
  /** The owner's own addresses (case-folded keys). */
  ownAddresses: string[];
  /** Every participant address of the message (case-folded keys), with their forms without a sub-address. */
  participants: string[];
  folder: string;
  direction: Direction;
}

export function policyMatches(match: PolicyMatch, s: RetentionSubject): boolean {
  if (match.users && !match.users.includes(s.user)) return false;
  if (match.groups && !match.groups.some((g) => s.groups.includes(g))) return false;
  if (match.folders && !match.folders.includes(s.folder)) return false;
  if (match.direction && match.direction !== s.direction) return false;
  const all = [...s.ownAddresses, ...s.participants];
  if (match.addresses && !match.addresses.some((a) => all.includes(a))) return false;
  if (match.domains && !match.domains.some((d) => all.some((a) => a.endsWith(`@${d}`)))) return false;
  return true;
}

/**
 * Retention of one entry archived at `archivedAt`: the latest minimum of the matching rules, and the
 * latest maximum (none when any matching rule has no maximum), never before retainUntil. Explicit
 * values a caller passed with the commit count as one more rule.
 */
export function computeRetention(
  policies: readonly RetentionPolicy[], subject: RetentionSubject, archivedAt: Date, explicit?: Partial<EntryRetention>,
): EntryRetention {
  let retainUntil: string | null = explicit?.retainUntil ?? null;
  let purgeAfter: string | null = explicit?.purgeAfter ?? null;
  let unbounded = false;
  for (const p of policies) {
    if (!policyMatches(p.match, subject)) continue;
    const min = addDuration(archivedAt, p.minimum).toISOString();
    if (retainUntil === null || min > retainUntil) retainUntil = min;
    if (p.maximum === undefined) unbounded = true;
    else {
      const max = addDuration(archivedAt, p.maximum).toISOString();
      if (purgeAfter === null || max > purgeAfter) purgeAfter = max;
    }
  }
  if (unbounded) purgeAfter = null;
  if (purgeAfter !== null && retainUntil !== null && purgeAfter < retainUntil) purgeAfter = retainUntil;
  return { retainUntil, purgeAfter };
}

/**
 * An archived entry's retention after a later capture asked for `wanted`: retainUntil only moves later;
 * purgeAfter only moves later, and an entry never purged (purgeAfter null) stays so; a wanted purgeAfter
 * of null with a retainUntil means "no maximum" and lifts the purge date. Never purged before retainUntil.
 */
export function extendOnly(current: EntryRetention | null, wanted: EntryRetention): EntryRetention {
  const later = (a: string | null, b: string | null): string | null => (a === null ? b : b === null || a > b ? a : b);
  const retainUntil = later(current?.retainUntil ?? null, wanted.retainUntil);
  let purgeAfter: string | null = current === null || current.purgeAfter === null ? null
    : wanted.purgeAfter === null ? (wanted.retainUntil !== null ? null : current.purgeAfter)
      : later(current.purgeAfter, wanted.purgeAfter);
  if (purgeAfter !== null && retainUntil !== null && purgeAfter < retainUntil) purgeAfter = retainUntil;
  return { retainUntil, purgeAfter };
}

/** An ISO instant from outside, normalised; INVALID_INPUT otherwise. */
export function isoInstant(value: string, what: string, options: { endOfDay?: boolean } = {}): string {
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(t)) throw new PosternError('INVALID_INPUT', `${what} "${value}" is not an ISO date`);
  // A date alone, as the inclusive end of a range, covers that whole day (UTC).
  const wholeDay = options.endOfDay === true && /^\d{4}-\d{2}-\d{2}$/.test(value);
  return new Date(wholeDay ? t + 86_400_000 - 1 : t).toISOString();
}
