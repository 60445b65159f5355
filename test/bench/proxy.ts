// `npm run bench:proxy`: the issue-5 benchmark in one run. POP3: the same client retrieves N
// messages directly from Dovecot and through Postern's POP3 proxy (test/bench/proxy-pop3.ts).
// SMTP: smtp-source delivers directly to smtp-sink and through Postern's relay proxy to the same
// smtp-sink (test/bench/proxy-smtp.ts). Prints each throughput and the ratio proxied/direct
// (target ≥ 0.7). Each half also runs the same load through a bare Node byte pipe (bare-relay.ts),
// a proxy process that does nothing else: its ratio is the ceiling for any proxy on this machine.
// Figures only: nothing here asserts on speed.
//   npm run bench:proxy
//   BENCH_MESSAGES=2000 BENCH_SESSIONS=16 npm run bench:proxy
// Each half first sends BENCH_WARMUP (default 1000) messages through Postern, unmeasured, so the
// figures are those of a warmed-up server (JIT settled), not of its first seconds.
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
  const target = via === 'Postern' ? ` (target ≥ ${TARGET})` : ' (ceiling for any proxy process on this machine)';
  return `${name.padEnd(28)} direct ${direct.toFixed(1).padStart(8)} msg/s   through ${via.padEnd(9)} ${proxied.toFixed(1).padStart(8)} msg/s   ratio ${(proxied / direct).toFixed(2)}${target}`;
}

const messages = envInt('BENCH_MESSAGES');
const sessions = envInt('BENCH_SESSIONS');
const warmup = envInt('BENCH_WARMUP');
const log = (l: string): void => void process.stderr.write(`${l}\n`);
const common = { ...(messages ? { messages } : {}), ...(sessions ? { sessions } : {}), ...(warmup ? { warmup } : {}), log };
const pop3 = await runPop3Bench(common);
const smtp = await runSmtpProxyBench(common);
process.stdout.write([
  '',
  'bench:proxy results',
  line('POP3 RETR', pop3.direct, pop3.bareRelay, 'byte pipe'),
  line('POP3 RETR (first retrieval)', pop3.direct, pop3.proxied),
  line('POP3 RETR (already archived)', pop3.direct, pop3.proxiedAgain),
  line('SMTP', smtp.direct, smtp.bareRelay, 'byte pipe'),
  line('SMTP relay', smtp.direct, smtp.proxied),
  '',
].join('\n'));
