// Fuzz target for admin API request bodies: the real AdminServer on a loopback port with the routes
// that take a JSON body (users, IMAP access, compliance, jobs) and recording fakes behind them (no
// archive, no jobs run, no traffic beyond 127.0.0.1). Each input is sent as the body of every such route;
// the answer must be JSON with a client-error or success status, never a 500 (an unexpected error).
import { request, Agent } from 'node:http';
import { AdminServer } from '../../core/admin/server.ts';
import { AdminRoutes } from '../../core/admin/routes.ts';
import { addComplianceRoutes } from '../../core/compliance/routes.ts';
import { addJobRoutes } from '../../core/jobs/routes.ts';
import { addImapRoutes } from '../../plugins/imap/admin-routes.ts';
import { createMetrics } from '../../core/metrics.ts';
import { createMemoryLogger } from '../../core/log.ts';
import { check, preview, type FuzzGroup } from './target.ts';

const TOKEN = 'fuzz-admin-token-0123456789abcdef';

function user(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, addresses: [`${name}@example.com`], domains: [], pop3Users: [], groups: [], privileges: [], passwordHash: null, imapAccess: false, webAccess: false, ...extra };
}

/** Any method of the object answers a resolved promise of `result(name, args)`. */
function fake(result: (name: string, args: unknown[]) => unknown, own: Record<string, unknown> = {}): Record<string, unknown> {
  return new Proxy(own, {
    get(target, key) {
      if (typeof key === 'symbol' || key === 'then') return undefined;
      if (key in target) return target[key];
      return async (...args: unknown[]) => result(key, args);
    },
  });
}

let server: AdminServer | null = null;

async function start(): Promise<number> {
  const { logger } = createMemoryLogger('error');
  const archive = fake(() => ({}), {
    addUser: async (u: Record<string, unknown>) => user(String(u.name), u),
    updateUser: async (name: string) => user(name),
    getUser: async (name: string) => (name === 'alice' ? user('alice') : null),
    removeUser: async () => undefined,
    listUsers: async () => [user('alice')],
    folders: async () => [],
    retention: () => fake(() => ({})),
  });
  const service = fake(() => ({}), { createAuditor: async () => ({ user: user('auditor-1'), password: 'x' }) });
  const jobs = fake(() => [], {
    list: () => [],
    listKinds: () => [],
    show: (name: string) => ({ name, kind: 'verify' }),
    hostLocalOptions: () => [],
    cancel: (name: string) => ({ name }),
  });
  const routes = new AdminRoutes();
  addComplianceRoutes(routes, archive as never, service as never);
  addJobRoutes(routes, jobs as never);
  addImapRoutes(routes, archive as never, logger, 'imap', (u) => Boolean(u && (u as { imapAccess?: boolean }).imapAccess), async () => 'sent');
  server = new AdminServer({
    config: { host: '127.0.0.1', port: 0, metricsRequireToken: false } as never,
    token: TOKEN,
    archive: archive as never,
    intake: fake(() => []) as never,
    metrics: createMetrics(),
    log: logger,
    status: { status: async () => ({}) },
    tls: null,
    isReady: () => true,
    routes,
  });
  return server.listen();
}

/** Closes the client's kept-alive sockets and the server (every connection), so no socket is left being read. */
async function stop(): Promise<void> {
  agent.destroy();
  await server?.close();
  server = null;
  port = null;
}

let port: Promise<number> | null = null;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

function send(p: number, method: string, path: string, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: p, method, path: `/api/v1/${path}`, agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const ROUTES: Array<[string, string]> = [
  ['POST', 'users'], ['PATCH', 'users/alice'], ['PUT', 'users/alice/imap'],
  ['POST', 'policies'], ['POST', 'holds'], ['PUT', 'hold-everything'], ['POST', 'retention/alice/5/extend'], ['POST', 'entries/delete'], ['POST', 'purge'],
  ['PATCH', 'privileges/alice'], ['PUT', 'account/password'],
  ['POST', 'job-list'], ['POST', 'jobs'], ['PATCH', 'jobs/j1'], ['POST', 'jobs/j1/run'], ['POST', 'jobs/j1/cancel'],
];
const OK = new Set([200, 201, 202, 400, 403, 404, 409, 413, 423]);

const BODIES = [
  '', '{}', 'null', '[]', '"x"', '1', '{"name":"bob","addresses":["bob@example.com"],"groups":["staff"]}', '{"addAddresses":["x@y"],"removeGroups":["g"]}', '{"enabled":true}',
  '{"name":"p","match":{"users":["a"],"direction":"sent"},"minimum":"7y","maximum":"10y"}', '{"name":"h","description":"d","scope":{"users":["a"],"dateRange":{"from":"2024-01-01","field":"archivedAt"},"query":"x"}}',
  '{"on":false}', '{"folder":"Inbox","retainUntil":"2030-01-01T00:00:00Z"}', '{"entries":[{"user":"alice","folder":"Inbox","uid":1}]}', '{"dryRun":true,"batchSize":10}',
  '{"add":["archive"],"remove":["delete"]}', '{"password":"correct horse battery","user":"alice"}', '{"kind":"verify","options":{}}',
  '{"name":"j","kind":"verify","schedule":"0 3 * * *","enabled":true,"options":{"a":1},"by":"me"}', '{"schedule":null,"enabled":false,"options":{}}', '{"list":true,"by":"x"}',
  '{"__proto__":{"admin":true},"constructor":{"prototype":{}}}', `{"addresses":[${'"a@b",'.repeat(2000)}"c@d"]}`, `${'['.repeat(10000)}${']'.repeat(10000)}`, '{"a":"\\ud800"}', '{"uid":1e309}',
];

export const group: FuzzGroup = {
  group: 'admin',
  targets: [
    {
      name: 'admin.bodies',
      seeds: () => BODIES.map((b) => Buffer.from(b, 'utf8')),
      dictionary: ['{', '}', '[', ']', '"', ':', ',', 'null', 'true', 'false', '0', '-1', '1e309', '4294967296', '0.5', '"__proto__"', '"constructor"', '\\u0000', '\\ud800', '"name"', '"addresses"', '"entries"', '"uid"', '"user"', '"folder"', '"password"', '"options"', '"scope"', '"match"', '"dateRange"', '"admin"', '"auditor"', '"x"', '""', ' '],
      maxLength: 80 * 1024,
      cleanup: stop,
      async run(input) {
        port ??= start();
        const p = await port;
        for (const [method, path] of ROUTES) {
          const { status, text } = await send(p, method, path, input);
          check(OK.has(status), `${method} ${path} answers a success or client error, not ${status}`, text);
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            throw new Error(`${method} ${path} answered ${status} with a body that is not JSON: ${preview(text)}`);
          }
          if (status >= 400) check(typeof (parsed as { error?: unknown }).error === 'string', 'an error answer says what went wrong', text);
        }
      },
    },
  ],
};
