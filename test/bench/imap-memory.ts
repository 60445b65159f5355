// Memory of idle IMAP connections for `npm run bench:imap`: opens connections that log in, SELECT
// INBOX and IDLE in steps (by default 0, ½·n, n and 2·n open connections for Postern; up to n for
// Dovecot), and at each step, once it has settled, samples the server's memory several times and keeps
// the median. The figure per connection is the least-squares slope over all steps, so one noisy sample
// no longer swings it (a two-point difference gave +18 KB on one run and −40 KB on another).
// Postern (one process): VmRSS after full garbage collections, triggered by a SIGUSR2 hook preloaded
// into the child only for this phase, and the V8 heap + external memory the hook reports (the low-noise
// part: RSS also moves with V8 and allocator page retention). Dovecot (a process per connection): the
// sum of Pss (proportional set size, so shared libraries count once) over the master and all its
// descendants — for comparison only.
import { readFileSync, readdirSync } from 'node:fs';
import { RawImap, quote } from './imap-client.ts';

/** IDLE connections opened concurrently. */
const BATCH = 50;
/** Quiet time after a step's connections are open, before sampling. */
const SETTLE_MS = 2000;
/** Samples per step (each after full GCs for Postern); the median is used. */
const SAMPLES = 5;
const SAMPLE_GAP_MS = 500;
/** Postern: sample until the last SAMPLES agree within this fraction (RSS settles after a step), at most MAX_SAMPLES. */
const STABLE = 0.005;
const MAX_SAMPLES = 60;

/**
 * Preloaded into the Postern child (NODE_OPTIONS=--expose-gc --import): SIGUSR2 runs full collections,
 * then writes process.memoryUsage() as JSON to `reportFile`.
 */
export function gcHook(reportFile: string): string {
  return [
    "import { writeFileSync } from 'node:fs';",
    "process.on('SIGUSR2', () => {",
    '  globalThis.gc?.();',
    '  globalThis.gc?.();',
    `  writeFileSync(${JSON.stringify(reportFile)}, JSON.stringify(process.memoryUsage()));`,
    '});',
    '',
  ].join('\n');
}

interface Sample {
  /** KiB: VmRSS (Postern) or summed Pss (Dovecot). */
  memory: number;
  /** KiB of V8 heap used + external memory after full collections (Postern only). */
  heap: number | null;
}

function vmRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

const median = (xs: number[]): number => {
  const v = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
};

/**
 * Postern: VmRSS and heap after full collections, sampled every SAMPLE_GAP_MS until the last SAMPLES
 * samples agree within STABLE (or MAX_SAMPLES were taken); the median of those last samples.
 */
async function posternSample(pid: number, reportFile: string): Promise<Sample> {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const rss: number[] = [];
  const heap: number[] = [];
  while (rss.length < MAX_SAMPLES) {
    process.kill(pid, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, SAMPLE_GAP_MS));
    rss.push(vmRss(pid));
    const u = JSON.parse(readFileSync(reportFile, 'utf8')) as { heapUsed: number; external: number };
    heap.push((u.heapUsed + u.external) / 1024);
    const last = rss.slice(-SAMPLES);
    if (last.length === SAMPLES && (Math.max(...last) - Math.min(...last)) / median(last) <= STABLE) break;
  }
  return { memory: median(rss.slice(-SAMPLES)), heap: median(heap.slice(-SAMPLES)) };
}

/** Least-squares slope and R² of y over x. */
export function fitSlope(xs: number[], ys: number[]): { slope: number; r2: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    const dy = (ys[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { slope, r2: sxx === 0 || syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/** Dovecot: summed Pss of the master and every descendant (KiB), the median of SAMPLES after a quiet moment. */
async function treePss(root: number): Promise<Sample> {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const xs: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, SAMPLE_GAP_MS));
    xs.push(treePssOnce(root));
  }
  return { memory: median(xs), heap: null };
}

function treePssOnce(root: number): number {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    try {
      const m = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      total += Number(m?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

export interface IdleMemoryOptions {
  name: string;
  port: number;
  pid: number;
  kind: 'postern' | 'dovecot';
  /** Where the Postern GC hook writes memoryUsage() (postern only). */
  reportFile?: string;
  /** Open connections at each measuring step, ascending (the first is usually 0). */
  steps: number[];
  user: string;
  password: string;
}

export async function idleMemory(o: IdleMemoryOptions): Promise<void> {
  const measure = (): Promise<Sample> => (o.kind === 'postern' ? posternSample(o.pid, o.reportFile ?? '') : treePss(o.pid));
  const open = async (): Promise<RawImap> => {
    const c = await RawImap.connect(o.port);
    await c.ok(`LOGIN ${o.user} ${quote(o.password)}`);
    await c.ok('SELECT INBOX');
    await c.idle();
    return c;
  };
  const openMany = async (conns: RawImap[], count: number): Promise<void> => {
    for (let i = 0; i < count; i += BATCH) conns.push(...(await Promise.all(Array.from({ length: Math.min(BATCH, count - i) }, open))));
  };
  // Warm-up: as many connections as the first non-zero step opened and closed, so code paths are
  // loaded and what start-up left behind is released (a fresh process's RSS dropped by ~15-30 MiB at
  // the first activity, which made the 0-connection point the highest of all).
  const warm: RawImap[] = [];
  await openMany(warm, Math.max(BATCH, o.steps.find((n) => n > 0) ?? BATCH));
  for (const c of warm) c.close();
  const conns: RawImap[] = [];
  const points: Array<{ n: number; sample: Sample }> = [];
  const t0 = performance.now();
  try {
    for (const step of o.steps) {
      await openMany(conns, step - conns.length);
      points.push({ n: conns.length, sample: await measure() });
    }
    const openSeconds = (performance.now() - t0) / 1000;
    const n = conns.length;
    for (const c of conns.splice(0)) c.close();
    const closed = await measure();
    const mib = (kb: number): string => `${(kb / 1024).toFixed(1)} MiB`;
    const xs = points.map((p) => p.n);
    const report = (what: string, pick: (s: Sample) => number): void => {
      const ys = points.map((p) => pick(p.sample));
      const fit = fitSlope(xs, ys);
      const last = ys[ys.length - 1] as number;
      console.log(`  ${what}: ${points.map((p, i) => `${mib(ys[i] as number)} with ${p.n}`).join(', ')}; ${mib(pick(closed))} after closing them`);
      console.log(`    per idle connection: ${fit.slope.toFixed(1)} KB (least-squares slope over ${points.length} steps, R² ${fit.r2.toFixed(3)}); ${((last - pick(closed)) / n).toFixed(1)} KB released on close`);
    };
    console.log(`\nIDLE memory, ${o.name}: up to ${n} connections logged in, INBOX selected, idling (steps ${o.steps.join(', ')}; opened in ${openSeconds.toFixed(1)} s with the sampling; median of the last ${SAMPLES} samples per step${o.kind === 'postern' ? `, once they agree within ${STABLE * 100}%` : ''})`);
    report(o.kind === 'postern' ? 'VmRSS (after full GCs)' : 'Pss summed over its processes', (s) => s.memory);
    if (points.every((p) => p.sample.heap !== null) && closed.heap !== null) {
      report('V8 heap used + external (after full GCs)', (s) => s.heap ?? 0);
    }
  } finally {
    for (const c of conns) c.close();
  }
}
