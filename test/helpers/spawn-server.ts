// Runs `postern serve` as a child process (for crash and shutdown tests): ephemeral ports read from
// the "ready" log line, admin API calls with the data directory's token.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCES_CLI = fileURLToPath(new URL('../../core/cli/postern.js', import.meta.url));
/** The sources' entry, or another tree's (BENCH_SERVE_CLI: benches run the compiled tree, as deployed). */
const cli = (): string => process.env.BENCH_SERVE_CLI || SOURCES_CLI;

export interface SpawnedServer {
  child: ChildProcess;
  smtpPort: number;
  adminPort: number;
  logs: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
}

export async function spawnServer(dataDir: string, env: Record<string, string> = {}): Promise<SpawnedServer> {
  const child = spawn(process.execPath, [...(process.env.POSTERN_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.POSTERN_PROFILE] : []), cli(), 'serve'], {
    env: { ...process.env, POSTERN_DATA_DIR: dataDir, POSTERN_SMTP_PORT: '0', POSTERN_ADMIN_PORT: '0', POSTERN_IMAP_PORT: '0', POSTERN_IMAPS_PORT: '0', POSTERN_WEB_PORT: '0', POSTERN_LOG_FORMAT: 'json', POSTERN_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = await new Promise<{ smtpPort: number; adminPort: number }>((resolve, reject) => {
    let partial = '';
    // Readiness is not what these tests measure: under a heavily loaded machine a start can take
    // tens of seconds (tsx compiling the tree in each process), so the bound is generous.
    const timer = setTimeout(() => reject(new Error(`Server not ready in 90 s:\n${logs.join('\n')}`)), 90000);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        logs.push(line);
        if (line.includes('"Postern is ready"')) {
          const j = JSON.parse(line) as { smtpPort: number; adminPort: number };
          clearTimeout(timer);
          resolve({ smtpPort: j.smtpPort, adminPort: j.adminPort });
        }
      }
    });
    void exited.then(() => reject(new Error(`Server exited before ready:\n${logs.join('\n')}`)));
  });
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  return {
    child, ...ready, logs, exited,
    async api<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await fetch(`http://127.0.0.1:${ready.adminPort}${path}`, {
        method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const json = (await res.json()) as T;
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    },
  };
}

/** Wait until the intake is empty (everything acknowledged is archived). */
export async function waitDrained(s: SpawnedServer, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await s.api<{ intake: { depth: number; corrupt: number } }>('GET', '/api/v1/status');
    if (st.intake.depth === 0) return;
    if (Date.now() > deadline) throw new Error(`Intake not drained: ${JSON.stringify(st.intake)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Wait until the search plugin has indexed everything archived and merged its tables (GET
 * /api/v1/search/status): a bench's next measured run then does not share the machine with indexing.
 */
export async function waitSearchIdle(s: Pick<SpawnedServer, 'api'>, timeoutMs = 600000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await s.api<{ pending: number; merging: boolean }>('GET', '/api/v1/search/status');
    if (st.pending === 0 && !st.merging) return;
    if (Date.now() > deadline) throw new Error(`The search index did not catch up: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** SIGTERM the server and wait until it has exited (graceful shutdown). */
export async function stopServer(s: SpawnedServer): Promise<void> {
  s.child.kill('SIGTERM');
  await s.exited;
}
