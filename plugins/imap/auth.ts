// IMAP login: the user (by name, or by one of their addresses) with their archive password (scrypt hash
// in the user directory), IMAP access granted per user or per group, and failed logins throttled per
// user and per client address: each failure doubles the delay before the next answer, in a bounded
// table that forgets after a window. Unknown users cost the same scrypt work as known ones. Never
// logs or keeps a password.
import { hashPassword, verifyPassword } from '../../core/smtp/password.ts';
import type { ArchiveStore, UserRecord } from '../../core/storage/types.ts';

export interface ThrottleSettings {
  baseDelayMs: number;
  maxDelayMs: number;
  windowSeconds: number;
  maxTracked: number;
}

interface Failures {
  count: number;
  last: number;
}

export class LoginThrottle {
  private readonly table = new Map<string, Failures>();

  constructor(private readonly s: ThrottleSettings, private readonly now: () => number = Date.now) {}

  private get(key: string): number {
    const f = this.table.get(key);
    if (!f) return 0;
    if (this.now() - f.last > this.s.windowSeconds * 1000) {
      this.table.delete(key);
      return 0;
    }
    return f.count;
  }

  /** How long to wait before answering a login attempt for this user from this address. */
  delayMs(user: string, address: string): number {
    const n = Math.max(this.get(`u:${user}`), this.get(`a:${address}`));
    if (n === 0 || this.s.baseDelayMs === 0) return 0;
    return Math.min(this.s.maxDelayMs, this.s.baseDelayMs * 2 ** Math.min(n - 1, 20));
  }

  failed(user: string, address: string): void {
    for (const key of [`u:${user}`, `a:${address}`]) {
      const count = this.get(key) + 1;
      this.table.delete(key);
      this.table.set(key, { count, last: this.now() });
    }
    while (this.table.size > this.s.maxTracked) this.table.delete(this.table.keys().next().value as string);
  }

  succeeded(user: string): void {
    this.table.delete(`u:${user}`);
  }

  get size(): number {
    return this.table.size;
  }
}

export type LoginOutcome =
  | { ok: true; user: UserRecord }
  | { ok: false; reason: 'unknown-user' | 'no-password' | 'wrong-password' | 'no-imap-access' };

let dummyHash: Promise<string> | null = null;

/** Check a login. `login` is a user name or an address of the user. */
export async function checkLogin(archive: ArchiveStore, accessGroups: readonly string[], login: string, password: string): Promise<LoginOutcome> {
  const name = login.includes('@') ? await archive.userByAddress(login) : login.toLowerCase();
  const user = name === null || name.length > 320 ? null : await archive.getUser(name);
  if (!user || user.passwordHash === null) {
    dummyHash ??= hashPassword('postern-dummy-password');
    await verifyPassword(password, await dummyHash);
    return { ok: false, reason: user ? 'no-password' : 'unknown-user' };
  }
  if (!(await verifyPassword(password, user.passwordHash))) return { ok: false, reason: 'wrong-password' };
  if (!hasImapAccess(user, accessGroups)) return { ok: false, reason: 'no-imap-access' };
  return { ok: true, user };
}

export function hasImapAccess(user: UserRecord, accessGroups: readonly string[]): boolean {
  return user.imapAccess || user.groups.some((g) => accessGroups.includes(g));
}

/** Decode a SASL PLAIN response (authzid NUL authcid NUL password); null when malformed. */
export function decodePlain(base64: string): { authzid: string; login: string; password: string } | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) return null;
  const parts = Buffer.from(base64, 'base64').toString('utf8').split('\u0000');
  if (parts.length !== 3) return null;
  const [authzid, login, password] = parts as [string, string, string];
  if (login === '' || password === '') return null;
  return { authzid, login, password };
}
