// Harness for the interop tier: runs the real `postern serve` on free loopback ports with a fresh
// data directory, drives the real CLI, and runs external peers (swaks, Postfix, promtool).
//
// Every server writes its log to a file; when a test fails inside `server.diagnose()` the last
// lines of that log are appended to the error and the whole log is kept under
// $TMPDIR/postern-interop-logs/ so the failure report survives the temp-dir cleanup.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(REPO, 'core', 'cli', 'postern.js');
export const FAILURE_LOG_DIR = join(tmpdir(), 'postern-interop-logs');

const HEALTH_TIMEOUT_MS = 20_000;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string | Buffer;
  timeoutMs?: number;
}

/** Runs a program to completion; stdin is closed (or fed `input`) so nothing can prompt. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, {
        cwd: opts.cwd ?? REPO,
        env: opts.env ?? process.env,
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      reject(err as Error);
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: no exit after ${timeoutMs} ms\nstdout: ${Buffer.concat(out).toString('latin1')}\nstderr: ${Buffer.concat(err).toString()}`));
    }, timeoutMs);
    child.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === 'ENOENT' ? new Error(`${cmd} is not installed (run test/interop/install-deps.sh)`) : e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like run(), but a non-zero exit is an error carrying the command's output. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code ?? r.signal}\nstdout:\n${r.stdout.toString('latin1')}\nstderr:\n${r.stderr}`);
  }
  return r;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port; fails when `child` exits first or at the timeout. */
