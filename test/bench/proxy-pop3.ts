// POP3 proxy benchmark: the same client retrieves N corpus messages directly from a real Dovecot
// and then through a real `postern serve` proxying to that Dovecot (first retrieval: every message
// captured durably before its final "." is released). Prints messages/s for both and the ratio.
// Each Postern pass starts only once the search index has caught up with the one before.
//   npx tsx test/bench/proxy-pop3.ts [--messages 2000] [--sessions 4] [--warmup 1000]
// BENCH_METRICS=1 adds Postern's CPU per message (per thread) and intake commit figures;
// BENCH_PERF=<file> records the captured pass with `perf`; POSTERN_PROFILE=<dir> writes a V8 profile.
// runPop3Bench() is what `npm run bench:proxy` calls together with the SMTP half.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../helpers/corpus.ts';
import { startDovecot } from '../interop/dovecot.ts';
import { freePort, startPostern } from '../interop/harness.ts';
import { waitSearchIdle } from '../helpers/spawn-server.ts';
import { Pop3TestClient } from '../protocol/pop3-helpers.ts';
import { describeMachineCpu, readMachineCpu } from './machine-cpu.ts';
import { CEILINGS } from './bare-relay.ts';

export interface Pop3BenchOptions {
  /** Messages retrieved per pass (spread over the sessions' mailboxes). */
  messages?: number;
  /** Concurrent POP3 sessions, one mailbox each. */
  sessions?: number;
  /** Messages captured through Postern (other mailboxes) before anything is measured. */
  warmup?: number;
  log?: (line: string) => void;
}

export interface Pop3BenchResult {
  /** Messages per second retrieved directly from Dovecot. */
  direct: number;
  /** Messages per second retrieved through Postern (first retrieval, captured). */
  proxied: number;
  /** Messages per second through Postern when every message is already archived (dedup). */
  proxiedAgain: number;
  /** Messages per second through each byte pipe of bare-relay.ts (no parsing, no capture): the ceilings here. */
  ceilings: Array<{ name: string; rate: number }>;
}

const PASSWORD = 'bench-pw';
const PROFILER = fileURLToPath(new URL('./proxy-cpu-profiler.mjs', import.meta.url));

function corpus(count: number): Buffer[] {
  const all = loadCorpus()
    .map((m) => (m.subarray(0, 5).toString() === 'From ' ? m.subarray(m.indexOf(10) + 1) : m))
    .filter((m) => !m.includes(13) && m[m.length - 1] === 10);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const m = all[i % all.length] as Buffer;
    // Unique bytes per copy so a corpus smaller than N still gives N distinct messages.
    out.push(i < all.length ? m : Buffer.concat([Buffer.from(`X-Bench-Copy: ${i}\n`), m]));
  }
  return out;
}

/** One session: login, RETR every message, QUIT. Returns the number retrieved. */
async function retrieveAll(port: number, user: string): Promise<number> {
  const c = await Pop3TestClient.open(port);
  try {
    if (!(await c.line()).startsWith('+OK')) throw new Error('no greeting');
    if (!(await c.cmd(`USER ${user}`)).startsWith('+OK')) throw new Error('USER refused');
    if (!(await c.cmd(`PASS ${PASSWORD}`)).startsWith('+OK')) throw new Error('PASS refused');
    const stat = await c.cmd('STAT');
    const count = Number(/^\+OK (\d+)/.exec(stat)?.[1] ?? NaN);
    if (!Number.isInteger(count)) throw new Error(`STAT: ${stat}`);
    for (let n = 1; n <= count; n++) {
      const st = await c.cmd(`RETR ${n}`);
      if (!st.startsWith('+OK')) throw new Error(`RETR ${n}: ${st}`);
      await c.body(60_000);
    }
    await c.cmd('QUIT');
    return count;
  } finally {
    c.close();
  }
}

