// POP3 proxy benchmark: the same client retrieves N corpus messages directly from a real Dovecot
// and then through a real `postern serve` proxying to that Dovecot (first retrieval: every message
// captured durably before its final "." is released). Prints messages/s for both and the ratio.
//   npx tsx test/bench/proxy-pop3.ts [--messages 600] [--sessions 4]
// runPop3Bench() is what `npm run bench:proxy` calls together with the SMTP half.
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../helpers/corpus.ts';
import { startDovecot } from '../interop/dovecot.ts';
import { freePort, startPostern } from '../interop/harness.ts';
import { Pop3TestClient } from '../protocol/pop3-helpers.ts';

export interface Pop3BenchOptions {
  /** Messages retrieved per pass (spread over the sessions' mailboxes). */
  messages?: number;
  /** Concurrent POP3 sessions, one mailbox each. */
  sessions?: number;
  log?: (line: string) => void;
}

export interface Pop3BenchResult {
  /** Messages per second retrieved directly from Dovecot. */
  direct: number;
  /** Messages per second retrieved through Postern (first retrieval, captured). */
  proxied: number;
  /** Messages per second through Postern when every message is already archived (dedup). */
  proxiedAgain: number;
}

const PASSWORD = 'bench-pw';

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

async function pass(port: number, users: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  const counts = await Promise.all(users.map((u) => retrieveAll(port, u)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return counts.reduce((a, b) => a + b, 0) / seconds;
}

export async function runPop3Bench(opts: Pop3BenchOptions = {}): Promise<Pop3BenchResult> {
  const total = opts.messages ?? 600;
  const sessions = opts.sessions ?? 4;
  const log = opts.log ?? ((l: string) => console.error(l));
  const messages = corpus(total);
  const users = Array.from({ length: sessions }, (_, i) => `bench${i}`);
  const dc = await startDovecot({
    users: users.map((name, i) => ({ name, password: PASSWORD, messages: messages.filter((_, k) => k % sessions === i) })),
    protocols: ['pop3'], implicitTls: false, name: 'bench-pop3',
  });
  let srv: Awaited<ReturnType<typeof startPostern>> | null = null;
  try {
    const pop3Port = await freePort();
    srv = await startPostern({
      name: 'bench-pop3',
      env: { POSTERN_POP3_UPSTREAM: `127.0.0.1:${dc.pop3Port}`, POSTERN_POP3_PORT: String(pop3Port), POSTERN_POP3_TLS_PORT: '0', POSTERN_LOG_LEVEL: 'warn' },
    });
    for (const u of users) await srv.cliOk(['user', 'add', u, '--address', `${u}@bench.example`, '--pop3-user', u]);
    const bytes = messages.reduce((a, m) => a + m.length, 0);
    log(`pop3 bench: ${total} messages (${(bytes / total / 1024).toFixed(1)} KiB average) over ${sessions} sessions`);
    await pass(dc.pop3Port, users); // warm Dovecot's caches and indexes
    const direct = await pass(dc.pop3Port, users);
    log(`  direct from Dovecot:          ${direct.toFixed(0)} msg/s`);
    const proxied = await pass(pop3Port, users);
    log(`  through Postern (captured):   ${proxied.toFixed(0)} msg/s  (${(proxied / direct).toFixed(2)}x direct)`);
    await srv.waitDrained(120_000);
    const proxiedAgain = await pass(pop3Port, users);
    log(`  through Postern (again):      ${proxiedAgain.toFixed(0)} msg/s  (${(proxiedAgain / direct).toFixed(2)}x direct)`);
    const archived = (await srv.waitDrained(120_000)).archive.messages;
    if (archived < total) throw new Error(`Only ${archived} of ${total} messages archived`);
    return { direct, proxied, proxiedAgain };
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
  const r = await runPop3Bench({ messages: flag('messages', 600), sessions: flag('sessions', 4) });
  console.log(JSON.stringify({ pop3: { directMsgPerSec: Math.round(r.direct), proxiedMsgPerSec: Math.round(r.proxied), ratio: Number((r.proxied / r.direct).toFixed(2)), proxiedAgainMsgPerSec: Math.round(r.proxiedAgain) } }));
}
