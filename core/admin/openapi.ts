// The admin API's OpenAPI 3.1 document, built from the route table's declarations (core/admin/routes.ts):
// every route with its summary, who may call it (x-postern-access), its path and query parameters, its
// JSON body as the JSON Schema of the very zod schema the handler validates with (z.toJSONSchema), and
// its statuses, plus the answers every /api route can give (401, 403, 429, 500) and /healthz and
// /metrics. Served at GET /api/v1/openapi.json to every signed-in principal. Pure apart from the route.
import { z } from 'zod';
import type { AdminRoutes, RouteDoc, RouteInfo } from './routes.ts';

export const OPENAPI_AREA = 'openapi.json';

type Json = Record<string, unknown>;

const COMMON: Readonly<Record<number, string>> = {
  401: 'missing or wrong credentials (one answer for every reason: no password oracle)',
  403: 'the principal lacks the privilege, or preview blocking refuses a body',
  429: 'too many failed sign-ins from this address or for this account; see Retry-After',
  500: 'internal error; the server log has the details',
};

const ACCESS_TEXT: Record<string, string> = {
  user: 'any signed-in user', token: 'the admin token only', admin: 'administrators', auditor: 'auditors', login: 'users with login',
  archive: 'the archive privilege', export: 'the export privilege', delete: 'the delete privilege', compliance: 'compliance officers',
};

function schemaOf(schema: z.ZodType): Json {
  const out = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  delete out.$schema;
  return out;
}

/** "users/:name/web" → "/api/v1/users/{name}/web". */
export function openApiPath(pattern: string): string {
  return '/api/v1/' + pattern.split('/').map((s) => (s.startsWith(':') ? `{${s.slice(1)}}` : s)).join('/');
}

function operationId(r: RouteInfo): string {
  const words = r.pattern.split(/[/.-]/).map((w) => (w.startsWith(':') ? `by ${w.slice(1)}` : w)).join(' ').split(' ').filter(Boolean);
  return r.method.toLowerCase() + words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
}

const errorRef = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };

function operation(r: RouteInfo): Json {
  const doc: RouteDoc = r.doc ?? { summary: `${r.method} ${r.pattern} (undocumented)`, access: [], responses: { 200: 'success' } };
  const parameters: Json[] = r.pattern.split('/').filter((s) => s.startsWith(':')).map((s) => ({ name: s.slice(1), in: 'path', required: true, schema: { type: 'string', minLength: 1 } }));
  if (doc.query) {
    const shape = schemaOf(doc.query);
    const props = (shape.properties ?? {}) as Record<string, Json>;
    const required = new Set((shape.required ?? []) as string[]);
    for (const [name, schema] of Object.entries(props)) {
      const { description, ...rest } = schema;
      parameters.push({ name, in: 'query', required: required.has(name), schema: rest, ...(typeof description === 'string' ? { description } : {}) });
    }
  }
  const responses: Record<string, Json> = {};
  for (const [status, meaning] of Object.entries({ ...COMMON, ...doc.responses })) {
    const code = Number(status);
    responses[status] = code < 400
      ? { description: meaning, content: { [doc.produces ?? 'application/json']: { schema: doc.produces ? { type: 'string', format: 'binary' } : { type: 'object' } } } }
      : { description: meaning, ...errorRef };
  }
  const access = doc.access.map((a) => ACCESS_TEXT[a] ?? a).join(', or ');
  return {
    operationId: operationId(r),
    summary: doc.summary,
    description: `Who may call it: ${access || 'not declared'}${doc.accessNote ? ` (${doc.accessNote})` : ''}.`,
    tags: [r.pattern.split('/')[0] ?? ''],
    'x-postern-access': [...doc.access],
    'x-postern-owner': r.owner,
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(doc.body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(doc.body) } } } } : {}),
    ...(doc.rawBody ? { requestBody: { required: true, content: { [doc.rawBody]: { schema: { type: 'string', format: 'binary' } } } } } : {}),
    responses,
  };
}

/** The whole document for the routes in the table. */
export function openApiDocument(routes: Pick<AdminRoutes, 'list'>, version: string): Json {
  const paths: Record<string, Record<string, Json>> = {
    '/healthz': {
      get: {
        operationId: 'getHealthz', summary: 'Readiness: 200 once the gateway is ready, 503 before and while stopping', security: [], tags: ['health'],
        responses: { 200: { description: 'ready', content: { 'application/json': { schema: { type: 'object' } } } }, 503: { description: 'not ready', content: { 'application/json': { schema: { type: 'object' } } } } },
      },
    },
    '/metrics': {
      get: {
        operationId: 'getMetrics', summary: 'Prometheus metrics (postern_*); the admin token is required when admin.metricsRequireToken is set', tags: ['health'],
        security: [{}, { adminToken: [] }],
        responses: { 200: { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } }, 401: { description: 'token required and missing or wrong', ...errorRef } },
      },
    },
  };
  for (const r of routes.list()) {
    const path = openApiPath(r.pattern);
    (paths[path] ??= {})[r.method.toLowerCase()] = operation(r);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Postern admin API', version,
      description: 'Administration of a Postern mail journaling gateway. Every /api/v1 route needs the admin token (data/admin.token), a user\'s name and password (HTTP Basic), or an API session token (POST /api/v1/sessions). Errors are JSON {"error": sentence}.',
    },
    servers: [{ url: '/' }],
    security: [{ adminToken: [] }, { basicAuth: [] }, { apiSession: [] }],
    paths,
    components: {
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'the token in <dataDir>/admin.token: every privilege' },
        basicAuth: { type: 'http', scheme: 'basic', description: 'an archive user\'s name and password (needs the login privilege); one scrypt check per request' },
        apiSession: { type: 'http', scheme: 'bearer', bearerFormat: 'pst_…', description: 'a short-lived token from POST /api/v1/sessions: acts as its user' },
      },
      schemas: { Error: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } } },
    },
  };
}

export function addOpenApiRoute(routes: AdminRoutes, version: string): void {
  routes.reserve([OPENAPI_AREA], 'core');
  let cached: Json | null = null;
  routes.add('GET', OPENAPI_AREA, async () => ({ body: (cached ??= openApiDocument(routes, version)) }), 'core', {
    summary: 'This document: the OpenAPI 3.1 description of the admin API', access: ['user'], responses: { 200: 'the document' },
  });
}
