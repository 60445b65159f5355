// The web access listener: plain node:http or node:https (certificate swappable on SIGHUP), bounded
// connections and request sizes, one route table. Every response carries the security headers (a strict
// Content-Security-Policy, nosniff, no referrer, no framing, no caching of pages); routes marked `session`
// need a live session (a GET without one goes to the sign-in page, a cookie naming an ended session
// gets the "session expired" page) and every POST needs the session's CSRF token and, when the browser
// sends one, a same-origin Origin header. The signed-in user is re-read on each request, so withdrawn
// access or a removed user ends the session at once. Hands routes a context; trusts nothing from the client.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { isPosternError, errorMessage } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { TlsMaterial } from '../../core/tls/dev-certificate.ts';
import type { ArchiveStore, UserRecord } from '../../core/storage/types.ts';
import { hasWebAccess, seesHolds, viewerOf, type Viewer } from './access.ts';
import { html, notice, page, type Html } from './html.ts';
import { sameText, type SessionStore, type WebSession } from './sessions.ts';

/** Enough for a page of picked messages (pageSize at most 500). */
export const FORM_LIMIT = 64 * 1024;

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  remote: string;
  secure: boolean;
  /** Set on `session` routes. */
  session: WebSession;
  user: UserRecord;
  viewer: Viewer;
  /** The POST body (application/x-www-form-urlencoded), checked for CSRF. */
  form: URLSearchParams;
}

export type PublicCtx = Omit<Ctx, 'session' | 'user' | 'viewer'>;

export type Handler = (ctx: Ctx) => Promise<void>;
export type PublicHandler = (ctx: PublicCtx) => Promise<void>;

/** A failure shown as a page with this status. */
export class WebError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface WebServerDeps {
  host: string;
  port: number;
  maxConnections: number;
  archive: ArchiveStore;
  sessions: SessionStore;
  accessGroups: readonly string[];
  log: Logger;
  assets: Map<string, { type: string; body: Buffer }>;
}

const PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; frame-src 'self'; base-uri 'none'";

export class WebServer {
  private readonly publicRoutes = new Map<string, PublicHandler>();
  private readonly sessionRoutes = new Map<string, Handler>();
  private server: Server | HttpsServer | null = null;
  private readonly sockets = new Set<Socket>();
  readonly secure: boolean;

  constructor(private readonly deps: WebServerDeps, private tls: TlsMaterial | null) {
    this.secure = tls !== null;
  }

  get cookieName(): string {
    return this.secure ? '__Host-postern' : 'postern';
  }

  get preCookieName(): string {
    return this.secure ? '__Host-postern-pre' : 'postern-pre';
  }

  addPublic(method: 'GET' | 'POST', path: string, handler: PublicHandler): void {
    this.publicRoutes.set(`${method} ${path}`, handler);
  }

  add(method: 'GET' | 'POST', path: string, handler: Handler): void {
    this.sessionRoutes.set(`${method} ${path}`, handler);
  }

  /** Every route as "METHOD /path", public ones and those that need a session (tests check each one). */
  routes(): { public: string[]; session: string[] } {
    return { public: [...this.publicRoutes.keys()], session: [...this.sessionRoutes.keys()] };
  }

  setTls(material: TlsMaterial): void {
    this.tls = material;
    if (this.server && 'setSecureContext' in this.server) this.server.setSecureContext({ cert: material.cert, key: material.key });
  }

