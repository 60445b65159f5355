// The capture + archiving half of a proxied message in isolation: an in-process Postern with the
// shipped config (dedup and IMAP plugins, brotli blobs, durable intake) takes N corpus messages through
// capture.submit (as the POP3 proxy does, `callers` at a time, each assigned to a user), then waits
// until all are archived. Prints CPU ms per message for the submit phase and for everything, with no
// client or upstream process competing for the cores. Figures only.
//   npx tsx test/bench/proxy-archive-cost.ts [--messages 2000] [--callers 4] [--warm 300] [--codec none|deflate|brotli] [--cpu-prof out.cpuprofile]
// The first 300 messages warm up (not measured); JIT compilation still runs during the measured window
// then (~0.1–0.2 ms/message of background compiler threads): a larger --warm shows the steady state.
// "by thread" splits the CPU time by thread id (Linux): main = the event loop; the others are V8's
// platform workers (optimising compiler, GC helpers) and libuv's pool (RocksDB reads/writes, fsync).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../core/config/load.ts';
import { startServer } from '../../core/app/serve.ts';
import { createMemoryLogger } from '../../core/log.ts';
import type { IntakeMeta } from '../../core/intake/intake.ts';
import { loadCorpus } from '../helpers/corpus.ts';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? fallback);
};
const total = Number(arg('messages', '2000'));
const callers = Number(arg('callers', '4'));
const profileOut = arg('cpu-prof', '');
const codec = arg('codec', '');
const warm = Number(arg('warm', '300'));

/** CPU ticks (utime + stime, 1/100 s) per thread from /proc (Linux only; empty elsewhere). */
function threadTicks(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[] = [];
  try { tids = readdirSync('/proc/self/task'); } catch { return out; }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(`${tid}:${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`, Number(f[11]) + Number(f[12]));
    } catch { /* thread ended meanwhile */ }
  }
  return out;
}

const base = loadCorpus().map((m) => (m.subarray(0, 5).toString() === 'From ' ? m.subarray(m.indexOf(10) + 1) : m));
const message = (i: number): Buffer => Buffer.concat([Buffer.from(`X-Bench-Copy: ${i}\r\n`), base[i % base.length] as Buffer]);

const dir = mkdtempSync(join(tmpdir(), 'postern-archive-cost-'));
const loaded = loadConfig(fileURLToPath(new URL('../../config/postern.yaml', import.meta.url)), {
  POSTERN_DATA_DIR: dir, POSTERN_SMTP_PORT: '0', POSTERN_ADMIN_PORT: '0', POSTERN_IMAP_PORT: '0', POSTERN_IMAPS_PORT: '0',
});
if (codec === 'none' || codec === 'deflate' || codec === 'brotli') loaded.config.storage.compression.codec = codec;
const { logger } = createMemoryLogger('warn');
const running = await startServer(loaded, { log: logger });
try {
  const archive = running.app.service('archive');
  for (let u = 0; u < callers; u++) await archive.addUser({ name: `bench${u}`, addresses: [`bench${u}@bench.example`] });
  const capture = running.app.service('capture');
  const meta = (u: number): IntakeMeta => ({
    listener: 'pop3', envelope: { mailFrom: '', rcptTo: [] }, session: { remoteAddress: '127.0.0.1', helo: '', user: `bench${u}` },
    assign: { user: `bench${u}`, direction: 'received', reason: `pop3 login bench${u}` },
  });
  const run = async (from: number, count: number): Promise<void> => {
    let next = from;
    await Promise.all(Array.from({ length: callers }, async (_, u) => {
      while (next < from + count) await capture.submit(message(next++), meta(u));
    }));
  };
  await run(0, warm);
  await running.queue.idle();
  let session: Session | null = null;
  if (profileOut) {
    session = new Session();
    session.connect();
    session.post('Profiler.enable');
    session.post('Profiler.start');
  }
  const ticks0 = threadTicks();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run(warm, total);
  const cpuSubmit = process.cpuUsage(cpu0);
  const tSubmit = Number(process.hrtime.bigint() - t0) / 1e9;
  await running.queue.idle();
  const cpuAll = process.cpuUsage(cpu0);
  const tAll = Number(process.hrtime.bigint() - t0) / 1e9;
  const ticks1 = threadTicks();
  if (session) {
    const s = session;
    await new Promise<void>((resolve) => s.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(profileOut, JSON.stringify(res.profile));
      resolve();
    }));
  }
  const ms = (c: NodeJS.CpuUsage): string => ((c.user + c.system) / 1000 / total).toFixed(2);
  console.log(`${total} messages, blob codec ${loaded.config.storage.compression.codec} (${(base.reduce((a, m) => a + m.length, 0) / base.length / 1024).toFixed(1)} KiB average), ${callers} callers, after ${warm} warm-up`);
  console.log(`  submit phase: ${(total / tSubmit).toFixed(0)} msg/s, ${ms(cpuSubmit)} ms CPU/message (all threads; archiving runs alongside)`);
  console.log(`  until archived: ${(total / tAll).toFixed(0)} msg/s, ${ms(cpuAll)} ms CPU/message (user ${(cpuAll.user / 1000 / total).toFixed(2)}, system ${(cpuAll.system / 1000 / total).toFixed(2)})`);
  // Threads that ended during the run are missing here, so the parts may not add up to the total.
  const parts = [...ticks1].map(([tid, t]) => [tid.startsWith(`${process.pid}:`) ? 'main' : tid, t - (ticks0.get(tid) ?? 0)] as const).filter(([, t]) => t > 0).sort((a, b) => b[1] - a[1]);
  if (parts.length > 0) console.log(`  by thread (ms CPU/message): ${parts.map(([name, t]) => `${name} ${((t * 10) / total).toFixed(2)}`).join(', ')}`);
} finally {
  await running.shutdown('bench');
  rmSync(dir, { recursive: true, force: true });
}
