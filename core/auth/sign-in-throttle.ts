// One throttle for every sign-in path (IMAP LOGIN/AUTHENTICATE, admin API HTTP Basic and bad tokens,
// any later web sign-in), per account and per source address. An attempt reserves its slot before the
// password is checked, counted as a failure until the caller reports a success, so N concurrent
// connections queue behind each other instead of multiplying the rate. Each key lets `burst` attempts
// (`addressBurst` for addresses) through at once; after that, attempts are spaced by baseDelayMs,
// doubling per further failure up to maxDelayMs. An attempt whose slot lies more than maxWaitMs ahead is
// refused without a password check (throttled), with the time until a slot frees. Failures are
// forgotten windowSeconds after the last one; the table is bounded (least recently tried keys dropped
// first). An IPv6 client counts by its /64. Trusts its callers to pass a stable account key (the
// lower-case user name) and the client's address; keeps no password. Hands callers an admission (wait, then verify, then report) or a refusal.
import { isIPv6 } from 'node:net';
import type { Config } from '../config/schema.ts';

export type SignInSettings = Config['signIn'];

interface Entry {
  /** Failures (and attempts not yet reported) since the last success or quiet window. */
  strikes: number;
  /** When the most recently admitted attempt was allowed to start. */
  slotAt: number;
  /** The last failure (or when the entry was made). */
  lastAt: number;
  /** A throttled refusal was already reported since the last admitted attempt. */
  noted: boolean;
}

/** An admitted attempt: wait `waitMs`, check the password, then report exactly one outcome. */
export interface SignInTicket {
  readonly waitMs: number;
  succeeded(): void;
  failed(): void;
}

export type Admission =
  | { throttled: false; ticket: SignInTicket }
  /** Refused without a check; `firstOfBurst` is true once per throttled burst (audit it then, not per attempt). */
  | { throttled: true; retryAfterMs: number; firstOfBurst: boolean };

export class SignInThrottle {
  private readonly table = new Map<string, Entry>();

  constructor(private readonly s: SignInSettings, private readonly now: () => number = Date.now) {}

  get settings(): Readonly<SignInSettings> {
    return this.s;
  }

  /**
   * Reserve a slot for one attempt at `account` (null when the client named none, e.g. a bad bearer
   * token) from `address`. Synchronous, so concurrent attempts are ordered here.
   */
  admit(account: string | null, address: string): Admission {
    const now = this.now();
    const keys: Array<[string, number]> = [[`a:${addressKey(address)}`, this.s.addressBurst]];
    if (account !== null) keys.push([`u:${account}`, this.s.burst]);
    if (this.s.baseDelayMs === 0) return { throttled: false, ticket: this.ticket(0, [], now) };
    const plans = keys.map(([key, burst]) => {
      const entry = this.live(key, now);
      const strikes = (entry?.strikes ?? 0) + 1;
      const earliest = !entry || strikes <= burst ? now : Math.max(now, entry.slotAt + this.delay(strikes - burst));
      return { key, entry, strikes, earliest };
    });
    const start = Math.max(now, ...plans.map((p) => p.earliest));
    if (start - now > this.s.maxWaitMs) {
      const blocking = plans.filter((p) => p.earliest - now > this.s.maxWaitMs);
      const firstOfBurst = blocking.some((p) => p.entry !== undefined && !p.entry.noted);
      for (const p of blocking) if (p.entry) p.entry.noted = true;
      return { throttled: true, retryAfterMs: start - now, firstOfBurst };
    }
    for (const p of plans) {
      const entry = p.entry ?? { strikes: 0, slotAt: now, lastAt: now, noted: false };
      entry.strikes = p.strikes;
      entry.slotAt = Math.max(entry.slotAt, start);
      entry.noted = false;
      this.table.delete(p.key);
      this.table.set(p.key, entry);
    }
    while (this.table.size > this.s.maxTracked) this.table.delete(this.table.keys().next().value as string);
    return { throttled: false, ticket: this.ticket(start - now, plans.map((p) => p.key), now) };
  }

  /** Keys tracked now (for tests and bounds checks). */
  get size(): number {
    return this.table.size;
  }

  private ticket(waitMs: number, keys: string[], at: number): SignInTicket {
    let done = false;
    return {
      waitMs,
      succeeded: () => {
        if (done) return;
        done = true;
        for (const key of keys) {
          const entry = this.table.get(key);
          if (!entry) continue;
          // The account starts afresh; the address only gets this attempt back (others from it may be guesses).
          if (key.startsWith('u:') || entry.strikes <= 1) this.table.delete(key);
          else entry.strikes -= 1;
        }
      },
      failed: () => {
        if (done) return;
        done = true;
        const now = Math.max(at, this.now());
        for (const key of keys) {
          const entry = this.table.get(key);
          if (entry) entry.lastAt = now;
        }
      },
    };
  }

  /** The entry for a key unless its failures are older than the window (and no slot is pending). */
  private live(key: string, now: number): Entry | undefined {
    const entry = this.table.get(key);
    if (entry && now - entry.lastAt > this.s.windowSeconds * 1000 && entry.slotAt <= now) {
      this.table.delete(key);
      return undefined;
    }
    return entry;
  }

  private delay(over: number): number {
    return Math.min(this.s.maxDelayMs, this.s.baseDelayMs * 2 ** Math.min(over - 1, 30));
  }
}

/**
 * The part of a client address that identifies its source: an IPv4 address (also when mapped into
 * IPv6), or the /64 network of an IPv6 address (one host usually holds a whole /64).
 */
export function addressKey(address: string): string {
  const plain = address.replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(plain);
  if (mapped) return mapped[1] as string;
  if (!isIPv6(plain)) return plain;
  const [head = '', tail = ''] = plain.split('::');
  const groups = head === '' ? [] : head.split(':');
  if (plain.includes('::')) {
    const rest = tail === '' ? [] : tail.split(':');
    const ipv4Tail = rest.length > 0 && rest[rest.length - 1]?.includes('.') ? 1 : 0;
    while (groups.length + rest.length + ipv4Tail < 8) groups.push('0');
    groups.push(...rest);
  }
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** How many whole seconds a client should wait (HTTP Retry-After), at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Wait before checking a password (or before answering a refused attempt). */
export function pause(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

declare module '../app/services.ts' {
  interface Services {
    /** The sign-in throttle every password sign-in goes through (core/auth/sign-in-throttle.ts). */
    signIn: SignInThrottle;
  }
}
