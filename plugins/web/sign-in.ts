// Web sign-in with the archive credentials: the user by name or by one of their addresses, the archive
// password (scrypt hash in the user directory, or an LDAP bind for directory users: the shared check in
// core/auth/credentials.ts), web access by flag, group or privilege. Goes through the
// shared sign-in throttle (core/auth/sign-in-throttle.ts) exactly as IMAP LOGIN does: the slot is reserved
// before the password is checked; an unknown user, a user without password, a wrong password and a right
// one without web access cost the same scrypt and get the same answer; the verified-password cache is
// used only where a right password signs in (core/smtp/password.ts). Every checked attempt, and the first
// throttled one of a burst, is reported on the `authenticate` hook (the audit log records it as
// `web.login`) and counted in postern_sign_ins_total{via="web"}. Never logs or keeps a password.
import { pause, retryAfterSeconds, type SignInThrottle } from '../../core/auth/sign-in-throttle.ts';
import type { HookRegistry } from '../../core/app/hooks.ts';
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import { LOCAL_CREDENTIALS, type Credentials } from '../../core/auth/credentials.ts';
import { isPosternError } from '../../core/errors.ts';
import type { ArchiveStore, UserRecord } from '../../core/storage/types.ts';
import { hasWebAccess } from './access.ts';

export type WebSignIn =
  | { ok: true; user: UserRecord }
  | { ok: false; throttled: false }
  | { ok: false; throttled: true; retryAfterSeconds: number };

export interface SignInDeps {
  archive: ArchiveStore;
  throttle: SignInThrottle;
  hooks: HookRegistry;
  metrics: Pick<Metrics, 'signIns'>;
  log: Logger;
  accessGroups: () => readonly string[];
  /** The shared password check (stored hash or directory bind); stored hashes only when absent. */
  credentials?: Credentials;
}


export async function webSignIn(deps: SignInDeps, login: string, password: string, remote: string): Promise<WebSignIn> {
  const key = login.trim().toLowerCase().slice(0, 320);
  const account = key.includes('@') ? (await deps.archive.userByAddress(key)) ?? key : key;
  const notify = (user: string | null, ok: boolean, reason?: string): Promise<void> =>
    deps.hooks.notify('authenticate', { via: 'web', login: key, user, ok, ...(reason ? { reason } : {}), remote }, deps.log);
  const admission = deps.throttle.admit(account, remote);
  if (admission.throttled) {
    deps.metrics.signIns.inc({ via: 'web', outcome: 'throttled' });
    if (admission.firstOfBurst) {
      deps.log.warn('Web sign-ins throttled', { login: key, retryAfterMs: admission.retryAfterMs });
      await notify(null, false, 'throttled');
    }
    return { ok: false, throttled: true, retryAfterSeconds: retryAfterSeconds(admission.retryAfterMs) };
  }
  const { ticket } = admission;
  await pause(ticket.waitMs);
  let user: UserRecord | null = null;
  let reason = 'unknown-user';
  try {
    const found = /^[a-z0-9_][a-z0-9._-]{0,63}$/.test(account) ? await deps.archive.getUser(account) : null;
    const access = found !== null && hasWebAccess(found, deps.accessGroups());
    // The verified-password cache only where a right password signs in (else its speed would tell).
    if (!(await (deps.credentials ?? LOCAL_CREDENTIALS).verify(found, password, { cached: access }))) {
      reason = !found ? 'unknown-user' : found.source === 'local' && found.passwordHash === null ? 'no-password' : 'wrong-password';
    } else if (!access) reason = 'no-web-access';
    else user = found;
  } catch (err) {
    if (!isPosternError(err, 'DIRECTORY_FAILED')) throw err;
    reason = 'directory-unavailable';
    deps.log.error('Web sign-in impossible: the directory server cannot be reached', { login: key, err: err.message });
  } finally {
    if (user) ticket.succeeded();
    else ticket.failed();
  }
  deps.metrics.signIns.inc({ via: 'web', outcome: user ? 'ok' : 'failed' });
  if (!user) {
    await notify(null, false, reason);
    deps.log.warn('Web sign-in failed', { login: key, reason });
    return { ok: false, throttled: false };
  }
  await notify(user.name, true);
  deps.log.info('Web sign-in', { user: user.name });
  return { ok: true, user };
}
