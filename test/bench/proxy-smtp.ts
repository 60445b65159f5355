// SMTP relay proxy benchmark: Postfix's smtp-source sends the same load (a) directly to smtp-sink
// and (b) through Postern's relay port (a real `postern serve`, durable defaults, fresh data dir)
// to the same smtp-sink. Prints messages/s for both and the ratio proxied/direct (target >= 0.7).
// After the warm-up the search index catches up before anything is measured. After the proxied run it
// waits for the archive to drain and checks every message was captured.
//
//   npx tsx test/bench/proxy-smtp.ts
//   BENCH_MESSAGES=2000 BENCH_SESSIONS=16 BENCH_REUSE=1 npx tsx test/bench/proxy-smtp.ts
//
// Environment (defaults in brackets): BENCH_WARMUP [1000] messages through Postern first, BENCH_MESSAGES [5000], BENCH_SESSIONS [8], BENCH_SIZE [20000]
// bytes, BENCH_REUSE [0] (1 = many messages per connection, smtp-source -d). Loopback only.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnServer, waitDrained, waitSearchIdle } from '../helpers/spawn-server.ts';
import { freePort, waitForPort } from '../interop/harness.ts';
import { describeMachineCpu, readMachineCpu } from './machine-cpu.ts';
import { CEILINGS } from './bare-relay.ts';

export interface SmtpProxyBenchOptions {
  messages?: number;
  /** Messages relayed through Postern before the measured run (JIT warm-up); default 1000. */
  warmup?: number;
  sessions?: number;
  size?: number;
  /** Send many messages per connection (smtp-source -d) instead of one per connection. */
  reuse?: boolean;
  log?: (line: string) => void;
}

/** User + system CPU seconds of a process so far (Linux /proc), null when unknown. */
function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

