// The admin HTTP API (/api/v1/…), /metrics and /healthz. Every /api route needs the bearer token from
// the data directory, or a user's name and password (HTTP Basic; privileges in core/compliance/access.ts). Loopback by default; a non-loopback address is refused unless TLS is configured.
// Anything but the valid token goes through the shared sign-in throttle (401, or 429 with Retry-After).
// Request bodies are bounded and validated; responses are JSON except raw message bytes. A request
// that fails in any way is answered (or its connection closed) and recorded; it never ends the process.
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps, Server as HttpsServer } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { PosternError, errorMessage, isPosternError } from '../errors.ts';
import { GROUP_NAME, type ArchiveStore, type UserRecord } from '../storage/types.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { Intake } from '../intake/intake.ts';
import { tokenMatches } from './token.ts';
import { isLoopback } from '../config/host-port.ts';
import { HttpError, defined, readJson, send, validated } from './http.ts';
import type { AdminRoutes, HttpMethod } from './routes.ts';
import type { AdminRequestInfo, SignInFailure } from '../audit/admin-audit.ts';
import { TOKEN_PRINCIPAL, headersOnlyMessage, type ApiAccess, type RequestView } from '../compliance/access.ts';

export interface StatusSource {
  status(): Promise<Record<string, unknown>>;
}

export interface AdminDeps {
  config: Config['admin'];
  token: string;
  archive: ArchiveStore;
  intake: Intake;
  metrics: Metrics;
  log: Logger;
  status: StatusSource;
  tls: { cert: Buffer; key: Buffer } | null;
  isReady(): boolean;
  /** Routes added by plugins and feature modules (matched after the built-in ones). */
  routes?: AdminRoutes;
  /** Hooks to tell plugins about directory changes (`userChanged`). */
  hooks?: HookRegistry;
  /** Called after every request (the audit log's wrapper: token failures, changes, message reads). */
  onRequest?: (info: AdminRequestInfo) => Promise<void>;
  /** Basic-auth users, privilege checks and preview blocking (core/compliance/access.ts); without it only the token works. */
  access?: ApiAccess;
}

const identities = z.array(z.string().min(1).max(320)).max(1000);
const groupNames = z.array(z.string().regex(GROUP_NAME, 'must be lower-case letters, digits, ".", "_" or "-"')).max(100);
const newUserBody = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit'),
  addresses: identities,
  domains: identities.optional(),
  pop3Users: identities.optional(),
  groups: groupNames.optional(),
}).refine((u) => u.addresses.length + (u.domains?.length ?? 0) > 0, 'a user needs at least one address or domain');
const userChangeBody = z.strictObject({
  addAddresses: identities.optional(),
  removeAddresses: identities.optional(),
  addDomains: identities.optional(),
  removeDomains: identities.optional(),
  addPop3Users: identities.optional(),
  removePop3Users: identities.optional(),
  addGroups: groupNames.optional(),
  removeGroups: groupNames.optional(),
});

/** A user as the API shows it: the password hash never leaves the server, only whether one is set. */
export function publicUser(u: UserRecord): Omit<UserRecord, 'passwordHash'> & { hasPassword: boolean } {
  const { passwordHash, ...rest } = u;
  return { ...rest, hasPassword: passwordHash !== null };
}

/** Who a request acts as, and how its sign-in failed (for the audit record). */
interface RequestAuth {
  principal: string;
  signInFailure?: SignInFailure;
}

/** The request target as a URL; 400 for one that cannot be parsed. */
/** How long a closing admin server waits for requests in progress before it drops their connections. */
const CLOSE_GRACE_MS = 5000;

function requestUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://admin');
  } catch {
    throw new HttpError(400, 'The request target is not a valid path');
  }
}

function uidParam(raw: string): number {
  const uid = Number(raw);
  if (!/^\d{1,10}$/.test(raw) || uid < 1 || uid > 0xffffffff) throw new HttpError(400, `UID "${raw}" must be a number from 1 to 4294967295`);
  return uid;
}

export class AdminServer {
  private server: Server | null = null;

  constructor(private readonly deps: AdminDeps) {}

