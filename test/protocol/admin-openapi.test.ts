// The admin API's OpenAPI document (GET /api/v1/openapi.json) on a live server with the shipped
// configuration's plugins: a valid OpenAPI 3.1 document by a maintained validator; every route in the
// route table documented (summary, access, a success status, the common errors) and in the document;
// every documented operation a route the router finds; GETs answered by a route over HTTP; the body
// schema shown is the one that validates (a field it requires is refused when missing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { Validator } from '@seriousme/openapi-schema-validator';
import { loadConfig } from '../../core/config/load.ts';
import { startServer } from '../../core/app/serve.ts';
import { createMemoryLogger } from '../../core/log.ts';
import { openApiPath } from '../../core/admin/openapi.ts';

const SHIPPED = fileURLToPath(new URL('../../config/postern.yaml', import.meta.url));
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

interface Operation {
  summary?: string;
  'x-postern-access'?: string[];
  responses: Record<string, unknown>;
  requestBody?: { content: Record<string, { schema: { required?: string[] } }> };
}
type Doc = { openapi: string; paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>> };

/** One request on its own connection (no keep-alive socket the server may be closing on a loaded machine). */
function call(port: number, method: string, path: string, auth: string | null, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request({
      host: '127.0.0.1', port, method, path, agent: false,
      headers: { ...(auth ? { authorization: auth } : {}), ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

test('the OpenAPI document is valid 3.1 and matches the route table both ways', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-openapi-'));
  const loaded = loadConfig(SHIPPED, {
    POSTERN_DATA_DIR: dir, POSTERN_SMTP_PORT: '0', POSTERN_ADMIN_PORT: '0', POSTERN_IMAP_PORT: '0', POSTERN_IMAPS_PORT: '0', POSTERN_WEB_PORT: '0',
  });
  loaded.config.shutdown.graceSeconds = 5;
  const running = await startServer(loaded, { log: createMemoryLogger('error').logger });
  try {
    const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    const port = running.adminPort;
    const get = (path: string): Promise<{ status: number; text: string }> => call(port, 'GET', path, `Bearer ${token}`);

    assert.equal((await call(port, 'GET', '/api/v1/openapi.json', null)).status, 401, 'the document needs a sign-in like every /api route');
    const res = await get('/api/v1/openapi.json');
    assert.equal(res.status, 200);
    const doc = JSON.parse(res.text) as Doc;
    assert.equal(doc.openapi, '3.1.0');

    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as never);
    assert.equal(validator.version, '3.1');
    assert.ok(result.valid, `OpenAPI validation failed: ${JSON.stringify(result.errors ?? null, null, 1).slice(0, 3000)}`);
    // The validator is not a rubber stamp: a broken copy fails.
    const broken = structuredClone(doc) as Record<string, unknown>;
    delete broken.info;
    assert.equal((await new Validator().validate(broken as never)).valid, false);

    const routes = running.app.service('adminRoutes');
    const table = routes.list();
    assert.ok(table.length >= 60, `the shipped configuration has its plugins' routes (${table.length})`);
    for (const r of table) {
      const what = `${r.method} ${r.pattern} (${r.owner})`;
      assert.ok(r.doc, `${what} has no description`);
      assert.ok(r.doc.summary.length > 5, `${what} has a summary`);
      assert.ok(r.doc.access.length > 0, `${what} says who may call it`);
      assert.ok(Object.keys(r.doc.responses).some((s) => Number(s) < 300), `${what} names its success status`);
      const op = doc.paths[openApiPath(r.pattern)]?.[r.method.toLowerCase() as (typeof METHODS)[number]];
      assert.ok(op, `${what} is in the document`);
      assert.deepEqual(op['x-postern-access'], [...r.doc.access], `${what}: access in the document`);
      for (const status of ['401', '403', '429', '500']) assert.ok(op.responses[status], `${what} documents ${status}`);
      if (r.doc.body) assert.ok(op.requestBody?.content['application/json'], `${what} documents its JSON body`);
    }

    let documented = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.startsWith('/api/v1/')) {
        const live = await call(port, 'GET', path, null);
        assert.notEqual(live.status, 404, `${path} exists`);
        continue;
      }
      for (const method of METHODS) {
        if (!item[method]) continue;
        documented++;
        // Fill each parameter with a sample and ask the router itself: the same route must answer.
        const parts = path.slice('/api/v1/'.length).split('/').map((s) => (s.startsWith('{') ? 'sample-1' : s));
        const found = routes.match(method.toUpperCase(), parts);
        assert.ok(found, `documented ${method.toUpperCase()} ${path} is routed`);
        assert.equal(openApiPath(found.route.pattern), path, `documented ${method.toUpperCase()} ${path} reaches its own route`);
        if (method === 'get') {
          const live = await get('/api/v1/' + parts.map(encodeURIComponent).join('/'));
          assert.ok(!(live.status === 404 && live.text.includes('No route for')), `GET ${path} is answered by a route (${live.status} ${live.text.slice(0, 200)})`);
        }
      }
    }
    assert.equal(documented, table.length, 'the document has exactly the routes of the table');

    // The body schema in the document is the one that validates: what it requires, the route requires.
    const addUser = doc.paths['/api/v1/users']?.post?.requestBody?.content['application/json']?.schema;
    assert.deepEqual(addUser?.required?.sort(), ['addresses', 'name']);
    const refused = await call(port, 'POST', '/api/v1/users', `Bearer ${token}`, { addresses: ['x@example.com'] });
    assert.equal(refused.status, 400);
    assert.match((JSON.parse(refused.text) as { error: string }).error, /"name" is missing/);
    assert.equal(routes.match('GET', ['nothing-here']), null);
  } finally {
    await running.shutdown('test');
    rmSync(dir, { recursive: true, force: true });
  }
});