/** Seconds for smtp-source to send the whole load to port. */
async function timeSource(port: number, o: Required<Omit<SmtpProxyBenchOptions, 'log' | 'warmup'>>): Promise<number> {
  const args = ['-s', String(o.sessions), '-m', String(o.messages), '-l', String(o.size), '-f', 'bench-sender@bench.test', '-t', 'bench@bench.test', ...(o.reuse ? ['-d'] : []), `127.0.0.1:${port}`];
  const started = process.hrtime.bigint();
  await run('/usr/sbin/smtp-source', args);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

export async function runSmtpProxyBench(opts: SmtpProxyBenchOptions = {}): Promise<{ direct: number; proxied: number; ceilings: Array<{ name: string; rate: number }> }> {
  const o = { messages: opts.messages ?? 5000, sessions: opts.sessions ?? 8, size: opts.size ?? 20000, reuse: opts.reuse ?? false };
  const warm = opts.warmup ?? 1000;
  const log = opts.log ?? (() => undefined);
  const sinkPort = await freePort();
  const sink: ChildProcess = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, '-m', '512', `127.0.0.1:${sinkPort}`, '512'], { stdio: 'ignore' });
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-bench-relay-'));
  try {
    await waitForPort(sinkPort);
    // Warm-up, then the direct run.
    await timeSource(sinkPort, { ...o, messages: Math.min(200, o.messages) });
    const machine0 = readMachineCpu();
    const directSeconds = await timeSource(sinkPort, o);
    const direct = o.messages / directSeconds;
    log(`direct  : ${o.messages} messages in ${directSeconds.toFixed(2)} s = ${direct.toFixed(0)} msg/s (${describeMachineCpu(machine0, readMachineCpu(), o.messages)})`);
    const ceilings: Array<{ name: string; rate: number }> = [];
    for (const ceiling of CEILINGS) {
      const pipe = await ceiling.start(await freePort(), `127.0.0.1:${sinkPort}`);
      if (!pipe) {
        log(`ceiling : ${ceiling.name} not installed (test/interop/install-deps.sh installs it)`);
        continue;
      }
      try {
        await timeSource(pipe.port, { ...o, messages: Math.min(200, o.messages) });
        const m0 = readMachineCpu();
        const seconds = await timeSource(pipe.port, o);
        const rate = o.messages / seconds;
        ceilings.push({ name: ceiling.name, rate });
        log(`ceiling : ${o.messages} messages in ${seconds.toFixed(2)} s = ${rate.toFixed(0)} msg/s through ${ceiling.name}, ${(rate / direct).toFixed(2)}x direct: a proxy that does nothing else (${describeMachineCpu(m0, readMachineCpu(), o.messages)})`);
      } finally {
        await pipe.stop();
      }
    }

    const relayPort = await freePort();
    const server = await spawnServer(dataDir, { POSTERN_RELAY_PORT: String(relayPort), POSTERN_RELAY_UPSTREAM: `127.0.0.1:${sinkPort}` });
    try {
      await server.api('POST', '/api/v1/users', { name: 'bench', addresses: ['bench@bench.test'] }).catch(() => undefined);
      await timeSource(relayPort, { ...o, messages: warm });
      await waitDrained(server, 600000);
      await waitSearchIdle(server); // the warm-up's indexing must not share the machine with the measured run
      const cpu0 = cpuSeconds(server.child.pid);
      const machine1 = readMachineCpu();
      const proxiedSeconds = await timeSource(relayPort, o);
      const proxied = o.messages / proxiedSeconds;
      const relayCpu = cpuSeconds(server.child.pid);
      log(`proxied : ${o.messages} messages in ${proxiedSeconds.toFixed(2)} s = ${proxied.toFixed(0)} msg/s (${describeMachineCpu(machine1, readMachineCpu(), o.messages)})`);
      const drainStart = Date.now();
      await waitDrained(server, 600000);
      const drainSeconds = (Date.now() - drainStart) / 1000;
      log(`archive drained ${drainSeconds.toFixed(1)} s after the last reply; until archived ${(o.messages / (proxiedSeconds + drainSeconds)).toFixed(0)} msg/s`);
      const metrics = await fetch(`http://127.0.0.1:${server.adminPort}/metrics`).then((r) => r.text());
      const delivered = Number(/postern_relay_transactions_total\{outcome="delivered"\} (\d+)/.exec(metrics)?.[1] ?? 0);
      const expected = o.messages + warm;
      if (delivered !== expected) throw new Error(`Relay counted ${delivered} delivered transactions, expected ${expected}`);
      const connects = Number(/postern_relay_upstream_duration_seconds_count\{phase="connect"\} (\d+)/.exec(metrics)?.[1] ?? 0);
      log(`upstream: ${connects} connections opened for ${expected} transactions (the rest reused from the pool)`);
      const cpu1 = cpuSeconds(server.child.pid);
      if (cpu0 !== null && cpu1 !== null && relayCpu !== null) {
        log(`cpu     : Postern ${((1000 * (relayCpu - cpu0)) / o.messages).toFixed(2)} ms CPU per message while relaying, ${((1000 * (cpu1 - cpu0)) / o.messages).toFixed(2)} ms with archiving (all threads)`);
      }
      log(`ratio   : ${(proxied / direct).toFixed(2)}x direct (target >= 0.7)`);
      return { direct, proxied, ceilings };
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  } finally {
    sink.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const num = (name: string, dflt: number): number => {
    const v = process.env[name];
    if (v === undefined || v === '') return dflt;
    if (!/^[1-9]\d*$/.test(v)) throw new Error(`${name} must be a positive integer (got "${v}")`);
    return Number(v);
  };
  const opts = { warmup: num('BENCH_WARMUP', 1000), messages: num('BENCH_MESSAGES', 5000), sessions: num('BENCH_SESSIONS', 8), size: num('BENCH_SIZE', 20000), reuse: process.env.BENCH_REUSE === '1' };
  console.log(`SMTP relay proxy bench: ${opts.messages} messages of ${opts.size} bytes, ${opts.sessions} sessions, ${opts.reuse ? 'many messages' : 'one message'} per connection`);
  runSmtpProxyBench({ ...opts, log: (l) => console.log(l) }).then(({ direct, proxied }) => {
    console.log(`direct=${direct.toFixed(0)} proxied=${proxied.toFixed(0)} ratio=${(proxied / direct).toFixed(2)}`);
  }, (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
