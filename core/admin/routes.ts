// The admin API's route table: core, feature modules and plugins add `/api/v1/<pattern>` routes here
// before the server starts; requests are matched by find-my-way (static segments before `:name`
// parameters, no order dependence). Every route sits behind the API credentials (core/compliance/access.ts).
// A route is one declaration: method, pattern, owner, handler and its description (summary, who may
// call it, the zod schemas of its body and query, its statuses), from which core/admin/openapi.ts builds
// the OpenAPI document; the handlers validate with those same schemas. A handler returns a JSON body
// (sent as 200 unless it sets the status itself) or writes the response on its own and returns undefined.
import type { IncomingMessage, ServerResponse } from 'node:http';
import FindMyWay from 'find-my-way';
import type { z } from 'zod';
import { PosternError } from '../errors.ts';
import type { Privilege } from '../storage/types.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export const HTTP_METHODS: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

export interface RouteContext {
  method: HttpMethod;
  /** Path parameters by name (`users/:name` → params.name), already URL-decoded. */
  params: Record<string, string>;
  url: URL;
  req: IncomingMessage;
  res: ServerResponse;
  /** Who called: "admin-token" for the bearer token, else the name of the signed-in user. */
  principal: string;
  /** Preview blocking for this request (core/compliance/access.ts); absent means headers only. */
  headersOnly?: boolean;
  /** The API session (core/admin/sessions.ts) the request was signed in with, if any. */
  sessionId?: string;
}

export interface RouteReply {
  status?: number;
  body: unknown;
}

export type RouteHandler = (ctx: RouteContext) => Promise<RouteReply | undefined>;

/**
 * Who may call a route: any one of these suffices. Privileges are MailStore's (admin counts as every
 * one but auditor); "user" is any signed-in user (the route narrows it further, said in `access`);
 * "token" is the admin token alone.
 */
export type RouteAccess = Privilege | 'user' | 'token';

/** A route's description for the OpenAPI document (core/admin/openapi.ts). */
export interface RouteDoc {
  summary: string;
  access: readonly RouteAccess[];
  /** What the privileges alone do not say (own archive only, creator only …). */
  accessNote?: string;
  /** The JSON body's schema, the one the handler validates with. */
  body?: z.ZodType;
  /** A body that is not JSON: its media type (e.g. message/rfc822). */
  rawBody?: string;
  /** Query parameters (an object of optional strings or numbers). */
  query?: z.ZodObject;
  /** Statuses this route answers besides the ones every route can (401, 403, 429, 500): status → meaning. */
  responses: Readonly<Record<number, string>>;
  /** The media type of the success answer when it is not JSON. */
  produces?: string;
}

export interface RouteInfo {
  method: HttpMethod;
  /** Relative to /api/v1/, with `:name` parameters. */
  pattern: string;
  owner: string;
  doc: RouteDoc | null;
}

interface Stored extends RouteInfo {
  handler: RouteHandler;
}

/** find-my-way's route pattern for an /api/v1/-relative pattern ("users/:name" → "/users/:name"). */
const routerPath = (pattern: string): string => '/' + pattern;

export class AdminRoutes {
  private readonly routes: Stored[] = [];
  // Semicolons are path characters here (find-my-way treats them so by default).
  private readonly router = FindMyWay({
    caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 4096,
  });
  /** First path segments only one owner may add routes under (its routes check privileges themselves). */
  private readonly reserved = new Map<string, string>();

  /**
   * Reserve areas (first path segments) for one owner: core/compliance/access.ts lets every signed-in
   * user through to them because their routes check privileges, so a route another module put there
   * would be open to everyone. PLUGIN_CONFLICT if another owner has a route there already.
   */
  reserve(areas: Iterable<string>, owner: string): void {
    for (const area of areas) {
      const other = this.routes.find((r) => r.pattern.split('/')[0] === area && r.owner !== owner);
      if (other) throw new PosternError('PLUGIN_CONFLICT', `Admin area "${area}" is reserved for "${owner}" but "${other.owner}" has a route there`);
      this.reserved.set(area, owner);
    }
  }

  /** Whether an area is reserved (its routes check privileges themselves, so every signed-in user reaches them). */
  isReserved(area: string): boolean {
    return this.reserved.has(area);
  }

  /**
   * Add a route; `pattern` is relative to /api/v1/, with `:name` segments (e.g. "holds/:name"), and
   * `doc` describes it for the OpenAPI document (a route without one is listed there bare, and the
   * document test fails).
   */
  add(method: HttpMethod, pattern: string, handler: RouteHandler, owner = 'core', doc?: RouteDoc): void {
    const clean = pattern.replace(/^\/+|\/+$/g, '');
    const area = clean.split('/')[0] ?? '';
    const keeper = this.reserved.get(area);
    if (keeper !== undefined && keeper !== owner) throw new PosternError('PLUGIN_CONFLICT', `Admin area "${area}" is reserved for "${keeper}"; "${owner}" cannot add ${method} "${pattern}"`);
    // Two routes that differ only in parameter names would match the same requests.
    const shape = (p: string): string => p.replace(/:[^/]+/g, ':');
    const clash = this.routes.find((r) => r.method === method && shape(r.pattern) === shape(clean));
    if (clash) throw new PosternError('PLUGIN_CONFLICT', `Admin route ${method} "${pattern}" is registered by both "${clash.owner}" and "${owner}"`);
    if (clean.split('/').some((s) => s === '' || s === ':' || /[*?]/.test(s))) {
      throw new PosternError('PLUGIN_CONFLICT', `Admin route ${method} "${pattern}" of "${owner}" is not a valid pattern`);
    }
    const stored: Stored = { method, pattern: clean, owner, doc: doc ?? null, handler };
    this.router.on(method, routerPath(clean), () => undefined, stored);
    this.routes.push(stored);
  }

  /** The route matching a request's method and /api/v1/-relative path parts (URL-decoded), with its parameters. */
  match(method: string, parts: readonly string[]): { handler: RouteHandler; params: Record<string, string>; route: RouteInfo } | null {
    if (!(HTTP_METHODS as readonly string[]).includes(method) || parts.some((p) => p === '')) return null;
    const found = this.router.find(method as HttpMethod, '/' + parts.map(encodeURIComponent).join('/'));
    if (!found) return null;
    const route = found.store as Stored;
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(found.params)) {
      if (typeof v !== 'string' || v === '') return null;
      params[k] = v;
    }
    return { handler: route.handler, params, route: { method: route.method, pattern: route.pattern, owner: route.owner, doc: route.doc } };
  }

  /** Every route, in the order added. */
  list(): RouteInfo[] {
    return this.routes.map(({ method, pattern, owner, doc }) => ({ method, pattern, owner, doc }));
  }
}
