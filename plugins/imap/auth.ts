// IMAP login: the user (by name, or by one of their addresses) with their archive password (scrypt hash
// in the user directory), IMAP access granted per user or per group. Failed logins are throttled by
// the shared sign-in throttle (core/auth/sign-in-throttle.ts) in commands.ts, keyed by the account this
// resolves the login to. Unknown users, users without a password and users without IMAP access cost
// the same scrypt work as a wrong password, and the client is told the same for all of them. Never
// logs or keeps a password.
import { hashPassword, verifyPassword } from '../../core/smtp/password.ts';
import type { ArchiveStore, UserRecord } from '../../core/storage/types.ts';

export type LoginOutcome =
  | { ok: true; user: UserRecord }
  | { ok: false; reason: 'unknown-user' | 'no-password' | 'wrong-password' | 'no-imap-access' };

let dummyHash: Promise<string> | null = null;

/** The account a login names: the user owning the address, else the lower-cased name (also when unknown). */
export async function accountFor(archive: ArchiveStore, login: string): Promise<string> {
  const key = login.toLowerCase().slice(0, 320);
  return (login.includes('@') ? await archive.userByAddress(login) : null) ?? key;
}

/** Check a login for `account` (from accountFor). */
export async function checkLogin(archive: ArchiveStore, accessGroups: readonly string[], account: string, password: string): Promise<LoginOutcome> {
  const user = account.includes('@') ? null : await archive.getUser(account);
  if (!user || user.passwordHash === null) {
    dummyHash ??= hashPassword('postern-dummy-password');
    await verifyPassword(password, await dummyHash);
    return { ok: false, reason: user ? 'no-password' : 'unknown-user' };
  }
  // The verified-password cache only where a right password signs in (else its speed would tell).
  const access = hasImapAccess(user, accessGroups);
  if (!(await verifyPassword(password, user.passwordHash, { cached: access }))) return { ok: false, reason: 'wrong-password' };
  if (!access) return { ok: false, reason: 'no-imap-access' };
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
