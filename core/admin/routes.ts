// The admin API's route table for features outside the core server (compliance, jobs, import …):
// plugins and core modules add `/api/v1/<pattern>` routes here before the server starts. Every
// route sits behind the bearer token; a handler returns a JSON body (sent as 200 unless it sets
// the status itself) or writes the response on its own and returns undefined.
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
  /** Who called: always "admin-token" for now (the token is the only API credential). */
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

  /** Add a route; `pattern` is relative to /api/v1/, with `:name` segments (e.g. "holds/:name"). */
  add(method: HttpMethod, pattern: string, handler: RouteHandler, owner = 'core'): void {
    const segments = pattern.replace(/^\/+|\/+$/g, '').split('/');
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
