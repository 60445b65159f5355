// IMAP login: the user (by name, or by one of their addresses) with their archive password (scrypt hash
// in the user directory, or an LDAP bind for directory users: core/auth/credentials.ts), IMAP access
// granted per user or per group; never to a disabled user. Failed logins are throttled by
// the shared sign-in throttle (core/auth/sign-in-throttle.ts) in commands.ts, keyed by the account this
// resolves the login to. Unknown users, users without a password and users without IMAP access cost
// the same scrypt work as a wrong password, and the client is told the same for all of them. Never
// logs or keeps a password.
import { LOCAL_CREDENTIALS, type Credentials } from '../../core/auth/credentials.ts';
import { isPosternError } from '../../core/errors.ts';
import type { ArchiveStore, UserRecord } from '../../core/storage/types.ts';

export type LoginOutcome =
  | { ok: true; user: UserRecord }
  | { ok: false; reason: 'unknown-user' | 'no-password' | 'wrong-password' | 'no-imap-access' }
  /** The directory server could not check a directory user's password. */
  | { ok: false; reason: 'directory-unavailable'; error: string };

/** The account a login names: the user owning the address, else the lower-cased name (also when unknown). */
export async function accountFor(archive: ArchiveStore, login: string): Promise<string> {
  const key = login.toLowerCase().slice(0, 320);
  return (login.includes('@') ? await archive.userByAddress(login) : null) ?? key;
}

/** Check a login for `account` (from accountFor) through the shared password check (hash or directory bind). */
export async function checkLogin(archive: ArchiveStore, accessGroups: readonly string[], account: string, password: string, credentials: Credentials = LOCAL_CREDENTIALS): Promise<LoginOutcome> {
  const user = account.includes('@') ? null : await archive.getUser(account);
  // The verified-password cache only where a right password signs in (else its speed would tell).
  const access = user !== null && hasImapAccess(user, accessGroups);
  let ok: boolean;
  try {
    ok = await credentials.verify(user, password, { cached: access });
  } catch (err) {
    if (isPosternError(err, 'DIRECTORY_FAILED')) return { ok: false, reason: 'directory-unavailable', error: err.message };
    throw err;
  }
  if (!user) return { ok: false, reason: 'unknown-user' };
  if (!ok) return { ok: false, reason: user.source === 'local' && user.passwordHash === null ? 'no-password' : 'wrong-password' };
  if (!access) return { ok: false, reason: 'no-imap-access' };
  return { ok: true, user };
}

export function hasImapAccess(user: UserRecord, accessGroups: readonly string[]): boolean {
  return !user.disabled && (user.imapAccess || user.groups.some((g) => accessGroups.includes(g)));
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