  async listen(): Promise<number> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        this.deps.log.error('Web request failed', { err: errorMessage(err) });
        if (!res.headersSent) sendPage(res, 500, page('Error', null, notice('error', 'Something went wrong on the server.')));
        else res.destroy();
      });
    };
    const server = this.tls
      ? createHttpsServer({ cert: this.tls.cert, key: this.tls.key, minVersion: 'TLSv1.2' }, handler)
      : createHttpServer(handler);
    server.maxConnections = this.deps.maxConnections;
    server.headersTimeout = 20_000;
    server.requestTimeout = 60_000;
    server.keepAliveTimeout = 5_000;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.deps.port, this.deps.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, 2000).unref();
    });
  }

  get connections(): number {
    return this.sockets.size;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://web.invalid');
    } catch {
      return sendPage(res, 400, page('Bad request', null, notice('error', 'The address is not valid.')));
    }
    const method = req.method === 'HEAD' ? 'GET' : req.method ?? 'GET';
    const asset = method === 'GET' ? this.deps.assets.get(url.pathname) : undefined;
    if (asset) {
      res.writeHead(200, { ...securityHeaders(PAGE_CSP, this.secure), 'content-type': asset.type, 'content-length': asset.body.length, 'cache-control': 'private, max-age=3600' });
      res.end(asset.body);
      return;
    }
    const key = `${method} ${url.pathname}`;
    const base: PublicCtx = { req, res, url, remote: req.socket.remoteAddress ?? '', secure: this.secure, form: new URLSearchParams() };
    try {
      const pub = this.publicRoutes.get(key);
      if (pub) {
        if (method === 'POST') base.form = await readForm(req);
        return await pub(base);
      }
      const route = this.sessionRoutes.get(key);
      if (!route) {
        if (method !== 'GET' && method !== 'POST') throw new WebError(405, 'This method is not allowed here.');
        throw new WebError(404, 'There is no such page.');
      }
      const lookup = this.deps.sessions.lookup(cookies(req)[this.cookieName]);
      if (lookup.kind !== 'ok') {
        if (lookup.kind === 'none' && method === 'GET') return redirect(res, `/signin${url.pathname === '/' ? '' : `?next=${encodeURIComponent(url.pathname + url.search)}`}`, this.secure);
        return this.expired(res, url);
      }
      const { session } = lookup;
      const user = await this.deps.archive.getUser(session.user);
      if (!user || !hasWebAccess(user, this.deps.accessGroups)) {
        this.deps.sessions.end(session.id);
        return this.expired(res, url);
      }
      const ctx: Ctx = { ...base, session, user, viewer: viewerOf(user) };
      if (method === 'POST') {
        ctx.form = await readForm(req);
        if (!sameOrigin(req, this.secure)) throw new WebError(403, 'The form came from another site and was refused.');
        const token = ctx.form.get('_csrf') ?? '';
        if (!sameText(token, session.csrf)) throw new WebError(403, 'The form has expired or did not come from this site; go back, reload the page and try again.');
      }
      await route(ctx);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const [status, text] = errorPage(err);
      if (status >= 500) this.deps.log.error('Web request failed', { path: url.pathname, err: errorMessage(err) });
      const lookup = this.deps.sessions.lookup(cookies(req)[this.cookieName]);
      const layoutUser = lookup.kind === 'ok' ? await this.layoutUserOf(lookup.session) : null;
      sendPage(res, status, page(status === 404 ? 'Not found' : status === 403 ? 'Not allowed' : 'Error', layoutUser, notice('error', text)), this.secure);
    }
  }

  private async layoutUserOf(session: WebSession): Promise<{ name: string; csrf: string; holds: boolean } | null> {
    const user = await this.deps.archive.getUser(session.user).catch(() => null);
    return user ? { name: user.name, csrf: session.csrf, holds: seesHolds(viewerOf(user)) } : null;
  }

  private expired(res: ServerResponse, url: URL): void {
    const next = url.pathname === '/signout' ? '' : `?next=${encodeURIComponent(url.pathname + url.search)}`;
    res.setHeader('set-cookie', clearCookie(this.cookieName, this.secure));
    sendPage(res, 401, page('Session expired', null, html`<h1>Your session has ended</h1>
${notice('info', 'You were signed out because the session was idle for too long, reached its time limit, or the server restarted.')}
<p><a class="button" href="/signin${next}">Sign in again</a></p>`), this.secure);
  }
}

function errorPage(err: unknown): [number, string] {
  if (err instanceof WebError) return [err.status, err.message];
  if (isPosternError(err, 'FORBIDDEN')) return [403, err.message];
  if (isPosternError(err, 'NOT_FOUND')) return [404, err.message];
  if (isPosternError(err, 'INVALID_INPUT')) return [400, err.message];
  if (isPosternError(err, 'UNAVAILABLE')) return [503, err.message];
  if (err instanceof Error && 'status' in err && typeof err.status === 'number' && err.status >= 400 && err.status < 500) return [err.status, err.message];
  return [500, 'Something went wrong on the server.'];
}

export function securityHeaders(csp: string, secure: boolean): Record<string, string> {
  return {
    'content-security-policy': csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': csp.includes("frame-ancestors 'self'") ? 'SAMEORIGIN' : 'DENY',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=(), interest-cohort=()',
    ...(secure ? { 'strict-transport-security': 'max-age=31536000' } : {}),
  };
}

/** An HTML page (never cached). */
export function sendPage(res: ServerResponse, status: number, body: string, secure = false, extra: Record<string, string | number | string[]> = {}): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { ...securityHeaders(PAGE_CSP, secure), 'content-type': 'text/html; charset=utf-8', 'content-length': bytes.length, 'cache-control': 'no-store', ...extra });
  res.end(bytes);
}

export function redirect(res: ServerResponse, location: string, secure: boolean, extra: Record<string, string | string[]> = {}): void {
  res.writeHead(303, { ...securityHeaders(PAGE_CSP, secure), location, 'cache-control': 'no-store', 'content-length': 0, ...extra });
  res.end();
}

export function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const piece of (req.headers.cookie ?? '').slice(0, 8192).split(';')) {
    const eq = piece.indexOf('=');
    if (eq < 0) continue;
    const name = piece.slice(0, eq).trim();
    if (name !== '' && !(name in out)) out[name] = piece.slice(eq + 1).trim();
  }
  return out;
}

export function setCookie(name: string, value: string, secure: boolean): string {
  return `${name}=${value}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearCookie(name: string, secure: boolean): string {
  return `${name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}

/**
 * Browsers say where a POST comes from: Sec-Fetch-Site (must be same-origin when sent) and Origin (must be
 * this site when it names one; under Referrer-Policy no-referrer browsers send "null", which the CSRF
 * token and the SameSite=Strict cookie cover).
 */
function sameOrigin(req: IncomingMessage, secure: boolean): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = req.headers.origin;
  if (origin === undefined || origin === 'null') return true;
  const host = req.headers.host;
  return host !== undefined && origin === `${secure ? 'https' : 'http'}://${host}`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (Number(req.headers['content-length'] ?? 0) > FORM_LIMIT) throw new WebError(413, 'The form is too large.');
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > FORM_LIMIT) throw new WebError(413, 'The form is too large.');
    parts.push(chunk);
  }
  if (size === 0) return new URLSearchParams();
  if (type !== 'application/x-www-form-urlencoded') throw new WebError(415, 'Forms must be sent as application/x-www-form-urlencoded.');
  return new URLSearchParams(Buffer.concat(parts).toString('utf8'));
}

export type { Html };
