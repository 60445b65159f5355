// Starts and stops the scale-out tier's engines for test/scaleout/run.sh, all state under one directory:
//   tsx test/scaleout/launch.ts up DIR ENV_FILE   PostgreSQL in DIR/pg and Ceph in DIR/ceph (started side by
//                                                 side); writes their POSTERN_TEST_* variables to ENV_FILE as
//                                                 shell assignments. On failure: logs' tails, nothing left running.
//   tsx test/scaleout/launch.ts down DIR          stops whatever of them runs (by pid files), removes DIR
//                                                 (kept when POSTERN_KEEP_TMP=1).
//   tsx test/scaleout/launch.ts logs DIR          the tail of every engine log.
// The daemons outlive this process (they are daemons): `down` finds them again from DIR.
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { engineEnv, openCeph, openPostgres, startCeph, startPostgres } from './engines.ts';
import { tailFile } from './daemon.ts';

const shellQuote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;
const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`;

function logs(dir: string): string {
  const parts: string[] = [];
  const pgLog = join(dir, 'pg', 'run', 'postgresql.log');
  if (existsSync(pgLog)) parts.push(`--- postgresql.log\n${tailFile(pgLog, 20)}`);
  if (existsSync(join(dir, 'ceph', 'state.json'))) parts.push(openCeph(join(dir, 'ceph')).logTails(20));
  return parts.join('\n');
}

async function down(dir: string): Promise<void> {
  const failures: string[] = [];
  if (existsSync(join(dir, 'ceph', 'state.json'))) await openCeph(join(dir, 'ceph')).stop().catch((err: Error) => failures.push(`Ceph: ${err.message}`));
  if (existsSync(join(dir, 'pg', 'state.json'))) await openPostgres(join(dir, 'pg')).stop().catch((err: Error) => failures.push(`PostgreSQL: ${err.message}`));
  if (failures.length > 0) throw new Error(`Engines not stopped: ${failures.join('; ')}`);
  if (process.env.POSTERN_KEEP_TMP !== '1') rmSync(dir, { recursive: true, force: true });
}

async function up(dir: string, envFile: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755); // PostgreSQL runs as another OS user (postgres) below it
  const t0 = Date.now();
  const [pgResult, cephResult] = await Promise.allSettled([
    startPostgres({ dir: join(dir, 'pg') }).then((p) => (console.error(`launch: PostgreSQL up after ${seconds(t0)}`), p)),
    startCeph({ dir: join(dir, 'ceph') }).then((c) => (console.error(`launch: Ceph up after ${seconds(t0)}`), c)),
  ]);
  if (pgResult.status === 'rejected' || cephResult.status === 'rejected') {
    for (const r of [pgResult, cephResult]) if (r.status === 'rejected') console.error(`launch: ${(r.reason as Error).message}`);
    await down(dir).catch((err: Error) => console.error(`launch: ${err.message}`));
    process.exitCode = 1;
    return;
  }
  const env = engineEnv(pgResult.value, cephResult.value);
  writeFileSync(envFile, Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}\n`).join(''), { mode: 0o600 });
  console.error(`launch: engines up after ${seconds(t0)} (PostgreSQL ${env.POSTERN_TEST_PG_URL.replace(/:[^:@/]*@/, ':***@')}, S3 ${env.POSTERN_TEST_S3_ENDPOINT})`);
}

const [command, dir, envFile] = process.argv.slice(2);
if (dir === undefined || !dir.startsWith('/') || (command === 'up' && envFile === undefined)) {
  console.error('usage: launch.ts up DIR ENV_FILE | down DIR | logs DIR   (DIR absolute)');
  process.exit(2);
}
try {
  if (command === 'up' && envFile !== undefined) await up(dir, envFile);
  else if (command === 'down') await down(dir);
  else if (command === 'logs') console.log(logs(dir));
  else {
    console.error(`launch.ts: unknown command "${command ?? ''}"`);
    process.exitCode = 2;
  }
} catch (err) {
  console.error(`launch.ts ${command ?? ''}: ${(err as Error).message}`);
  process.exitCode = 1;
}
