// Summarises a V8 .cpuprofile (from POSTERN_PROFILE=<dir> on the proxy benchmarks): self time by
// function and by file, top entries first, so the cost of each part of a proxied path is visible.
//   npx tsx test/bench/proxy-profile.ts <file.cpuprofile> [--top 30] [--from S --to S] [--timeline S]
// --from/--to keep only samples in that window (seconds from the profile's start); --timeline prints
// the busy share of the event loop per window of S seconds, to find the measured passes.
import { readFileSync } from 'node:fs';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const file = process.argv[2];
if (!file) throw new Error('Usage: proxy-profile.ts <file.cpuprofile> [--top N]');
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1] ?? fallback);
};
const top = arg('top', 30);
const from = arg('from', 0) * 1e6;
const to = arg('to', Infinity) * 1e6;
const timeline = arg('timeline', 0) * 1e6;
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
const windows = new Map<number, { all: number; idle: number }>();
let at = 0;
profile.samples.forEach((id, i) => {
  const d = profile.timeDeltas[i] ?? 0;
  at += d;
  if (timeline > 0) {
    const w = windows.get(Math.floor(at / timeline)) ?? { all: 0, idle: 0 };
    w.all += d;
    if (byId.get(id)?.callFrame.functionName === '(idle)') w.idle += d;
    windows.set(Math.floor(at / timeline), w);
  }
  if (at >= from && at < to) selfUs.set(id, (selfUs.get(id) ?? 0) + d);
});
for (const [k, w] of windows) console.log(`${((k * timeline) / 1e6).toFixed(2).padStart(7)} s  busy ${((100 * (w.all - w.idle)) / Math.max(1, w.all)).toFixed(0).padStart(3)}%`);
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

function shortUrl(url: string): string {
  const m = /\/work\/[^/]+\/(.*)$/.exec(url) ?? /node_modules\/(.*)$/.exec(url);
  return m ? (m[1] as string) : url || '(native)';
}
const fnTotals = new Map<string, number>();
const fileTotals = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  if (!n) continue;
  const f = shortUrl(n.callFrame.url).replace(/^node_modules\//, 'nm:');
  const name = `${n.callFrame.functionName || '(anonymous)'}  ${f}:${n.callFrame.lineNumber + 1}`;
  fnTotals.set(name, (fnTotals.get(name) ?? 0) + us);
  const key = n.callFrame.url === '' ? `(${n.callFrame.functionName})` : f.replace(/^(nm:[^/]+).*$/, '$1');
  fileTotals.set(key, (fileTotals.get(key) ?? 0) + us);
}
const pct = (us: number): string => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms`;
const print = (title: string, m: Map<string, number>): void => {
  console.log(`\n${title}`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);
};
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled over ${((profile.endTime - profile.startTime) / 1e6).toFixed(2)} s`);
print('Self time by function', fnTotals);
print('Self time by file / package', fileTotals);
