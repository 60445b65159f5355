// Event builders shared by the places that record logins and reads, so every protocol writes the same
// shape: `<via>.login` (category login) and `<via>.<what>` (category access). The IMAP server has no
// `authenticate` hook yet: it (or any other login path) records a login with
//   await app.service('audit').record(loginEvent({ via: 'imap', login, user, ok, reason, remote }))
// Never puts a password or message content into an event; the login name is cut to 320 characters.
import type { AccessInfo } from '../app/hook-types.ts';
import type { AuditEvent } from './types.ts';

export interface LoginAttempt {
  /** The protocol: "imap", "api", "pop3" … */
  via: string;
  /** The name the client gave (user name or address). */
  login: string;
  /** The user it resolved to, when known. */
  user?: string | null;
  ok: boolean;
  /** Why it failed ("bad-password", "no-imap-access", "throttled" …). */
  reason?: string;
  remote?: string;
}

export function loginEvent(a: LoginAttempt): AuditEvent {
  const login = a.login.slice(0, 320);
  return {
    category: 'login', action: `${a.via}.login`, actor: a.user || login || 'unknown', target: login, outcome: a.ok ? 'success' : 'failure',
    ...(a.remote !== undefined ? { remote: a.remote } : {}),
    ...(a.reason !== undefined ? { details: { reason: a.reason } } : {}),
  };
}

/** The event for a read reported through the `access` hook. */
export function accessEvent(a: AccessInfo): AuditEvent {
  return {
    category: 'access', action: `${a.via}.${a.what}`, actor: a.user, target: `${a.target}/${a.folder}${a.uid !== null ? `/${a.uid}` : ''}`,
    outcome: 'success', details: { auditor: a.auditor },
  };
}
