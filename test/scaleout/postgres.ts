// A private PostgreSQL 15 cluster for the scale-out tier and bench: `initdb` in a temp dir, listening only on
// 127.0.0.1:<free port>, password (SCRAM) auth for one superuser, fsync left on (durability is tested).
// PostgreSQL refuses to run as root, so as root every server program runs as the `postgres` OS user
// (runuser); otherwise as the current user. stop()/start() pause and resume the same cluster on the same
// port and data; destroy() stops it and removes the directory. The cluster's coordinates are kept in
// <dir>/state.json so another process (a fault test, the tier's launcher) can reopen it with openPostgres().
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { z } from 'zod';
import { freePort, run, runOk } from '../interop/harness.ts';
import { isAlive, readPidFile, tailFile, waitGone } from './daemon.ts';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
const SUPERUSER = 'postern';

export interface PostgresOptions {
  /** Directory for the cluster (created; its parents must be searchable by the postgres OS user). Default: a new temp dir. */
  dir?: string;
  /** Database created for the caller (default "postern"). */
  database?: string;
}

export interface Postgres {
  /** postgres://postern:<password>@127.0.0.1:<port>/<database> */
  url: string;
  port: number;
  dir: string;
  dataDir: string;
  logFile: string;
  running(): boolean;
  /** Shuts the server down, keeping its data: `fast` (clean) or `immediate` (like a crash; recovery on start). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again on the same data and port; resolves when it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its directory (kept when POSTERN_KEEP_TMP=1). */
  destroy(): Promise<void>;
}

const State = z.object({ port: z.number().int().min(1).max(65535), password: z.string().min(16), database: z.string().regex(/^[a-z_][a-z0-9_]*$/) });
type State = z.infer<typeof State>;

const asRoot = (): boolean => process.getuid?.() === 0;

/** Runs a PostgreSQL program as the OS user that owns the cluster. */
function pgRun(program: string, args: string[], timeoutMs = 90_000): ReturnType<typeof runOk> {
  const bin = join(PG_BIN, program);
  return asRoot() ? runOk('runuser', ['-u', 'postgres', '--', bin, ...args], { timeoutMs }) : runOk(bin, args, { timeoutMs });
}

function ownByServerUser(path: string): void {
  if (!asRoot()) return;
  const uid = Number(userUid('postgres'));
  const gid = Number(userGid('postgres'));
  chownSync(path, uid, gid);
}

function passwdField(user: string, field: 2 | 3): string {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  const value = line?.split(':')[field];
  if (value === undefined) throw new Error(`OS user "${user}" does not exist (run test/scaleout/install-deps.sh)`);
  return value;
}
const userUid = (user: string): string => passwdField(user, 2);
const userGid = (user: string): string => passwdField(user, 3);

/** Makes the cluster's files in `dir` (nothing runs yet): run/ and data/ owned by the server's OS user, state.json. */
async function initCluster(dir: string, state: State): Promise<void> {
  chmodSync(dir, 0o755);
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  ownByServerUser(runDir);
  mkdirSync(join(dir, 'data'), { mode: 0o700 });
  ownByServerUser(join(dir, 'data'));
  if (asRoot() && (await run('runuser', ['-u', 'postgres', '--', 'test', '-w', runDir])).code !== 0) {
    throw new Error(`OS user postgres cannot reach "${runDir}": every parent directory needs search (x) permission for others`);
  }
  const pwFile = join(runDir, 'pw');
  writeFileSync(pwFile, `${state.password}\n`, { mode: 0o600 });
  ownByServerUser(pwFile);
  try {
    // --no-sync only skips flushing initdb's own files at the end (2 s here): the page cache survives any
    // process crash a test causes, and the server itself runs with fsync on.
    await pgRun('initdb', ['-D', join(dir, 'data'), '-U', SUPERUSER, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '--data-checksums', '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions', '--no-sync']);
  } finally {
    rmSync(pwFile, { force: true });
  }
  appendFileSync(join(dir, 'data', 'postgresql.conf'), [
    '',
    '# postern scale-out test tier',
    "listen_addresses = '127.0.0.1'",
    `port = ${state.port}`,
    `unix_socket_directories = '${runDir}'`,
    'fsync = on',
    'synchronous_commit = on',
    'max_connections = 200',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<Postgres> {
  if (!existsSync(join(PG_BIN, 'initdb'))) throw new Error(`PostgreSQL 15 is not installed in "${PG_BIN}" (run test/scaleout/install-deps.sh)`);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'postern-pg-'));
  mkdirSync(dir, { recursive: true });
  if (existsSync(join(dir, 'state.json'))) throw new Error(`"${dir}" already holds a cluster: use openPostgres()`);
  const state: State = { port: await freePort(), password: randomBytes(18).toString('base64url'), database: opts.database ?? 'postern' };
  try {
    await initCluster(dir, state);
  } catch (err) {
    if (process.env.POSTERN_KEEP_TMP !== '1') rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const cluster = openPostgres(dir);
  try {
    await cluster.start();
    const admin = new pg.Client({ connectionString: cluster.url.replace(/\/[^/]*$/, '/postgres') });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${state.database}`);
    } finally {
      await admin.end();
    }
  } catch (err) {
    const log = tailFile(cluster.logFile);
    await cluster.destroy();
    throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${log}`);
  }
  return cluster;
}

/** Reopens a cluster made by startPostgres() (possibly in another process) from its directory. */
export function openPostgres(dir: string): Postgres {
  const state = State.parse(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'run', 'postgresql.log');
  const pidFile = join(dataDir, 'postmaster.pid');
  const serverPid = (): number | undefined => readPidFile(pidFile);
  const running = (): boolean => {
    const pid = serverPid();
    return pid !== undefined && isAlive(pid);
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    const pid = serverPid();
    if (pid === undefined || !isAlive(pid)) return;
    try {
      await pgRun('pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '30', 'stop'], 45_000);
    } catch {
      // pg_ctl failed or timed out: the server is killed below.
    }
    if (!(await waitGone(pid, 5_000))) {
      process.kill(pid, 'SIGKILL');
      if (!(await waitGone(pid, 5_000))) throw new Error(`PostgreSQL postmaster ${pid} is still running after SIGKILL`);
    }
  };
  return {
    url: `postgres://${SUPERUSER}:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/${state.database}`,
    port: state.port,
    dir,
    dataDir,
    logFile,
    running,
    stop,
    async start() {
      if (running()) return;
      try {
        await pgRun('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start'], 75_000);
      } catch (err) {
        throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${tailFile(logFile)}`);
      }
    },
    async destroy() {
      await stop('fast');
      if (process.env.POSTERN_KEEP_TMP !== '1') rmSync(dir, { recursive: true, force: true });
    },
  };
}

