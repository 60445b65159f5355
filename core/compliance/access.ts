// Who may do what through the admin API. Two credentials: the bearer token (acts as "admin-token",
// every privilege) or HTTP Basic with a user's name and archive password (acts as that user, who needs
// the `login` privilege). Privileges are MailStore's: admin (everything but bypassing preview blocking),
// archive/export/delete/compliance for their areas, auditor (read every archive, change nothing).
// Preview blocking: administrators see only from/to/subject/date of other users' mail, never bodies.
// Every request without the valid token is a sign-in attempt through the shared sign-in throttle
// (core/auth/sign-in-throttle.ts): Basic per account and address, anything else (a wrong or missing
// token) per address; a throttled attempt is refused unchecked and audited once per burst.
// Trusts the archive's user records; hands the server an authentication and a per-request decision.
import { PosternError, isPosternError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { pause, retryAfterSeconds, type SignInThrottle } from '../auth/sign-in-throttle.ts';
import type { AuditLog } from '../audit/types.ts';
import type { ArchiveStore, MessageRecord, Privilege, UserRecord } from '../storage/types.ts';
import { LOCAL_CREDENTIALS, type Credentials } from '../auth/credentials.ts';

export const TOKEN_PRINCIPAL = 'admin-token';

/** Areas (first path segment) whose routes check privileges themselves (core/compliance/routes.ts). */
export const COMPLIANCE_AREAS = new Set(['policies', 'holds', 'hold-everything', 'retention', 'entries', 'purge', 'auditors', 'privileges', 'account']);
/** Areas an auditor may read with GET besides archives (never change). */
const AUDITOR_READABLE = new Set(['status', 'users', 'audit', 'verify', 'policies', 'holds', 'hold-everything', 'retention']);

export interface RequestView {
  /** Show only the headers of messages (preview blocking); bodies are refused. */
  headersOnly: boolean;
}

/**
 * The sign-in of a request without the valid token: the Basic user, or a failure of a Basic credential
 * or of anything else (a wrong or missing token), with the seconds to wait when throttled.
 */
export type ApiSignIn =
  | { ok: true; user: string }
  | { ok: false; via: 'basic' | 'token'; retryAfterSeconds: number | null };

export interface ApiAccess {
  /**
   * Check the `Authorization` header of a request that does not carry a valid token. A success is
   * audited (api.login) unless `recordSuccess` is false: the caller records it itself (a new API session).
   */
  authenticate(header: string, remote: string, options?: { recordSuccess?: boolean }): Promise<ApiSignIn>;
  /** Whether principal may make this request (FORBIDDEN otherwise) and how much of a message it sees. */
  check(principal: string, method: string, parts: string[]): Promise<RequestView>;
}

/** Privileges of a principal: the token has every one. */
export async function privilegesOf(archive: ArchiveStore, principal: string): Promise<Set<Privilege>> {
  if (principal === TOKEN_PRINCIPAL) return new Set(['admin', 'login', 'archive', 'export', 'delete', 'compliance']);
  const user = await archive.getUser(principal);
  return new Set(user?.privileges ?? []);
}

/** FORBIDDEN unless principal holds one of the privileges (admin counts as all but auditor). */
export async function requirePrivilege(archive: ArchiveStore, principal: string, ...any: Privilege[]): Promise<Set<Privilege>> {
  const have = await privilegesOf(archive, principal);
  if (have.has('auditor') && !any.includes('auditor')) throw new PosternError('FORBIDDEN', 'Auditors can read archives but not change anything');
  if (any.some((p) => have.has(p)) || (have.has('admin') && !any.every((p) => p === 'auditor'))) return have;
  throw new PosternError('FORBIDDEN', `"${principal}" needs the ${any.map((p) => `"${p}"`).join(' or ')} privilege`);
}

/** What preview blocking lets an administrator see of someone else's message. */
export function headersOnlyMessage(m: MessageRecord): Pick<MessageRecord, 'id' | 'from' | 'to' | 'subject' | 'date'> & { previewBlocked: true } {
  return { id: m.id, from: m.from, to: m.to, subject: m.subject, date: m.date, previewBlocked: true };
}

export function createApiAccess(deps: {
  archive: ArchiveStore; previewBlocking: boolean; log: Logger; audit: () => AuditLog | null;
  throttle?: SignInThrottle; metrics?: Pick<Metrics, 'signIns'>;
  /** The shared password check (stored hash or directory bind); stored hashes only when absent. */
  credentials?: Credentials;
  /** Areas other modules reserved (AdminRoutes.reserve): their routes check privileges themselves. */
  selfChecking?: (area: string) => boolean;
}): ApiAccess {
  const { archive } = deps;
  const record = async (actor: string, outcome: 'success' | 'failure', remote: string, reason?: string): Promise<void> => {
    try {
      await deps.audit()?.record({ category: 'login', action: 'api.login', actor, target: '', outcome, remote, ...(reason ? { details: { reason } } : {}) });
    } catch (err) {
      deps.log.error('Audit record of an API login failed', { err: (err as Error).message });
    }
  };
  const count = (outcome: 'ok' | 'failed' | 'throttled'): void => deps.metrics?.signIns.inc({ via: 'api', outcome });
  const credentials = deps.credentials ?? LOCAL_CREDENTIALS;
  const verify = async (name: string, password: string, remote: string): Promise<boolean> => {
    const user = /^[a-z0-9_][a-z0-9._-]{0,63}$/.test(name) ? await archive.getUser(name) : null;
    // Users without `login` cost the same check as a wrong password (the shared check's dummy hash).
    const usable = user !== null && user.privileges.includes('login') ? user : null;
    try {
      // The verified-password cache only where a right password signs in (else its speed would tell).
      return await credentials.verify(usable, password, { cached: usable !== null });
    } catch (err) {
      if (!isPosternError(err, 'DIRECTORY_FAILED')) throw err;
      deps.log.error('Admin API sign-in impossible: the directory server cannot be reached', { remote, err: err.message });
      return false;
    }
  };
  return {
    async authenticate(header, remote, options) {
      const m = /^Basic\s+([A-Za-z0-9+/=]{1,1024})$/i.exec(header);
      const decoded = m ? Buffer.from(m[1] as string, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      const basic = colon >= 1;
      const via = basic ? 'basic' : 'token';
      const name = decoded.slice(0, Math.max(colon, 0));
      const admission = deps.throttle?.admit(basic ? name.toLowerCase().slice(0, 320) : null, remote);
      if (admission?.throttled) {
        count('throttled');
        if (admission.firstOfBurst) {
          deps.log.warn('Admin API sign-ins throttled', { remote, retryAfterMs: admission.retryAfterMs });
          await record('unknown', 'failure', remote, 'throttled');
        }
        return { ok: false, via, retryAfterSeconds: retryAfterSeconds(admission.retryAfterMs) };
      }
      const ticket = admission?.ticket;
      if (ticket) await pause(ticket.waitMs);
      if (!basic) {
        ticket?.failed();
        count('failed');
        return { ok: false, via, retryAfterSeconds: null };
      }
      let ok = false;
      try {
        ok = await verify(name, decoded.slice(colon + 1), remote);
      } finally {
        if (ok) ticket?.succeeded();
        else ticket?.failed();
      }
      count(ok ? 'ok' : 'failed');
      if (!ok || options?.recordSuccess !== false) await record(ok ? name : 'unknown', ok ? 'success' : 'failure', remote);
      if (!ok) deps.log.warn('Admin API login failed', { remote });
      return ok ? { ok: true, user: name } : { ok: false, via, retryAfterSeconds: null };
    },

    async check(principal, method, parts) {
      const [area = '', owner] = parts;
      const readsArchive = area === 'archive' && owner !== undefined;
      const isRaw = readsArchive && parts.length === 5 && parts[4] === 'raw';
      if (principal === TOKEN_PRINCIPAL) {
        if (isRaw && deps.previewBlocking) throw new PosternError('FORBIDDEN', 'Preview blocking is on: administrators see only the headers of archived mail');
        return { headersOnly: readsArchive && deps.previewBlocking };
      }
      const user: UserRecord | null = await archive.getUser(principal);
      if (!user) throw new PosternError('FORBIDDEN', `User "${principal}" no longer exists`);
      const has = (p: Privilege): boolean => user.privileges.includes(p);
      const read = method === 'GET';
      if (COMPLIANCE_AREAS.has(area) || deps.selfChecking?.(area)) return { headersOnly: false }; // the routes check their own privileges
      if (readsArchive && read) {
        if (owner === principal || has('auditor')) return { headersOnly: false };
        if (has('admin')) {
          if (isRaw && deps.previewBlocking) throw new PosternError('FORBIDDEN', 'Preview blocking is on: administrators see only the headers of other users\' mail');
          return { headersOnly: deps.previewBlocking };
        }
        throw new PosternError('FORBIDDEN', `"${principal}" may read only their own archive`);
      }
      if (area === 'users' && read && owner === principal && parts.length === 2) return { headersOnly: false };
      if (has('auditor')) {
        if (read && AUDITOR_READABLE.has(area)) return { headersOnly: false };
        throw new PosternError('FORBIDDEN', 'Auditors can read archives but not change anything');
      }
      if (has('admin')) return { headersOnly: false };
      throw new PosternError('FORBIDDEN', `"${principal}" needs the "admin" privilege for ${method} /${parts.join('/')}`);
    },
  };
}
