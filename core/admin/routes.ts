// The admin API's route table for features outside the core server (compliance, jobs, import …):
// plugins and core modules add `/api/v1/<pattern>` routes here before the server starts. Every
// route sits behind the API credentials (core/compliance/access.ts); a handler returns a JSON body
// (sent as 200 unless it sets the status itself) or writes the response on its own and returns undefined.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PosternError } from '../errors.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteContext {
  method: HttpMethod;
  /** Path parameters by name (`users/:name` → params.name), already URL-decoded. */
  params: Record<string, string>;
  url: URL;
  req: IncomingMessage;
  res: ServerResponse;
  /** Who called: "admin-token" for the bearer token, else the name of the Basic-auth user. */
  principal: string;
}

export interface RouteReply {
  status?: number;
  body: unknown;
}

export type RouteHandler = (ctx: RouteContext) => Promise<RouteReply | undefined>;

interface Route {
  method: HttpMethod;
  segments: string[];
  owner: string;
  handler: RouteHandler;
}

export class AdminRoutes {
  private readonly routes: Route[] = [];
  /** First path segments only one owner may add routes under (its routes check privileges themselves). */
  private readonly reserved = new Map<string, string>();

  /**
   * Reserve areas (first path segments) for one owner: core/compliance/access.ts lets every signed-in
   * user through to them because their routes check privileges, so a route another module put there
   * would be open to everyone. PLUGIN_CONFLICT if another owner has a route there already.
   */
  reserve(areas: Iterable<string>, owner: string): void {
    for (const area of areas) {
      const other = this.routes.find((r) => r.segments[0] === area && r.owner !== owner);
      if (other) throw new PosternError('PLUGIN_CONFLICT', `Admin area "${area}" is reserved for "${owner}" but "${other.owner}" has a route there`);
      this.reserved.set(area, owner);
    }
  }

  /** Whether an area is reserved (its routes check privileges themselves, so every signed-in user reaches them). */
  isReserved(area: string): boolean {
    return this.reserved.has(area);
  }

  /** Add a route; `pattern` is relative to /api/v1/, with `:name` segments (e.g. "holds/:name"). */
  add(method: HttpMethod, pattern: string, handler: RouteHandler, owner = 'core'): void {
    const segments = pattern.replace(/^\/+|\/+$/g, '').split('/');
    const keeper = this.reserved.get(segments[0] ?? '');
    if (keeper !== undefined && keeper !== owner) throw new PosternError('PLUGIN_CONFLICT', `Admin area "${segments[0] ?? ''}" is reserved for "${keeper}"; "${owner}" cannot add ${method} "${pattern}"`);
    const clash = this.routes.find((r) => r.method === method && r.segments.join('/') === segments.join('/'));
    if (clash) throw new PosternError('PLUGIN_CONFLICT', `Admin route ${method} "${pattern}" is registered by both "${clash.owner}" and "${owner}"`);
    this.routes.push({ method, segments, owner, handler });
  }

  /** The route matching a request's method and /api/v1/-relative path parts, with its parameters. */
  match(method: string, parts: string[]): { handler: RouteHandler; params: Record<string, string> } | null {
    for (const r of this.routes) {
      if (r.method !== method || r.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (const [i, seg] of r.segments.entries()) {
        const part = parts[i] as string;
        if (seg.startsWith(':')) params[seg.slice(1)] = part;
        else if (seg !== part) {
          ok = false;
          break;
        }
      }
      if (ok) return { handler: r.handler, params };
    }
    return null;
  }
}