export async function waitForPort(port: number, options: { child?: ChildProcess; timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    if (options.child && options.child.exitCode !== null) throw new Error(`exited with ${options.child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`Nothing listens on ${port}`);
    await sleep(50);
  }
}

/** SIGTERM a peer's process and wait for it; SIGKILL after `graceMs` if it is still running. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(() => r(true), graceMs); })]);
  clearTimeout(timer);
  if (killed) {
    child.kill('SIGKILL');
    await exited;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a value other than undefined, or fails with `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? `; last error: ${(last as Error).message}` : ''}`);
    }
    await sleep(everyMs);
  }
}

/** Makes a temp dir (removed by the returned cleanup unless POSTERN_KEEP_TMP=1). */
export function makeTempDir(prefix: string): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    cleanup() {
      if (process.env.POSTERN_KEEP_TMP === '1') return;
      rmSync(path, { recursive: true, force: true });
    },
  };
}

export interface ArchiveRow {
  uid: number;
  date: string;
  from: string;
  subject: string;
}

export interface Status {
  intake: { depth: number; [k: string]: unknown };
  archive: { messages: number; [k: string]: unknown };
  [k: string]: unknown;
}

export interface PosternServer {
  smtpPort: number;
  adminPort: number;
  dataDir: string;
  logFile: string;
  env: NodeJS.ProcessEnv;
  /** Runs `postern ARGS` against this server; never throws on a non-zero exit. */
  cli(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Runs `postern ARGS` and returns stdout; throws (with stderr) on a non-zero exit. */
  cliOk(args: readonly string[]): Promise<Buffer>;
  addUser(name: string, addresses: readonly string[]): Promise<void>;
  list(user: string, folder?: string): Promise<ArchiveRow[]>;
  get(user: string, uid: number, folder?: string): Promise<Buffer>;
  status(): Promise<Status>;
  /** Waits until everything acknowledged has left the intake (status intake.depth == 0). */
  waitDrained(timeoutMs?: number): Promise<Status>;
  /** Waits until USER's FOLDER lists exactly one message whose subject contains `marker`. */
  waitForMessage(user: string, folder: string, marker: string, timeoutMs?: number): Promise<ArchiveRow>;
  metrics(): Promise<string>;
  /** One admin API request (bearer token from the data directory); throws on a non-2xx status. */
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  logs(): string;
  /** Runs fn; on failure appends the server log tail to the error and keeps the log file. */
  diagnose<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** SIGTERM, then waits up to timeoutMs for exit (SIGKILL and an error after that). Returns the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Name used for the kept failure log. */
  name?: string;
}

function parseList(text: string): ArchiveRow[] {
  const rows: ArchiveRow[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const parts = line.split('\t');
    if (parts.length < 4) throw new Error(`archive list: malformed line (want UID<TAB>DATE<TAB>FROM<TAB>SUBJECT): ${JSON.stringify(line)}`);
    const uid = Number(parts[0]);
    if (!Number.isInteger(uid) || uid <= 0) throw new Error(`archive list: bad UID in ${JSON.stringify(line)}`);
    rows.push({ uid, date: parts[1] ?? '', from: parts[2] ?? '', subject: parts.slice(3).join('\t') });
  }
  return rows;
}

/** Starts `node core/cli/postern.js serve` with a fresh data dir on free loopback ports. */
export async function startPostern(opts: StartOptions = {}): Promise<PosternServer> {
  if (!existsSync(CLI)) throw new Error(`Postern CLI not found at ${CLI}`);
  let lastError: Error | undefined;
  // A port found free can be taken before the server binds it: retry on EADDRINUSE.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastError = err as Error;
      if (!/EADDRINUSE/.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error('startPostern failed');
}

async function startOnce(opts: StartOptions): Promise<PosternServer> {
  const tmp = makeTempDir('postern-interop-');
  const dataDir = join(tmp.path, 'data');
  mkdirSync(dataDir);
  const logFile = join(tmp.path, 'server.log');
  const smtpPort = await freePort();
  let adminPort = await freePort();
  while (adminPort === smtpPort) adminPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    POSTERN_DATA_DIR: dataDir,
    POSTERN_SMTP_PORT: String(smtpPort),
    POSTERN_ADMIN_PORT: String(adminPort),
    POSTERN_SMTP_HOST: '127.0.0.1',
    POSTERN_ADMIN_HOST: '127.0.0.1',
    POSTERN_LOG_FORMAT: 'json',
    // The shipped config enables the IMAP and web plugins; tests never take their standard ports.
    POSTERN_IMAP_PORT: '0',
    POSTERN_IMAPS_PORT: '0',
    POSTERN_WEB_PORT: '0',
    ...opts.env,
  };
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [CLI, 'serve'], { cwd: REPO, env, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  const readLog = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const tail = (n = 60): string => readLog().split('\n').slice(-n).join('\n');
  const keepLog = (name: string): string => {
    mkdirSync(FAILURE_LOG_DIR, { recursive: true });
    const dest = join(FAILURE_LOG_DIR, `${name.replace(/[^A-Za-z0-9._-]+/g, '_')}-${Date.now()}.log`);
    if (existsSync(logFile)) copyFileSync(logFile, dest);
    return dest;
  };

  // Ready when /healthz answers 200.
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  for (;;) {
    if (exit) {
      const log = readLog();
      tmp.cleanup();
      throw new Error(`postern serve exited (${exit.code ?? exit.signal}) before /healthz was up:\n${log}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/healthz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      const kept = keepLog(opts.name ?? 'startup');
      tmp.cleanup();
      throw new Error(`postern serve: /healthz not 200 within ${HEALTH_TIMEOUT_MS} ms (log kept at ${kept}):\n${tail()}`);
    }
    await sleep(100);
  }

  const cli = (args: readonly string[], o: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> =>
    run(process.execPath, [CLI, ...args], { env, timeoutMs: o.timeoutMs ?? 30_000, ...(o.input === undefined ? {} : { input: o.input }) });
  const cliOk = async (args: readonly string[]): Promise<Buffer> => {
    const r = await cli(args);
    if (r.code !== 0) throw new Error(`postern ${args.join(' ')} exited with ${r.code ?? r.signal}\nstderr: ${r.stderr}\nstdout: ${r.stdout.toString()}`);
    return r.stdout;
  };
  const folderArgs = (folder?: string): string[] => (folder === undefined ? [] : ['--folder', folder]);
  let stopped = false;

  const server: PosternServer = {
    smtpPort,
    adminPort,
    dataDir,
    logFile,
    env,
    cli,
    cliOk,
    async addUser(name, addresses) {
      await cliOk(['user', 'add', name, ...addresses.flatMap((a) => ['--address', a])]);
    },
    async list(user, folder) {
      return parseList((await cliOk(['archive', 'list', user, ...folderArgs(folder)])).toString('utf8'));
    },
    async get(user, uid, folder) {
      return cliOk(['archive', 'get', user, String(uid), ...folderArgs(folder)]);
    },
    async status() {
      const out = (await cliOk(['status', '--json'])).toString('utf8');
      let parsed: Status;
      try {
        parsed = JSON.parse(out) as Status;
      } catch {
        throw new Error(`status --json printed invalid JSON: ${out}`);
      }
      if (typeof parsed?.intake?.depth !== 'number' || typeof parsed?.archive?.messages !== 'number') {
        throw new Error(`status --json lacks intake.depth / archive.messages: ${out}`);
      }
      return parsed;
    },
    async waitDrained(timeoutMs = 30_000) {
      return waitFor('intake depth 0', async () => {
        const s = await server.status();
        return s.intake.depth === 0 ? s : undefined;
      }, timeoutMs, 250);
    },
    async waitForMessage(user, folder, marker, timeoutMs = 15_000) {
      let last: ArchiveRow[] = [];
      try {
        return await waitFor(`a message with "${marker}" in ${user}/${folder}`, async () => {
          last = await server.list(user, folder);
          const hits = last.filter((r) => r.subject.includes(marker));
          if (hits.length > 1) throw new Error(`${hits.length} messages with "${marker}" in ${user}/${folder}: ${JSON.stringify(hits)}`);
          return hits[0];
        }, timeoutMs, 300);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${user}/${folder} lists: ${JSON.stringify(last)}`);
      }
    },
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
      const text = await res.text();
      if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${text}`);
      return text;
    },
    async api<T>(method: string, path: string, body?: unknown): Promise<T> {
      const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
        method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return JSON.parse(text) as T;
    },
    logs: readLog,
    async diagnose(name, fn) {
      try {
        return await fn();
      } catch (err) {
        const kept = keepLog(name);
        const e = err instanceof Error ? err : new Error(String(err));
        e.message += `\n--- postern log (full copy at ${kept}), last lines: ---\n${tail()}`;
        throw e;
      }
    },
    async stop(timeoutMs = 15_000) {
      if (stopped) return exit?.code ?? null;
      stopped = true;
      try {
        if (!exit) child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const result = await Promise.race([
          exited,
          new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), timeoutMs); }),
        ]);
        clearTimeout(timer);
        if (!result) {
          child.kill('SIGKILL');
          await exited;
          const kept = keepLog(`${opts.name ?? 'server'}-stop-timeout`);
          throw new Error(`postern serve did not exit within ${timeoutMs} ms of SIGTERM (killed; log at ${kept}):\n${tail()}`);
        }
        return result.code;
      } finally {
        tmp.cleanup();
      }
    },
  };
  return server;
}
