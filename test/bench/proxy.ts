// `npm run bench:proxy`: the issue-5 benchmark in one run. POP3: the same client retrieves N
// messages directly from Dovecot and through Postern's POP3 proxy (test/bench/proxy-pop3.ts).
// SMTP: smtp-source delivers directly to smtp-sink and through Postern's relay proxy to the same
// smtp-sink (test/bench/proxy-smtp.ts). Prints each throughput and the ratio proxied/direct
// (target ≥ 0.7). Figures only: nothing here asserts on speed.
//   npm run bench:proxy
//   BENCH_MESSAGES=2000 BENCH_SESSIONS=16 npm run bench:proxy
import { runPop3Bench } from './proxy-pop3.ts';
import { runSmtpProxyBench } from './proxy-smtp.ts';

const TARGET = 0.7;
const envInt = (name: string): number | undefined => {
  const v = process.env[name];
  if (v === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(v)) throw new Error(`${name} must be a positive integer (got "${v}")`);
  return Number(v);
};

function line(name: string, direct: number, proxied: number): string {
  return `${name.padEnd(28)} direct ${direct.toFixed(1).padStart(8)} msg/s   through Postern ${proxied.toFixed(1).padStart(8)} msg/s   ratio ${(proxied / direct).toFixed(2)} (target ≥ ${TARGET})`;
}

const messages = envInt('BENCH_MESSAGES');
const sessions = envInt('BENCH_SESSIONS');
const log = (l: string): void => void process.stderr.write(`${l}\n`);
const pop3 = await runPop3Bench({ ...(messages ? { messages } : {}), ...(sessions ? { sessions } : {}), log });
const smtp = await runSmtpProxyBench({ ...(messages ? { messages } : {}), ...(sessions ? { sessions } : {}), log });
process.stdout.write([
  '',
  'bench:proxy results',
  line('POP3 RETR (first retrieval)', pop3.direct, pop3.proxied),
  line('POP3 RETR (already archived)', pop3.direct, pop3.proxiedAgain),
  line('SMTP relay', smtp.direct, smtp.proxied),
  '',
].join('\n'));
