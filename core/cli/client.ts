// The CLI's client of the running server's admin API: finds the URL and token from the same
// configuration (file + POSTERN_* environment) the server uses, so the CLI never opens the database.
// The credential is the API session `postern login` stored for that URL (core/cli/session-file.ts),
// unless --token-file names a token, else the admin token in the data directory.
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Config } from '../config/schema.ts';
import { tokenPath } from '../admin/token.ts';
import { readSession } from './session-file.ts';

export class AdminClientError extends Error {
  constructor(message: string, readonly status: number | null) {
    super(message);
  }
}

export interface AdminTarget {
  url: string;
  token: string;
  /** Accept the server's self-signed certificate (admin TLS with a generated certificate). */
  insecure: boolean;
  /** Set when the token is a user's API session from `postern login`. */
  session?: { user: string; expiresAt: string };
}

/** The admin API's URL from the configuration (or --url). */
export function adminUrl(config: Config, override: string | undefined): string {
  const scheme = config.admin.tls.cert ? 'https' : 'http';
  const host = config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host;
  return override ?? `${scheme}://${host}:${config.admin.port}`;
}

export function targetFromConfig(config: Config, overrides: { url?: string | undefined; tokenFile?: string | undefined }): AdminTarget {
  const url = adminUrl(config, overrides.url);
  const insecure = config.admin.tls.cert !== '';
  if (overrides.tokenFile === undefined) {
    const session = readSession(url);
    if (session) return { url, token: session.token, insecure, session: { user: session.user, expiresAt: session.expiresAt } };
  }
  const file = overrides.tokenFile ?? tokenPath(config.dataDir);
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch {
    throw new AdminClientError(`Cannot read the admin token "${file}"; is the server started with this data directory (POSTERN_DATA_DIR)?`, null);
  }
  return { url, token, insecure };
}

export function call(target: AdminTarget, method: string, path: string, body?: unknown): Promise<IncomingMessage> {
  const url = new URL(path, target.url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
    method,
    headers: {
      authorization: `Bearer ${target.token}`,
      ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
    },
    ...(url.protocol === 'https:' ? { rejectUnauthorized: !target.insecure } : {}),
    timeout: 30000,
  });
  return new Promise((resolve, reject) => {
    req.on('response', resolve);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ECONNREFUSED' ? 'nothing is listening there; is `postern serve` running?' : err.message;
      reject(new AdminClientError(`Cannot reach the admin API at ${target.url}: ${why}`, null));
    });
    req.end(payload);
  });
}

async function readBody(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts).toString('utf8');
}

export async function callJson<T>(target: AdminTarget, method: string, path: string, body?: unknown): Promise<T> {
  const res = await call(target, method, path, body);
  const text = await readBody(res);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AdminClientError(`Admin API answered ${res.statusCode} with a body that is not JSON`, res.statusCode ?? null);
  }
  if (res.statusCode === 401 && target.session) throw sessionRefused(target.session.user);
  if ((res.statusCode ?? 500) >= 400) {
    const msg = (parsed as { error?: string }).error ?? `HTTP ${res.statusCode}`;
    throw new AdminClientError(msg, res.statusCode ?? null);
  }
  return parsed as T;
}

/** The error of a request refused with a stored API session: it expired or was ended. */
export function sessionRefused(user: string): AdminClientError {
  return new AdminClientError(`The API session of "${user}" has expired or was ended (a new password, or signed out elsewhere): run postern login again, or postern logout to act with the admin token`, 401);
}

export async function errorOf(res: IncomingMessage): Promise<AdminClientError> {
  const text = await readBody(res);
  try {
    return new AdminClientError((JSON.parse(text) as { error?: string }).error ?? `HTTP ${res.statusCode}`, res.statusCode ?? null);
  } catch {
    return new AdminClientError(`HTTP ${res.statusCode}`, res.statusCode ?? null);
  }
}
