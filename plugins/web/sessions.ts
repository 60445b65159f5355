// Web sessions in memory: a random 256-bit id per sign-in (the cookie value), the user it belongs to,
// its CSRF token, and idle and absolute deadlines. Bounded: past maxSessions the least recently used
// session ends. Sign-in forms get a CSRF token too, before any session exists: an HMAC of a random
// pre-session cookie under a key made at start (nothing stored). Nothing survives a restart: everyone
// signs in again. Trusts its callers to pass the cookie value as sent; compares tokens in constant time.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface WebSession {
  readonly id: string;
  readonly user: string;
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
}

export type SessionLookup =
  | { kind: 'ok'; session: WebSession }
  /** A cookie that names no live session: ended by time, sign-out, eviction or a restart. */
  | { kind: 'expired' }
  | { kind: 'none' };

export class SessionStore {
  private readonly sessions = new Map<string, WebSession>();
  private readonly key = randomBytes(32);

  constructor(
    private readonly limits: { idleMs: number; absoluteMs: number; max: number },
    private readonly now: () => number = Date.now,
  ) {}

  create(user: string): WebSession {
    const at = this.now();
    const session: WebSession = { id: randomBytes(32).toString('base64url'), user, csrf: randomBytes(24).toString('base64url'), createdAt: at, lastSeen: at };
    this.sessions.set(session.id, session);
    while (this.sessions.size > this.limits.max) this.sessions.delete(this.sessions.keys().next().value as string);
    return session;
  }

  /** The live session of a cookie value (touched: idle time restarts, most recently used last). */
  lookup(id: string | undefined): SessionLookup {
    if (id === undefined || id === '') return { kind: 'none' };
    const session = /^[A-Za-z0-9_-]{43}$/.test(id) ? this.sessions.get(id) : undefined;
    if (!session) return { kind: 'expired' };
    const at = this.now();
    if (at - session.lastSeen > this.limits.idleMs || at - session.createdAt > this.limits.absoluteMs) {
      this.sessions.delete(id);
      return { kind: 'expired' };
    }
    session.lastSeen = at;
    this.sessions.delete(id);
    this.sessions.set(id, session);
    return { kind: 'ok', session };
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  /** End every session of a user (access withdrawn, user removed). */
  endUser(user: string): void {
    for (const [id, s] of this.sessions) if (s.user === user) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Drop sessions past their deadlines (called now and then; lookups check anyway). */
  sweep(): void {
    const at = this.now();
    for (const [id, s] of this.sessions) {
      if (at - s.lastSeen > this.limits.idleMs || at - s.createdAt > this.limits.absoluteMs) this.sessions.delete(id);
    }
  }

  /** A new pre-session id for the sign-in form's cookie. */
  newPreSession(): string {
    return randomBytes(24).toString('base64url');
  }

  /** The sign-in form's CSRF token for a pre-session id. */
  preToken(pre: string): string {
    return createHmac('sha256', this.key).update(`pre:${pre}`).digest('base64url');
  }

  checkPreToken(pre: string | undefined, token: string | undefined): boolean {
    if (!pre || !token || !/^[A-Za-z0-9_-]{32}$/.test(pre)) return false;
    return sameText(this.preToken(pre), token);
  }
}

/** Constant-time comparison of two tokens. */
export function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
