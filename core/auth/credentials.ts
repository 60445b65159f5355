// The one password check behind every archive sign-in (IMAP LOGIN/AUTHENTICATE, admin API HTTP Basic,
// web sign-in): a local user's stored scrypt hash, or, for a user the directory sync keeps, a bind to the
// LDAP / AD server as their DN (auth.mode: "local" checks hashes only, "directory" binds only, "both"
// each user by their source). A directory password is never stored or cached: every check is a bind.
// Unknown, disabled and password-less users cost one scrypt like a wrong password and fail. Callers keep
// their throttling and audit records around this check. Throws DIRECTORY_FAILED when a bind was needed
// and the server cannot answer, so callers can say so instead of "wrong password".
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import { hashPassword, verifyPassword } from '../smtp/password.ts';
import type { UserRecord } from '../storage/types.ts';
import { checkBind, type LdapSettings } from '../directory/ldap-connection.ts';

export type AuthMode = Config['auth']['mode'];

/** How a user's password is checked under a mode: by hash, by an LDAP bind, or not at all. */
export function checkedBy(user: UserRecord, mode: AuthMode, ldap: LdapSettings | null): 'hash' | 'bind' | 'none' {
  if (user.disabled) return 'none';
  if (user.source === 'directory' && mode !== 'local') return ldap && user.dn ? 'bind' : 'none';
  if (user.source === 'local' && mode === 'directory') return 'none';
  return user.passwordHash !== null ? 'hash' : 'none';
}

export class Credentials {
  private dummy: Promise<string> | null = null;

  constructor(readonly mode: AuthMode, private readonly ldap: LdapSettings | null, private readonly bind: typeof checkBind = checkBind) {}

  /**
   * Whether `password` signs `user` in. `cached` allows the verified-hash cache (only where a right
   * password leads to a session, else its speed would tell); binds are never cached.
   */
  async verify(user: UserRecord | null, password: string, options: { cached?: boolean } = {}): Promise<boolean> {
    const how = user ? checkedBy(user, this.mode, this.ldap) : 'none';
    if (how === 'bind' && user?.dn && this.ldap) return this.bind(this.ldap, user.dn, password);
    if (how === 'hash' && user?.passwordHash) return verifyPassword(password, user.passwordHash, options);
    await verifyPassword(password, await (this.dummy ??= hashPassword(randomBytes(16).toString('hex'))));
    return false;
  }
}

/** Checks stored hashes only: for tests and callers built without the app's service. */
export const LOCAL_CREDENTIALS = new Credentials('local', null);

declare module '../app/services.ts' {
  interface Services {
    /** The password check of every archive sign-in (core/auth/credentials.ts). */
    credentials: Credentials;
  }
}
