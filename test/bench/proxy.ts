// `npm run bench:proxy`: the issue-5 benchmark in one run. POP3: the same client retrieves N
// messages directly from Dovecot and through Postern's POP3 proxy (test/bench/proxy-pop3.ts).
// SMTP: smtp-source delivers directly to smtp-sink and through Postern's relay proxy to the same
// smtp-sink (test/bench/proxy-smtp.ts). Prints each throughput and the ratio proxied/direct
// (target ≥ 0.7). Each half also runs the same load through two byte pipes that do nothing else
// (bare-relay.ts: a bare Node pipe and HAProxy in TCP mode): their ratios are the ceilings a proxy
// process reaches on this machine before it parses or stores anything.
// Figures only: nothing here asserts on speed. Ends with Postern's rates relative to HAProxy's.
//   npm run bench:proxy
//   BENCH_MESSAGES=2000 BENCH_SESSIONS=16 npm run bench:proxy
// Postern runs as deployed (deploy/systemd): the compiled tree of `npm run build`, built into a temp dir
// first; BENCH_SOURCES=1 runs the TypeScript sources through tsx instead.
// Each half first sends BENCH_WARMUP (default 1000) messages through Postern, unmeasured, so the
// figures are those of a warmed-up server (JIT settled), not of its first seconds.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPop3Bench } from './proxy-pop3.ts';
import { runSmtpProxyBench } from './proxy-smtp.ts';

const TARGET = 0.7;
const envInt = (name: string): number | undefined => {
  const v = process.env[name];
  if (v === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(v)) throw new Error(`${name} must be a positive integer (got "${v}")`);
  return Number(v);
};

function line(name: string, direct: number, proxied: number, via = 'Postern'): string {
  const target = via === 'Postern' ? ` (target ≥ ${TARGET})` : ' (a proxy that does nothing else)';
  return `${name.padEnd(28)} direct ${direct.toFixed(1).padStart(8)} msg/s   through ${via.padEnd(19)} ${proxied.toFixed(1).padStart(8)} msg/s   ratio ${(proxied / direct).toFixed(2)}${target}`;
}

const messages = envInt('BENCH_MESSAGES');
const sessions = envInt('BENCH_SESSIONS');
const warmup = envInt('BENCH_WARMUP');
const log = (l: string): void => void process.stderr.write(`${l}\n`);
const common = { ...(messages ? { messages } : {}), ...(sessions ? { sessions } : {}), ...(warmup ? { warmup } : {}), log };
let built: string | null = null;
if (process.env.BENCH_SOURCES !== '1') {
  built = mkdtempSync(join(tmpdir(), 'postern-bench-dist-'));
  execFileSync(process.execPath, [fileURLToPath(new URL('../../deploy/build.mjs', import.meta.url)), '--no-check', '--out', built], { stdio: 'ignore' });
  process.env.BENCH_SERVE_CLI = join(built, 'core', 'cli', 'postern.js');
}
log(`bench: postern runs ${built ? 'the compiled tree (npm run build)' : 'from the TypeScript sources (tsx)'}`);
const pop3 = await runPop3Bench(common);
const smtp = await runSmtpProxyBench(common);
process.stdout.write([
  '',
  'bench:proxy results',
  ...pop3.ceilings.map((c) => line('POP3 RETR', pop3.direct, c.rate, c.name.replace('bare ', ''))),
  line('POP3 RETR (first retrieval)', pop3.direct, pop3.proxied),
  line('POP3 RETR (already archived)', pop3.direct, pop3.proxiedAgain),
  ...smtp.ceilings.map((c) => line('SMTP', smtp.direct, c.rate, c.name.replace('bare ', ''))),
  line('SMTP relay', smtp.direct, smtp.proxied),
  '',
  'Postern / HAProxy in this run (what a proxy that parses and archives keeps of a bare TCP proxy; target ≥ 0.4):',
  ...relativeToHaproxy('POP3 RETR (first retrieval)', pop3.proxied, pop3.ceilings),
  ...relativeToHaproxy('SMTP relay', smtp.proxied, smtp.ceilings),
  '',
].join('\n'));

if (built) rmSync(built, { recursive: true, force: true });

function relativeToHaproxy(name: string, rate: number, ceilings: Array<{ name: string; rate: number }>): string[] {
  const haproxy = ceilings.find((c) => /haproxy/i.test(c.name));
  return haproxy ? [`${name.padEnd(28)} ${rate.toFixed(1).padStart(8)} / ${haproxy.rate.toFixed(1).padStart(8)} msg/s = ${(rate / haproxy.rate).toFixed(2)}`] : [`${name}: no HAProxy figure in this run`];
}
