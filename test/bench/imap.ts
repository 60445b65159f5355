// `npm run bench:imap`: Postern's read-only IMAP against Debian's Dovecot on the same corpus, then
// the memory of 1,000 idle IMAP connections on Postern. Prints figures; asserts nothing about speed.
//
//  1. Loads the same N SpamAssassin corpus messages (CRLF, as SMTP carries them) into Postern over
//     SMTP (one user, waits until all are archived) and into a private Dovecot (Maildir files).
//  2. Warms both (one untimed pass of every command type), then drives each in turn for a fixed time
//     with the same read-only mix from C concurrent clients: SELECT, FETCH FLAGS / ENVELOPE /
//     BODYSTRUCTURE of 50-message ranges, FETCH of whole bodies, UID FETCH of attributes, SEARCH on a
//     header and on the body, LIST and STATUS. Each client's command sequence comes from a seeded RNG,
//     so both servers get the same commands. Prints commands/s per type and overall, and the ratio.
//  3. Opens connections that log in, SELECT INBOX and IDLE (test/bench/imap-memory.ts) in steps, first
//     to Dovecot for comparison (0, I/2, I; summed Pss of its processes), then to a restarted Postern
//     (0, I/2, I, 2·I; a fresh heap; VmRSS of its process and the V8 heap after full GCs), sampling
//     each step several times, and prints memory per connection as the least-squares slope over the
//     steps, and what closing them all releases.
// Clients are raw sockets (test/bench/imap-client.ts), not imapflow, whose response parsing would
// make the client the bottleneck on a small machine. Both servers run without TLS.
//
// Environment: IMAP_BENCH_MESSAGES (2000), IMAP_BENCH_CLIENTS (10), IMAP_BENCH_SECONDS (15 per
// server), IMAP_BENCH_IDLE (1000), IMAP_BENCH_DOVECOT_IDLE=0 skips Dovecot's memory comparison.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.ts';
import { makeCertificate, startDovecot, type Dovecot } from '../interop/dovecot.ts';
import { freePort } from '../interop/harness.ts';
import { ADDRESS, PASSWORD, USER, corpusSample, enableImapUser, folderCount, posternConfig, smtpSend } from '../interop/imap-targets.ts';
import { RawImap, quote } from './imap-client.ts';
import { gcHook, idleMemory } from './imap-memory.ts';

const N = envInt('IMAP_BENCH_MESSAGES', 2000);
const CLIENTS = envInt('IMAP_BENCH_CLIENTS', 10);
const SECONDS = envInt('IMAP_BENCH_SECONDS', 15);
const IDLE = envInt('IMAP_BENCH_IDLE', 1000);
const RANGE = 50;
const SUBJECT_WORDS = ['money', 'linux', 'free', 'update', 'perl', 'razor', 'business', 'spam'];
const BODY_WORDS = ['unsubscribe', 'remove', 'mailing', 'software', 'credit', 'python', 'hello', 'kernel'];

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return Number(v);
}

/** Deterministic per-client random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Op = { kind: string; text: string };

/** One cycle of the mix; every kind appears once (whole-body fetches twice). */
function cycle(r: () => number, count: number): Op[] {
  const at = (): number => 1 + Math.floor(r() * count);
  const range = (): string => {
    const start = 1 + Math.floor(r() * Math.max(1, count - RANGE + 1));
    return `${start}:${Math.min(count, start + RANGE - 1)}`;
  };
  const pick = (l: string[]): string => l[Math.floor(r() * l.length)]!;
  return [
    { kind: 'SELECT', text: 'SELECT INBOX' },
    { kind: 'FETCH FLAGS', text: `FETCH ${range()} (FLAGS)` },
    { kind: 'FETCH ENVELOPE', text: `FETCH ${range()} (ENVELOPE)` },
    { kind: 'FETCH BODYSTRUCTURE', text: `FETCH ${range()} (BODYSTRUCTURE)` },
    { kind: 'FETCH BODY[]', text: `FETCH ${at()} (BODY.PEEK[])` },
    { kind: 'FETCH BODY[]', text: `FETCH ${at()} (BODY.PEEK[])` },
    { kind: 'UID FETCH attrs', text: `UID FETCH ${range()} (UID RFC822.SIZE FLAGS INTERNALDATE)` },
    { kind: 'SEARCH header', text: `SEARCH SUBJECT ${quote(pick(SUBJECT_WORDS))}` },
    { kind: 'SEARCH body', text: `SEARCH BODY ${quote(pick(BODY_WORDS))}` },
    { kind: 'LIST', text: 'LIST "" "*"' },
    { kind: 'STATUS', text: 'STATUS INBOX (MESSAGES UIDNEXT UNSEEN)' },
  ];
}

