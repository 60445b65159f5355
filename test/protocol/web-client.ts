// A browser stand-in for the web access protocol tests: fetch with a cookie jar (Set-Cookie kept per
// name, sent back on every request), no automatic redirects, the CSRF token read from the last page's
// forms, and a test server with the web (and search) plugins, users with passwords and web access.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { hashPassword } from '../../core/smtp/password.ts';
import type { Config } from '../../core/config/schema.ts';
import type { Privilege } from '../../core/storage/types.ts';

export const PASSWORD = 'correct horse battery';

export interface WebResponse {
  status: number;
  headers: Headers;
  text: string;
  bytes: Buffer;
  /** Raw Set-Cookie header lines. */
  setCookies: string[];
}

export class WebClient {
  readonly jar = new Map<string, string>();
  lastText = '';

  constructor(readonly base: string) {}

  /** A form as a record, or as URLSearchParams when a field repeats (picked messages). */
  async request(method: 'GET' | 'POST', path: string, form?: Record<string, string> | URLSearchParams, headers: Record<string, string> = {}): Promise<WebResponse> {
    const h: Record<string, string> = { ...headers };
    if (this.jar.size > 0) h['cookie'] = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (form) {
      body = new URLSearchParams(form).toString();
      h['content-type'] ??= 'application/x-www-form-urlencoded';
    }
    const res = await fetch(this.base + path, { method, headers: h, redirect: 'manual', ...(body !== undefined ? { body } : {}) });
    const setCookies = res.headers.getSetCookie();
    for (const line of setCookies) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    const text = bytes.toString('utf8');
    if ((res.headers.get('content-type') ?? '').startsWith('text/html')) this.lastText = text;
    return { status: res.status, headers: res.headers, text, bytes, setCookies };
  }

  get(path: string, headers: Record<string, string> = {}): Promise<WebResponse> {
    return this.request('GET', path, undefined, headers);
  }

  /** The CSRF token of the last HTML page's forms. */
  csrf(): string {
    const m = /name="_csrf" value="([^"]+)"/.exec(this.lastText);
    if (!m) throw new Error(`No CSRF token on the last page: ${this.lastText.slice(0, 300)}`);
    return m[1] as string;
  }

  /** POST a form with the CSRF token of the last page. */
  post(path: string, form: Record<string, string> | URLSearchParams = {}, headers: Record<string, string> = {}): Promise<WebResponse> {
    if (form instanceof URLSearchParams) {
      const withToken = new URLSearchParams(form);
      withToken.set('_csrf', this.csrf());
      return this.request('POST', path, withToken, headers);
    }
    return this.request('POST', path, { _csrf: this.csrf(), ...form }, headers);
  }

  async signIn(user: string, password = PASSWORD): Promise<WebResponse> {
    await this.get('/signin');
    return this.post('/signin', { user, password, next: '/search' });
  }
}

export interface WebTestUser {
  name: string;
  addresses: string[];
  web?: boolean;
  privileges?: Privilege[];
  groups?: string[];
}

export interface WebTestServer extends TestServer {
  webPort: number;
  base: string;
  client(): WebClient;
  /** Archive a message straight into one user's folder (as an importer would). */
  file(user: string, folder: string, message: string | Buffer): Promise<void>;
  /** Wait until the search index has caught up (when the search plugin runs). */
  indexed(): Promise<void>;
}

export async function startWebServer(
  users: WebTestUser[], options: { web?: Record<string, unknown>; search?: boolean; signIn?: Partial<Config['signIn']>; configure?: (c: Config) => void } = {},
): Promise<WebTestServer> {
  const server = await startTestServer((c) => {
    if (options.search !== false) c.plugins.push({ name: 'search', config: { intervalSeconds: 1 } });
    c.plugins.push({ name: 'web', config: { port: 0, ...options.web } });
    Object.assign(c.signIn, { baseDelayMs: 0, ...options.signIn });
    options.configure?.(c);
  });
  const hash = await hashPassword(PASSWORD);
  for (const u of users) {
    await server.archive.addUser({ name: u.name, addresses: u.addresses, groups: u.groups ?? [], privileges: u.privileges ?? [] });
    await server.archive.updateUser(u.name, { passwordHash: hash, webAccess: u.web ?? true });
  }
  const web = server.running.app.service('web');
  const base = `${web.scheme()}://127.0.0.1:${web.port()}`;
  return {
    ...server,
    webPort: web.port(),
    base,
    client: () => new WebClient(base),
    async file(user, folder, message) {
      const bytes = Buffer.isBuffer(message) ? message : Buffer.from(message.replace(/\r?\n/g, '\r\n'));
      await server.running.app.service('capture').submit(bytes, {
        listener: 'test-import', envelope: { mailFrom: 'sender@example.org', rcptTo: [`${user}@example.com`] }, session: { remoteAddress: '127.0.0.1', helo: 'test', user: null },
        assign: { user, direction: 'received', folder, exclusive: true, reason: 'test import' },
      });
      await server.settle();
    },
    async indexed() {
      if (options.search === false) return;
      const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
      for (let i = 0; i < 300; i++) {
        const res = await fetch(`http://127.0.0.1:${server.adminPort}/api/v1/search/status`, { headers: { authorization: `Bearer ${token}` } });
        if (((await res.json()) as { pending: number }).pending === 0) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('The search index did not catch up in 30 s');
    },
  };
}

export function mail(opts: { from: string; to: string; subject: string; body?: string; date?: string; headers?: string[] }): string {
  return [
    `From: ${opts.from}`, `To: ${opts.to}`, `Subject: ${opts.subject}`, `Date: ${opts.date ?? 'Mon, 02 Mar 2026 10:00:00 +0000'}`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@test.example>`, ...(opts.headers ?? []),
    'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', opts.body ?? 'Hello there.', '',
  ].join('\r\n');
}