/** Messages per second over all sessions; `machine` describes the whole machine's CPU use meanwhile. */
async function pass(port: number, users: string[]): Promise<{ rate: number; machine: string }> {
  const cpu0 = readMachineCpu();
  const t0 = process.hrtime.bigint();
  const counts = await Promise.all(users.map((u) => retrieveAll(port, u)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const total = counts.reduce((a, b) => a + b, 0);
  return { rate: total / seconds, machine: describeMachineCpu(cpu0, readMachineCpu(), total) };
}

/** The pid listening on a loopback TCP port (from `ss`), to read its CPU time; null if unknown. */
function listenerPid(port: number): number | null {
  try {
    const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
    const m = /pid=(\d+)/.exec(out);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** User + system CPU seconds the process has used so far (Linux /proc). */
function cpuSeconds(pid: number | null): number {
  if (pid === null) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds per thread name (main loop, libuv pool, V8 workers, RocksDB), for BENCH_METRICS=1. */
function threadCpu(pid: number | null): Map<string, number> {
  const out = new Map<string, number>();
  if (pid === null) return out;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : (/\((.*)\)/.exec(stat)?.[1] ?? '?').replace(/\d+$/, '');
      const f = stat.replace(/^.*\) /, '').split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // the thread ended
    }
  }
  return out;
}

function threadCpuDelta(before: Map<string, number>, after: Map<string, number>, messages: number): string {
  return [...after].map(([name, s]) => [name, s - (before.get(name) ?? 0)] as const).filter(([, s]) => s > 0)
    .sort((a, b) => b[1] - a[1]).map(([name, s]) => `${name} ${((1000 * s) / messages).toFixed(2)}`).join(', ');
}

/**
 * Waits until the intake depth gauge reads 0, polling /metrics every 25 ms (cheap, unlike the CLI
 * `status` that the harness's waitDrained spawns, whose start-up would compete for the CPU).
 */
async function drainedByMetrics(srv: { metrics(): Promise<string> }, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!/^postern_intake_depth_messages 0$/m.test(await srv.metrics())) {
    if (Date.now() > deadline) throw new Error('The intake did not drain in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Mean intake commit latency and callers per synced batch between two /metrics readings (BENCH_METRICS=1). */
function commitSummary(before: string, after: string): string {
  const val = (metrics: string, re: RegExp): number => Number(re.exec(metrics)?.[1] ?? 0);
  const delta = (re: RegExp): number => val(after, re) - val(before, re);
  const sum = delta(/^postern_commit_duration_seconds_sum\{store="intake"\} (\S+)$/m);
  const count = delta(/^postern_commit_duration_seconds_count\{store="intake"\} (\S+)$/m);
  const callers = delta(/^postern_group_commit_callers_sum\{store="intake"\} (\S+)$/m);
  const batches = delta(/^postern_group_commit_callers_count\{store="intake"\} (\S+)$/m);
  return `  intake during the pass: ${count} commits, mean ${((1000 * sum) / count).toFixed(2)} ms, ${(callers / batches).toFixed(2)} callers per synced batch`;
}

export async function runPop3Bench(opts: Pop3BenchOptions = {}): Promise<Pop3BenchResult> {
  const total = opts.messages ?? 2000;
  const sessions = opts.sessions ?? 4;
  const log = opts.log ?? ((l: string) => console.error(l));
  // Warm-up messages (other mailboxes, other bytes) go through Postern before anything is measured,
  // so the measured pass sees a warmed-up server: with 200 the optimising compiler still took about a
  // third of Postern's CPU during the pass (perf), with 1000+ it had settled (BENCH_WARMUP in bench:proxy).
  const warmCount = opts.warmup ?? 1000;
  const all = corpus(total + warmCount);
  const messages = all.slice(0, total);
  const warmMessages = all.slice(total);
  const users = Array.from({ length: sessions }, (_, i) => `bench${i}`);
  const warmUsers = users.map((u) => `warm-${u}`);
  const mailboxes = (names: string[], msgs: Buffer[]): Array<{ name: string; password: string; messages: Buffer[] }> =>
    names.map((name, i) => ({ name, password: PASSWORD, messages: msgs.filter((_, k) => k % sessions === i) }));
  const dc = await startDovecot({
    users: [...mailboxes(users, messages), ...mailboxes(warmUsers, warmMessages)],
    protocols: ['pop3'], implicitTls: false, name: 'bench-pop3',
  });
  let srv: Awaited<ReturnType<typeof startPostern>> | null = null;
  try {
    const pop3Port = await freePort();
    srv = await startPostern({
      name: 'bench-pop3',
      env: {
        POSTERN_POP3_UPSTREAM: `127.0.0.1:${dc.pop3Port}`, POSTERN_POP3_PORT: String(pop3Port), POSTERN_POP3_TLS_PORT: '0', POSTERN_LOG_LEVEL: 'warn',
        // POSTERN_PROFILE=<dir>: the server writes a V8 CPU profile there when it exits.
        ...(process.env.POSTERN_PROFILE || process.env.POSTERN_V8_FLAGS ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import tsx --import ${PROFILER}`.trim() } : {}),
      },
    });
    for (const u of [...users, ...warmUsers]) await srv.cliOk(['user', 'add', u, '--address', `${u}@bench.example`, '--pop3-user', u]);
    const bytes = messages.reduce((a, m) => a + m.length, 0);
    log(`pop3 bench: ${total} messages (${(bytes / total / 1024).toFixed(1)} KiB average) over ${sessions} sessions, after ${warmCount} warm-up messages`);
    await pass(pop3Port, warmUsers);
    await srv.waitDrained(120_000);
    await waitSearchIdle(srv); // the warm-up's indexing must not share the machine with the passes below
    await pass(dc.pop3Port, users); // warm Dovecot's caches and indexes
    const { rate: direct, machine: directCpu } = await pass(dc.pop3Port, users);
    log(`  direct from Dovecot:          ${direct.toFixed(0)} msg/s  (${directCpu})`);
    const ceilings: Pop3BenchResult['ceilings'] = [];
    for (const ceiling of CEILINGS) {
      const pipe = await ceiling.start(await freePort(), `127.0.0.1:${dc.pop3Port}`);
      if (!pipe) {
        log(`  ${ceiling.name}: not installed (test/interop/install-deps.sh installs it)`);
        continue;
      }
      try {
        await pass(pipe.port, users);
        const r = await pass(pipe.port, users);
        ceilings.push({ name: ceiling.name, rate: r.rate });
        log(`  ${`${ceiling.name}:`.padEnd(30)}${r.rate.toFixed(0)} msg/s  (${(r.rate / direct).toFixed(2)}x direct: a proxy that does nothing else; ${r.machine})`);
      } finally {
        await pipe.stop();
      }
    }
    const pid = listenerPid(pop3Port);
    const cpu = (since: number): string => `; Postern CPU ${((1000 * (cpuSeconds(pid) - since)) / total).toFixed(2)} ms/message`;
    let cpu0 = cpuSeconds(pid);
    const threads0 = threadCpu(pid);
    // BENCH_PERF=<file>: `perf record` the server (all threads, native frames) over the captured pass.
    const perf = process.env.BENCH_PERF && pid !== null ? spawn('perf', ['record', '-q', '-g', '-p', String(pid), '-o', process.env.BENCH_PERF], { stdio: 'ignore' }) : null;
    if (perf) await new Promise((r) => setTimeout(r, 500));
    const metricsBefore = process.env.BENCH_METRICS === '1' ? await srv.metrics() : '';
    const { rate: proxied, machine: proxiedCpu } = await pass(pop3Port, users);
    const metricsAfter = process.env.BENCH_METRICS === '1' ? await srv.metrics() : '';
    const passThreads = threadCpu(pid);
    const drainStart = Date.now();
    await drainedByMetrics(srv, 120_000);
    const drainSeconds = (Date.now() - drainStart) / 1000;
    const drained = `; archive drained ${drainSeconds.toFixed(1)} s after the pass`;
    if (perf) {
      perf.kill('SIGINT');
      await once(perf, 'exit');
    }
    log(`  through Postern (captured):   ${proxied.toFixed(0)} msg/s  (${(proxied / direct).toFixed(2)}x direct${cpu(cpu0)} incl. archiving${drained})`);
    log(`    during the pass: ${proxiedCpu}`);
    const untilArchived = total / (total / proxied + drainSeconds);
    log(`    until archived:  ${untilArchived.toFixed(0)} msg/s (${(untilArchived / direct).toFixed(2)}x direct) counting the archive's catch-up after the pass`);
    if (process.env.BENCH_METRICS === '1') {
      log(commitSummary(metricsBefore, metricsAfter));
      log(`  Postern CPU ms/message by thread during the pass: ${threadCpuDelta(threads0, passThreads, total)}`);
      log(`  Postern CPU ms/message by thread incl. archiving: ${threadCpuDelta(threads0, threadCpu(pid), total)}`);
    }
    await waitSearchIdle(srv); // nor the first pass's indexing with the second
    cpu0 = cpuSeconds(pid);
    const { rate: proxiedAgain, machine: againCpu } = await pass(pop3Port, users);
    log(`  through Postern (again):      ${proxiedAgain.toFixed(0)} msg/s  (${(proxiedAgain / direct).toFixed(2)}x direct${cpu(cpu0)})`);
    log(`    during the pass: ${againCpu}`);
    const archived = (await srv.waitDrained(120_000)).archive.messages;
    if (process.env.BENCH_KEEP_LOG) copyFileSync(srv.logFile, process.env.BENCH_KEEP_LOG);
    if (archived < total + warmCount) throw new Error(`Only ${archived} of ${total + warmCount} messages archived`);
    return { direct, proxied, proxiedAgain, ceilings };
  } finally {
    await srv?.stop();
    await dc.stop();
  }
}

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i === -1 ? NaN : Number(process.argv[i + 1]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = await runPop3Bench({ messages: flag('messages', 2000), sessions: flag('sessions', 4), warmup: flag('warmup', 1000) });
  console.log(JSON.stringify({ pop3: { directMsgPerSec: Math.round(r.direct), proxiedMsgPerSec: Math.round(r.proxied), ratio: Number((r.proxied / r.direct).toFixed(2)), proxiedAgainMsgPerSec: Math.round(r.proxiedAgain) } }));
}
