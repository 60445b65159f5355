// Memory of idle IMAP connections for `npm run bench:imap`: opens connections that log in, SELECT
// INBOX and IDLE, in two halves, and reads the server's memory from /proc before, at half, at the end
// and after closing them. Postern (one process): VmRSS after full garbage collections, triggered by a
// SIGUSR2 hook preloaded into the child only for this phase, and the V8 heap + external memory the hook
// reports (the low-noise part: RSS also moves with V8 and allocator page retention). Dovecot (a process per connection): the
// sum of Pss (proportional set size, so shared libraries count once) over the master and all its
// descendants — for comparison only.
import { readFileSync, readdirSync } from 'node:fs';
import { RawImap, quote } from './imap-client.ts';

/** IDLE connections opened concurrently. */
const BATCH = 50;
const SETTLE_MS = 1500;

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

/** Postern: VmRSS after full collections and a quiet moment, lowest of three samples, and the heap. */
async function posternSample(pid: number, reportFile: string): Promise<Sample> {
  let low = Infinity;
  let heap = 0;
  for (let i = 0; i < 3; i++) {
    process.kill(pid, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    low = Math.min(low, vmRss(pid));
    const u = JSON.parse(readFileSync(reportFile, 'utf8')) as { heapUsed: number; external: number };
    heap = (u.heapUsed + u.external) / 1024;
  }
  return { memory: low, heap };
}

/** Dovecot: summed Pss of the master and every descendant (KiB), after a quiet moment. */
async function treePss(root: number): Promise<Sample> {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
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
  return { memory: total, heap: null };
}

export interface IdleMemoryOptions {
  name: string;
  port: number;
  pid: number;
  kind: 'postern' | 'dovecot';
  /** Where the Postern GC hook writes memoryUsage() (postern only). */
  reportFile?: string;
  count: number;
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
  // Warm-up: a batch opened and closed, so code paths are loaded and login memory is counted in.
  for (const c of await Promise.all(Array.from({ length: BATCH }, open))) c.close();
  const before = await measure();
  const conns: RawImap[] = [];
  const half = Math.floor(o.count / 2);
  const t0 = performance.now();
  try {
    await openMany(conns, half);
    const mid = await measure();
    await openMany(conns, o.count - half);
    const openSeconds = (performance.now() - t0) / 1000;
    const after = await measure();
    const n = conns.length;
    for (const c of conns.splice(0)) c.close();
    const closed = await measure();
    const mib = (kb: number): string => `${(kb / 1024).toFixed(1)} MiB`;
    const line = (what: string, b: number, m: number, a: number, c: number): void => {
      console.log(`  ${what}: ${mib(b)} before, ${mib(m)} with ${half}, ${mib(a)} with ${n}, ${mib(c)} after closing them`);
      console.log(`    per idle connection: ${((a - m) / (n - half)).toFixed(1)} KB for the second ${n - half} (slope); ${((a - c) / n).toFixed(1)} KB released on close; ${((a - b) / n).toFixed(1)} KB growth from before`);
    };
    console.log(`\nIDLE memory, ${o.name}: ${n} connections logged in, INBOX selected, idling (opened in ${openSeconds.toFixed(1)} s)`);
    line(o.kind === 'postern' ? 'VmRSS (after full GCs)' : 'Pss summed over its processes', before.memory, mid.memory, after.memory, closed.memory);
    if (before.heap !== null && mid.heap !== null && after.heap !== null && closed.heap !== null) {
      line('V8 heap used + external (after full GCs)', before.heap, mid.heap, after.heap, closed.heap);
    }
  } finally {
    for (const c of conns) c.close();
  }
}
