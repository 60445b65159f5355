// The admin HTTP API (/api/v1/…), /metrics and /healthz. Every /api route needs the bearer token from
// the data directory, a user's name and password (HTTP Basic; privileges in core/compliance/access.ts),
// or a user's API session token (core/admin/sessions.ts). Loopback by default; a non-loopback address is
// refused unless TLS is configured. Anything but a valid token goes through the shared sign-in throttle
// (401, or 429 with Retry-After). Routes live in one table (core/admin/routes.ts, find-my-way): the
// server's own (core-routes.ts, the OpenAPI document) beside those of feature modules and plugins.
// Request bodies are bounded and validated; responses are JSON except raw message bytes. A request
// that fails in any way is answered (or its connection closed) and recorded; it never ends the process.
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps, Server as HttpsServer } from 'node:https';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { PosternError, errorMessage, isPosternError } from '../errors.ts';
import type { ArchiveStore } from '../storage/types.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { Intake } from '../intake/intake.ts';
import { tokenMatches } from './token.ts';
import { isLoopback } from '../config/host-port.ts';
import { HttpError, send } from './http.ts';
import { AdminRoutes, type HttpMethod } from './routes.ts';
import { addCoreRoutes, type StatusSource } from './core-routes.ts';
import { addOpenApiRoute } from './openapi.ts';
import type { ApiSessions } from './sessions.ts';
import { SESSIONS_AREA } from './session-routes.ts';
import type { AdminRequestInfo, SignInFailure } from '../audit/admin-audit.ts';
import { TOKEN_PRINCIPAL, type ApiAccess, type RequestView } from '../compliance/access.ts';

export { publicUser, type StatusSource } from './core-routes.ts';

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
  /** The route table plugins and feature modules added to; the server adds its own routes to it. */
  routes?: AdminRoutes;
  /** Users' API session tokens (POST /api/v1/sessions); without it only the admin token and Basic work. */
  sessions?: ApiSessions;
  /** The version the OpenAPI document names. */
  version?: string;
  /** Hooks to tell plugins about directory changes (`userChanged`). */
  hooks?: HookRegistry;
  /** Called after every request (the audit log's wrapper: token failures, changes, message reads). */
  onRequest?: (info: AdminRequestInfo) => Promise<void>;
  /** Basic-auth users, privilege checks and preview blocking (core/compliance/access.ts); without it only the token works. */
  access?: ApiAccess;
}

/** Who a request acts as, and how its sign-in failed (for the audit record). */
interface RequestAuth {
  principal: string;
  signInFailure?: SignInFailure;
  /** The API session the request signed in with. */
  sessionId?: string;
}

/** How long a closing admin server waits for requests in progress before it drops their connections. */
const CLOSE_GRACE_MS = 5000;

/** The request target as a URL; 400 for one that cannot be parsed. */
function requestUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://admin');
  } catch {
    throw new HttpError(400, 'The request target is not a valid path');
  }
}

export class AdminServer {
  private server: Server | null = null;
  private readonly routes: AdminRoutes;

  constructor(private readonly deps: AdminDeps) {
    this.routes = deps.routes ?? new AdminRoutes();
    addCoreRoutes(this.routes, { archive: deps.archive, intake: deps.intake, status: deps.status, log: deps.log, hooks: deps.hooks });
    addOpenApiRoute(this.routes, deps.version ?? '0.0.0');
  }

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
      : isPosternError(err, 'INVALID_INPUT') ? 400
      : isPosternError(err, 'UNAVAILABLE') || isPosternError(err, 'SHUTTING_DOWN') ? 503 : 500;
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
    const { metrics } = this.deps;
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
    const principal = await this.signIn(req, res, method, path, remote, who);
    const parts = path.slice('/api/v1/'.length).split('/').map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        throw new HttpError(400, `Path segment "${part.slice(0, 64)}" has a malformed percent escape`);
      }
    });
    who.principal = principal;
    const view: RequestView = (await this.deps.access?.check(who.principal, method, parts)) ?? { headersOnly: false };
    const found = this.routes.match(method, parts);
    if (!found) throw new HttpError(404, `No route for ${method} "${path}"`);
    const reply = await found.handler({
      method: method as HttpMethod, params: found.params, url, req, res, principal: who.principal, headersOnly: view.headersOnly,
      ...(who.sessionId !== undefined ? { sessionId: who.sessionId } : {}),
    });
    if (reply && !res.headersSent) send(res, reply.status ?? 200, reply.body);
  }

  /** The principal of an /api request: the token, a session's user, or a Basic user through the sign-in throttle (401, 429). */
  private async signIn(req: IncomingMessage, res: ServerResponse, method: string, path: string, remote: string, who: RequestAuth): Promise<string> {
    if (this.authorized(req)) return TOKEN_PRINCIPAL;
    const header = req.headers.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    const session = bearer !== undefined && this.deps.sessions ? await this.deps.sessions.verify(bearer) : null;
    if (session) {
      who.sessionId = session.session.id;
      return session.user;
    }
    // Making a session is audited once, by its route, not also as a Basic sign-in.
    const makesSession = method === 'POST' && path === `/api/v1/${SESSIONS_AREA}`;
    const result = this.deps.access ? await this.deps.access.authenticate(header, remote, { recordSuccess: !makesSession }) : null;
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
}
