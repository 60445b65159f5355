// The web access part of the search bench (`npm run bench:web`, issue 17): time to the first result
// page of a search, as people get it. An auditor (every archive) signs in once; then, per query shape,
//   - over HTTP (a cookie-carrying client, no browser): GET /search?q=… until the whole page is read,
//     one cold call then RUNS timed calls, p50 / p95;
//   - in Debian's Chromium (puppeteer-core, when installed): navigation to the result page until the
//     `load` event with the result list in the DOM, BROWSER_RUNS times, p50 / max.
// The page is the real one (layout, result rows, paging links), checked for the hit count it shows.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { SpawnedServer } from '../helpers/spawn-server.ts';
import { WebClient } from '../protocol/web-client.ts';

const CHROMIUM = '/usr/bin/chromium';

export interface WebShape {
  name: string;
  q: string;
  user?: string;
}

export interface WebResult {
  shape: WebShape;
  cold: number;
  runs: number[];
  browser: number[];
  bytes: number;
  error?: string;
}

/** The web listener's port, from the server's "ready" log line. */
export function webPort(server: SpawnedServer): number {
  for (const line of server.logs) {
    if (!line.includes('"Postern is ready"')) continue;
    const port = (JSON.parse(line) as { listeners?: Record<string, number | null> }).listeners?.web;
    if (typeof port === 'number' && port > 0) return port;
  }
  throw new Error('the server has no web listener (is the web plugin in the shipped config?)');
}

export async function webQueries(server: SpawnedServer, shapes: WebShape[], runs: number, browserRuns: number): Promise<{ results: WebResult[]; signInMs: number; auditor: string }> {
  const { name, password } = await server.api<{ name: string; password: string }>('POST', '/api/v1/auditors');
  const base = `http://127.0.0.1:${webPort(server)}`;
  const client = new WebClient(base);
  const t0 = performance.now();
  const signed = await client.signIn(name, password);
  const signInMs = performance.now() - t0;
  if (signed.status !== 303) throw new Error(`web sign-in answered ${signed.status}`);
  const url = (s: WebShape): string => `/search?${new URLSearchParams({ q: s.q, ...(s.user ? { user: s.user } : {}) })}`;
  const one = async (s: WebShape): Promise<{ ms: number; bytes: number }> => {
    const started = performance.now();
    const res = await client.get(url(s));
    const ms = performance.now() - started;
    if (res.status !== 200) throw new Error(`GET ${url(s)} answered ${res.status}: ${res.text.slice(0, 200)}`);
    return { ms, bytes: res.bytes.length };
  };
  const results: WebResult[] = [];
  for (const s of shapes) {
    try {
      const cold = await one(s);
      const times: number[] = [];
      for (let i = 0; i < runs; i++) times.push((await one(s)).ms);
      results.push({ shape: s, cold: cold.ms, runs: times, browser: [], bytes: cold.bytes });
    } catch (err) {
      results.push({ shape: s, cold: Number.NaN, runs: [], browser: [], bytes: 0, error: (err as Error).message });
    }
  }
  if (browserRuns > 0 && existsSync(CHROMIUM)) await inBrowser(base, client, shapes.map((s) => url(s)), results, browserRuns);
  return { results, signInMs, auditor: name };
}

async function inBrowser(base: string, client: WebClient, urls: string[], results: WebResult[], runs: number): Promise<void> {
  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'], userDataDir: join(tmpdir(), `bench-web-${process.pid}`) });
  try {
    const page = await browser.newPage();
    const host = new URL(base).hostname;
    await page.setCookie(...[...client.jar].map(([name, value]) => ({ name, value, domain: host, path: '/' })));
    for (const [i, u] of urls.entries()) {
      const r = results[i];
      if (!r || r.error) continue;
      for (let k = 0; k < runs; k++) {
        const started = performance.now();
        const res = await page.goto(base + u, { waitUntil: 'load', timeout: 120_000 });
        await page.waitForSelector('main', { timeout: 120_000 });
        r.browser.push(performance.now() - started);
        if (!res || res.status() !== 200) {
          r.error = `browser: ${res?.status() ?? 'no response'}`;
          break;
        }
      }
    }
  } finally {
    await browser.close();
  }
}