  async listen(): Promise<number> {
    const { config, tls, log } = this.deps;
    if (!isLoopback(config.host) && !tls) {
      throw new PosternError('CONFIG_INVALID', `Admin API host "${config.host}" is not loopback; configure admin.tls.cert and admin.tls.key to listen there`);
    }
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        // Only a failure outside the request's own error handling lands here; the request still ends.
        log.error('Admin request handling failed', { method: req.method, err: errorMessage(err) });
        if (!res.headersSent && !res.destroyed) send(res, 500, { error: 'Internal error; the server log has the details' });
        else res.destroy();
      });
    };
    const server = tls ? createHttps({ cert: tls.cert, key: tls.key }, handler) : createHttp(handler);
    server.requestTimeout = 30000;
    server.headersTimeout = 10000;
    server.maxConnections = 64;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.port;
    log.info('Admin API listening', { host: config.host, port, tls: Boolean(tls) });
    return port;
  }

  /** Serve a new certificate from the next handshake on (SIGHUP); open connections keep theirs. */
  setTls(material: { cert: Buffer; key: Buffer }): void {
    if (this.server instanceof HttpsServer) this.server.setSecureContext({ cert: material.cert, key: material.key });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    // Requests in progress get a moment to finish; then every connection is closed, so a request
    // stuck on storage (a full disk) cannot hold the shutdown until the server's request timeout.
    const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    clearTimeout(force);
  }

  private authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    return m !== null && tokenMatches(m[1] as string, this.deps.token);
  }

  /**
   * One request, start to end. Whatever a route does (throws, rejects, the client goes away mid-body),
   * the request is answered with a status (or its connection closed) and recorded; nothing escapes.
   */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Read before anything can fail: the socket is detached from the request once the response is sent.
    const remote = req.socket?.remoteAddress ?? '';
    const method = req.method ?? 'GET';
    const who: RequestAuth = { principal: 'unknown' };
    let url = new URL('http://admin/');
    try {
      url = requestUrl(req.url);
      await this.route(method, url, req, res, who, remote);
    } catch (err) {
      this.fail(err, method, url, req, res);
    } finally {
      try {
        this.deps.metrics.adminRequests.inc({ status: `${Math.floor(res.statusCode / 100)}xx` });
        await this.deps.onRequest?.({
          method, path: url.pathname, search: url.searchParams, status: res.statusCode, remote, principal: who.principal,
          ...(who.signInFailure ? { signInFailure: who.signInFailure } : {}),
        });
      } catch (err) {
        this.deps.log.error('Recording an admin request failed', { method, path: url.pathname, err: errorMessage(err) });
      }
    }
  }

  /** Answer a failed request with its status and `{ error }`, or close it when an answer is under way. */
  private fail(err: unknown, method: string, url: URL, req: IncomingMessage, res: ServerResponse): void {
    const status = err instanceof HttpError ? err.status
      : isPosternError(err, 'NOT_FOUND') ? 404
      : isPosternError(err, 'FORBIDDEN') ? 403
      : isPosternError(err, 'HELD') ? 423
      : isPosternError(err, 'CONFLICT') ? 409
      : isPosternError(err, 'TOO_LARGE') ? 413
      : isPosternError(err, 'INVALID_INPUT') ? 400 : 500;
    if (status === 500) this.deps.log.error('Admin request failed', { method, path: url.pathname, err: errorMessage(err) });
    if (res.writableEnded) return; // answered in full already
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    // A body not read to its end (oversize, refused before reading) is not drained: the connection ends with this answer.
    if (!req.complete) res.setHeader('connection', 'close');
    send(res, status, { error: errorMessage(err) });
  }

  private async route(method: string, url: URL, req: IncomingMessage, res: ServerResponse, who: RequestAuth, remote: string): Promise<void> {
    const { archive, metrics } = this.deps;
    const path = url.pathname;
    if (path === '/healthz') {
      const ready = this.deps.isReady();
      return send(res, ready ? 200 : 503, { status: ready ? 'ok' : 'unavailable' });
    }
    if (path === '/metrics') {
      if (this.deps.config.metricsRequireToken && !this.authorized(req)) throw new HttpError(401, 'Missing or wrong bearer token');
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (!path.startsWith('/api/v1/')) throw new HttpError(404, `No route for "${path}"`);
    const principal = await this.signIn(req, res, path, remote, who);
    const parts = path.slice('/api/v1/'.length).split('/').map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        throw new HttpError(400, `Path segment "${part.slice(0, 64)}" has a malformed percent escape`);
      }
    });
    const [head, a, b, c, d] = parts;
    who.principal = principal;
    const view: RequestView = (await this.deps.access?.check(who.principal, method, parts)) ?? { headersOnly: false };
    if (method === 'GET' && head === 'status' && parts.length === 1) return send(res, 200, await this.deps.status.status());
    if (head === 'users' && parts.length === 1) {
      if (method === 'GET') return send(res, 200, { users: (await archive.listUsers()).map(publicUser) });
      if (method === 'POST') {
        const user = await archive.addUser(defined(validated(newUserBody, await readJson(req))));
        this.deps.log.info('User added', { user: user.name, addresses: user.addresses.length, domains: user.domains.length });
        await this.deps.hooks?.notify('userChanged', { before: null, after: user, actor: who.principal }, this.deps.log);
        return send(res, 201, { user: publicUser(user) });
      }
    }
    if (head === 'users' && a && parts.length === 2) {
      if (method === 'GET') {
        const user = await archive.getUser(a);
        if (!user) throw new HttpError(404, `User "${a}" does not exist`);
        return send(res, 200, { user: publicUser(user), folders: await archive.folders(a) });
      }
      if (method === 'PATCH') {
        const change = defined(validated(userChangeBody, await readJson(req)));
        const before = await archive.getUser(a);
        const user = await archive.updateUser(a, change);
        this.deps.log.info('User changed', { user: user.name });
        await this.deps.hooks?.notify('userChanged', { before, after: user, actor: who.principal }, this.deps.log);
        return send(res, 200, { user: publicUser(user) });
      }
      if (method === 'DELETE') {
        await archive.removeUser(a);
        this.deps.log.info('User removed from the directory; the archive is kept', { user: a });
        return send(res, 200, { removed: a });
      }
    }
    if (method === 'GET' && head === 'users' && a && b === 'folders' && parts.length === 3) {
      await this.requireUser(a);
      return send(res, 200, { folders: await archive.folders(a) });
    }
    if (method === 'GET' && head === 'archive' && a && b === 'messages') {
      await this.requireUser(a);
      const folder = url.searchParams.get('folder') ?? 'Inbox';
      if (parts.length === 3) {
        const after = url.searchParams.get('afterUid');
        const limit = Math.min(Number(url.searchParams.get('limit') ?? 1000) || 1000, 10000);
        if (after !== null && !/^\d{1,10}$/.test(after)) throw new HttpError(400, `afterUid "${after}" must be a number`);
        const entries = await archive.listEntries(a, folder, { ...(after !== null ? { afterUid: Number(after) } : {}), limit });
        return send(res, 200, { entries });
      }
      if (c && (parts.length === 4 || (parts.length === 5 && d === 'raw'))) {
        const entry = await archive.getEntry(a, folder, uidParam(c));
        if (!entry) throw new HttpError(404, `No message with UID ${c} in folder "${folder}" of user "${a}"`);
        const message = await archive.getMessage(entry.messageId);
        if (!message) throw new PosternError('STORAGE_IO', `Entry points to missing message "${entry.messageId}"`);
        if (parts.length === 4) return send(res, 200, { entry, message: view.headersOnly && a !== who.principal ? headersOnlyMessage(message) : message });
        const blob = await archive.openBlob(message.blobId);
        if (!blob) throw new PosternError('STORAGE_IO', `Message "${message.id}" has no blob "${message.blobId}"`);
        res.writeHead(200, { 'content-type': 'message/rfc822', 'content-length': message.size });
        await pipeline(blob, res);
        return;
      }
    }
    if (method === 'GET' && head === 'intake' && parts.length === 1) {
      const state = url.searchParams.get('state');
      const all = await this.deps.intake.list(10000);
      return send(res, 200, { entries: all.filter((r) => !state || r.state === state) });
    }
    const extra = this.deps.routes?.match(method, parts);
    if (extra) {
      const reply = await extra.handler({ method: method as HttpMethod, params: extra.params, url, req, res, principal: who.principal });
      if (reply && !res.headersSent) send(res, reply.status ?? 200, reply.body);
      return;
    }
    throw new HttpError(404, `No route for ${method} "${path}"`);
  }

  /** The principal of an /api request: the token, or a Basic user through the sign-in throttle (401, 429). */
  private async signIn(req: IncomingMessage, res: ServerResponse, path: string, remote: string, who: RequestAuth): Promise<string> {
    if (this.authorized(req)) return TOKEN_PRINCIPAL;
    const result = this.deps.access ? await this.deps.access.authenticate(req.headers.authorization ?? '', remote) : null;
    if (result?.ok) return result.user;
    if (result && result.retryAfterSeconds !== null) {
      who.signInFailure = 'throttled';
      res.setHeader('retry-after', String(result.retryAfterSeconds));
      throw new HttpError(429, `Too many failed sign-ins; try again in ${result.retryAfterSeconds} seconds`);
    }
    who.signInFailure = result?.via ?? 'token';
    this.deps.log.warn('Admin API request without a valid token', { path, remote });
    // One text for a wrong password and a user who may not sign in: no password oracle.
    throw new HttpError(401, result?.via === 'basic' ? 'Wrong user name or password, or the user may not sign in' : 'Missing or wrong bearer token');
  }

  private async requireUser(name: string): Promise<void> {
    if (!(await this.deps.archive.getUser(name))) throw new HttpError(404, `User "${name}" does not exist`);
  }
}