interface RunResult {
  seconds: number;
  total: number;
  bytes: number;
  perKind: Map<string, { n: number; ms: number }>;
  errors: string[];
}

async function login(port: number): Promise<RawImap> {
  const c = await RawImap.connect(port);
  await c.ok(`LOGIN ${USER} ${quote(PASSWORD)}`);
  return c;
}

/** Untimed: one pass of every command type over the whole mailbox. */
async function warm(port: number): Promise<void> {
  const c = await login(port);
  try {
    const sel = await c.ok('SELECT INBOX', true);
    const exists = sel.untagged.find((l) => / EXISTS$/.test(l));
    if (exists !== `* ${N} EXISTS`) throw new Error(`INBOX holds ${exists ?? '(no EXISTS)'}, expected ${N}`);
    await c.ok('FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE UID RFC822.SIZE INTERNALDATE)');
    await c.ok('FETCH 1:* (BODY.PEEK[])');
    await c.ok(`SEARCH BODY ${quote(BODY_WORDS[0]!)}`);
    await c.ok(`SEARCH SUBJECT ${quote(SUBJECT_WORDS[0]!)}`);
    await c.ok('LIST "" "*"');
    await c.ok('LOGOUT');
  } finally {
    c.close();
  }
}

async function drive(port: number): Promise<RunResult> {
  const perKind = new Map<string, { n: number; ms: number }>();
  const errors: string[] = [];
  let total = 0;
  let bytes = 0;
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => login(port)));
  const started = performance.now();
  const until = started + SECONDS * 1000;
  await Promise.all(clients.map(async (c, i) => {
    const r = rng(1000 + i);
    while (performance.now() < until) {
      for (const op of cycle(r, N)) {
        if (performance.now() >= until) break;
        const t0 = performance.now();
        const res = await c.command(op.text);
        const ms = performance.now() - t0;
        if (res.status !== 'OK') {
          if (errors.length < 10) errors.push(`${op.text}: ${res.status} ${res.text}`);
          continue;
        }
        total++;
        bytes += res.bytes;
        const k = perKind.get(op.kind) ?? { n: 0, ms: 0 };
        k.n++;
        k.ms += ms;
        perKind.set(op.kind, k);
      }
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  for (const c of clients) {
    await c.command('LOGOUT').catch(() => undefined);
    c.close();
  }
  return { seconds, total, bytes, perKind, errors };
}

function report(name: string, r: RunResult): void {
  console.log(`\n${name}: ${r.total} commands in ${r.seconds.toFixed(1)} s = ${(r.total / r.seconds).toFixed(1)} commands/s, ${(r.bytes / r.seconds / 1048576).toFixed(1)} MiB/s received`);
  for (const [kind, k] of [...r.perKind].sort()) {
    console.log(`  ${kind.padEnd(20)} ${String(k.n).padStart(7)}  ${(k.n / r.seconds).toFixed(1).padStart(9)}/s  mean ${(k.ms / k.n).toFixed(2).padStart(8)} ms`);
  }
  if (r.errors.length) console.log(`  failed commands (first ${r.errors.length}):\n    ${r.errors.join('\n    ')}`);
}

async function main(): Promise<void> {
  console.log(`bench:imap: ${N} messages, ${CLIENTS} clients, ${SECONDS} s per server, ${IDLE} IDLE connections`);
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
  const messages = corpusSample(N);
  const mib = messages.reduce((s, m) => s + m.length, 0) / 1048576;
  console.log(`corpus: ${messages.length} messages, ${mib.toFixed(1)} MiB`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-imap-'));
  let server: SpawnedServer | undefined;
  let dovecot: Dovecot | undefined;
  try {
    const cert = await makeCertificate(dir);
    const port = await freePort();
    const tlsPort = await freePort();
    const config = posternConfig(dir, { port, tlsPort, certFile: cert.certFile, keyFile: cert.keyFile, imap: { allowPlaintext: true, maxConnections: 2 * IDLE + CLIENTS + 100 } });
    const dataDir = join(dir, 'data');
    server = await spawnServer(dataDir, { POSTERN_CONFIG: config, POSTERN_IMAP_PORT: String(port), POSTERN_IMAPS_PORT: String(tlsPort) });
    await server.api('POST', '/api/v1/users', { name: USER, addresses: [ADDRESS] });
    await enableImapUser(server.adminPort, dataDir, USER, PASSWORD);
    let t0 = performance.now();
    await smtpSend(server.smtpPort, messages.map((bytes) => ({ from: 'sender@outside.test', to: [ADDRESS], bytes })), 8);
    const sent = (performance.now() - t0) / 1000;
    for (const deadline = Date.now() + 600_000; ;) {
      const n = await folderCount(server.adminPort, dataDir, USER, 'Inbox');
      if (n >= N) break;
      if (Date.now() > deadline) throw new Error(`only ${n} of ${N} messages archived after 10 minutes`);
      await new Promise((r) => setTimeout(r, 250));
    }
    console.log(`Postern: ${N} messages sent over SMTP in ${sent.toFixed(1)} s, all archived after ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    t0 = performance.now();
    dovecot = await startDovecot({ name: 'bench', protocols: ['imap'], implicitTls: false, users: [{ name: USER, password: PASSWORD, messages }] });
    console.log(`Dovecot: ${N} Maildir files written and server started in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    await warm(port);
    await warm(dovecot.imapPort);
    const p = await drive(port);
    const d = await drive(dovecot.imapPort);
    report('Postern', p);
    report('Dovecot 2.3 (Maildir)', d);
    const pr = p.total / p.seconds;
    const dr = d.total / d.seconds;
    console.log(`\nRatio Postern/Dovecot: ${(pr / dr).toFixed(2)}x overall (target >= 0.5x, goal 1.0x)`);
    console.log('  mean latency per command type, Postern vs Dovecot (every type runs equally often in the mix):');
    for (const [kind, k] of [...p.perKind].sort()) {
      const dk = d.perKind.get(kind);
      if (dk) console.log(`  ${kind.padEnd(20)} ${(k.ms / k.n).toFixed(2).padStart(9)} ms vs ${(dk.ms / dk.n).toFixed(2).padStart(9)} ms`);
    }
    if (process.env.IMAP_BENCH_DOVECOT_IDLE !== '0') {
      await idleMemory({ name: 'Dovecot (for comparison)', kind: 'dovecot', port: dovecot.imapPort, pid: dovecot.pid, steps: [0, Math.floor(IDLE / 2), IDLE], user: USER, password: PASSWORD });
    }
    await dovecot.stop();
    dovecot = undefined;
    // A fresh process, so the heap the mix grew (and its later collection) does not blur the figure.
    server.child.kill('SIGTERM');
    await server.exited;
    server = undefined;
    const hook = join(dir, 'gc-hook.mjs');
    const reportFile = join(dir, 'memory.json');
    writeFileSync(hook, gcHook(reportFile));
    server = await spawnServer(dataDir, { POSTERN_CONFIG: config, POSTERN_IMAP_PORT: String(port), POSTERN_IMAPS_PORT: String(tlsPort), NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --expose-gc --import ${pathToFileURL(hook).href}`.trim() });
    const pid = server.child.pid;
    if (pid === undefined) throw new Error('no Postern pid');
    await idleMemory({ name: 'Postern', kind: 'postern', port, pid, reportFile, steps: [0, Math.floor(IDLE / 2), IDLE, 2 * IDLE], user: USER, password: PASSWORD });
    console.log('  (Postern target <= 100 KB per idle connection, goal 50 KB; the slope is the steady-state figure)');
  } finally {
    await dovecot?.stop().catch(() => undefined);
    if (server) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
