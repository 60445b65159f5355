// Turns admin API requests into audit events, as one wrapper the admin server calls after each request:
// a rejected bearer token is a failed login (a failed Basic sign-in or a throttled one is recorded by
// the sign-in itself, at most once per throttled burst; a new API session by its route); every request that can change something (any
// method but GET/HEAD) is an admin action with its outcome; a raw message download is a message access when
// audit.recordMessageAccess is on. Reads only the method, path, status and client address (never bodies
// or credentials). Hands events to the audit log; a failure to record is logged, never thrown.
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { AuditEvent, AuditLog } from './types.ts';

/** How a request's sign-in failed: a Basic credential, a wrong or missing token, or throttled (refused unchecked). */
export type SignInFailure = 'basic' | 'token' | 'throttled';

export interface AdminRequestInfo {
  method: string;
  /** The URL path, without the query. */
  path: string;
  /** The query string (used for the folder of a raw message read). */
  search: URLSearchParams;
  status: number;
  remote: string;
  principal: string;
  /** Set when the sign-in failed; Basic failures and throttled attempts are recorded by the sign-in itself. */
  signInFailure?: SignInFailure;
}

const RAW = /^\/api\/v1\/archive\/([^/]+)\/messages\/([^/]+)\/raw$/;

function outcomeOf(status: number): AuditEvent['outcome'] {
  return status < 400 ? 'success' : status === 401 || status === 403 ? 'denied' : 'failure';
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** The audit event for one admin request, or null when it is not audited. */
export function adminEvent(info: AdminRequestInfo, recordMessageAccess: boolean): AuditEvent | null {
  const remote = info.remote;
  const path = info.path.slice(0, 512);
  // Recorded where the credential was checked (api.login, a throttled burst once), not per request.
  if (info.signInFailure === 'basic' || info.signInFailure === 'throttled') return null;
  if (info.status === 401) {
    return { category: 'login', action: 'api.token', actor: 'unknown', target: path, outcome: 'failure', remote, details: { method: info.method } };
  }
  // A new API session is recorded once by its route (login/api.session.create).
  if (info.method === 'POST' && info.path === '/api/v1/sessions' && info.status === 201) return null;
  const raw = RAW.exec(info.path);
  if (info.method === 'GET' && raw) {
    if (!recordMessageAccess) return null;
    const target = `${decode(raw[1] as string)}/${info.search.get('folder') ?? 'Inbox'}/${decode(raw[2] as string)}`;
    return { category: 'access', action: 'message.get', actor: info.principal, target, outcome: outcomeOf(info.status), remote, details: { via: 'api', status: info.status } };
  }
  if (info.method === 'GET' || info.method === 'HEAD' || !info.path.startsWith('/api/v1/')) return null;
  const parts = info.path.slice('/api/v1/'.length).split('/').map(decode);
  const area = (parts[0] ?? '').replace(/[^a-z0-9_-]/gi, '').slice(0, 64) || 'root';
  return {
    category: 'admin', action: `api.${area}.${info.method.toLowerCase()}`, actor: info.principal, target: parts.slice(1).join('/').slice(0, 512),
    outcome: outcomeOf(info.status), remote, details: { method: info.method, path, status: info.status },
  };
}

export function adminAuditor(audit: AuditLog, options: { recordMessageAccess: boolean; log: Logger }): (info: AdminRequestInfo) => Promise<void> {
  return async (info) => {
    const event = adminEvent(info, options.recordMessageAccess);
    if (!event) return;
    try {
      await audit.record(event);
    } catch (err) {
      options.log.error('Audit record of an admin request failed', { action: event.action, err: errorMessage(err) });
    }
  };
}
