// `npm run bench:imap`: Postern's read-only IMAP against Debian's Dovecot on the same corpus, then
// the memory of idle IMAP connections on Postern. Prints figures; asserts nothing about speed.
//
//  1. Loads the same N SpamAssassin corpus messages (CRLF, as SMTP carries them) into Postern over
//     SMTP (one user, waits until all are archived) and into a private Dovecot (Maildir files).
//  2. Warms both (one untimed pass of every command type), then runs each scenario for a fixed time,
//     ROUNDS times, alternating Postern and Dovecot (P, D, D, P, P, D, …) so a change in the machine's
//     load falls on both. The scenarios are what a population of mail clients sends:
//       persistent  C clients on long sessions, each repeating a client's sync cycle: LIST, STATUS,
//                   SELECT, UID FETCH 1:* (UID FLAGS), FETCH of the headers (UID, size, date, flags,
//                   HEADER.FIELDS) of 50 messages, FETCH ENVELOPE/BODYSTRUCTURE of 10, FETCH of one
//                   whole message and of one body text, SEARCH on a header (SUBJECT, FROM, UNSEEN), NOOP
//       tls         the same over implicit TLS
//       churn       every cycle on a new connection: LOGIN, SELECT, UID FETCH 1:* (UID FLAGS), the
//                   header FETCH, LOGOUT (login and session setup dominate)
//       body-search SEARCH BODY of a word over the whole mailbox, C clients (a separate line: a full
//                   scan without a full-text index, rare in real traffic)
//     Each client's commands come from a seeded RNG, so both servers get the same commands. Prints
//     commands/s (min / median / max over the rounds), the ratio Postern/Dovecot per round, and the
//     mean latency per command type.
//  3. Opens connections that log in, SELECT INBOX and IDLE (test/bench/imap-memory.ts) in steps, first
//     to Dovecot for comparison (0, I/2, I; summed Pss of its processes), then to a restarted Postern
//     (0, I/2, I, 2·I; a fresh heap; VmRSS of its process and the V8 heap after full GCs), sampling
//     each step several times, and prints memory per connection as the least-squares slope over the
//     steps, and what closing them all releases.
// Clients are raw sockets (test/bench/imap-client.ts), not imapflow, whose response parsing would
// make the client the bottleneck on a small machine.
//
// Environment: IMAP_BENCH_MESSAGES (300), IMAP_BENCH_CLIENTS (10), IMAP_BENCH_SECONDS (10 per run),
// IMAP_BENCH_ROUNDS (3), IMAP_BENCH_SCENARIOS (persistent,tls,churn,body-search), IMAP_BENCH_IDLE
// (1000; 0 skips the memory phase), IMAP_BENCH_DOVECOT_IDLE=0 skips Dovecot's memory comparison,
// IMAP_BENCH_TARGETS=postern runs Postern alone; POSTERN_PROFILE=DIR writes Postern's CPU profile there.
// IMAPTEST=/path/to/imaptest adds Dovecot's own stress tool (imaptest, built from its repository; not
// packaged by Debian) on the same mailboxes: its read-only mix (LIST 50 %, STATUS 50 %, SELECT, FETCH,
// FETCH2 100,30, SEARCH 50 %; no writes: the archive refuses them) with persistent sessions, over
// TLS, and with a LOGOUT after every pass (churn), the same rounds, alternating the servers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer, stopServer, type SpawnedServer } from '../helpers/spawn-server.ts';
import { makeCertificate, startDovecot, type Dovecot } from '../interop/dovecot.ts';
import { freePort } from '../interop/harness.ts';
import { ADDRESS, PASSWORD, USER, corpusSample, enableImapUser, folderCount, posternConfig, smtpSend } from '../interop/imap-targets.ts';
import { RawImap, quote } from './imap-client.ts';
import { gcHook, idleMemory } from './imap-memory.ts';
import { HEADER_FIELDS, HEADER_RANGE, SUBJECT_WORDS, Tally, merged, picker, rate, spread, syncCycle, type Op, type RunResult } from './imap-mix.ts';
import { prng as rng } from '../helpers/prng.ts';

const N = envInt('IMAP_BENCH_MESSAGES', 300);
const CLIENTS = envInt('IMAP_BENCH_CLIENTS', 10);
const SECONDS = envInt('IMAP_BENCH_SECONDS', 10);
const ROUNDS = envInt('IMAP_BENCH_ROUNDS', 3);
const IDLE = envInt('IMAP_BENCH_IDLE', 1000, true);
const SCENARIOS = (process.env.IMAP_BENCH_SCENARIOS ?? 'persistent,tls,churn,body-search').split(',').map((s) => s.trim()).filter(Boolean);
const POSTERN_ONLY = process.env.IMAP_BENCH_TARGETS === 'postern';
const BODY_WORDS = ['unsubscribe', 'remove', 'mailing', 'software', 'credit', 'python', 'hello', 'kernel'];

type Scenario = 'persistent' | 'tls' | 'churn' | 'body-search';
const KNOWN: Scenario[] = ['persistent', 'tls', 'churn', 'body-search'];
for (const s of SCENARIOS) if (!KNOWN.includes(s as Scenario)) throw new Error(`IMAP_BENCH_SCENARIOS: unknown scenario "${s}" (known: ${KNOWN.join(', ')})`);

function envInt(name: string, dflt: number, zeroOk = false): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < (zeroOk ? 0 : 1)) throw new Error(`${name} must be a ${zeroOk ? 'non-negative' : 'positive'} integer, got "${v}"`);
  return Number(v);
}


/** What a client does on a short session after LOGIN (the churn scenario). */
function churnCycle(r: () => number, count: number): Op[] {
  const { range } = picker(r, count);
  return [
    { kind: 'SELECT', text: 'SELECT INBOX' },
    { kind: 'FETCH flags', text: 'UID FETCH 1:* (UID FLAGS)' },
    { kind: 'FETCH headers', text: `FETCH ${range(HEADER_RANGE)} (UID RFC822.SIZE FLAGS INTERNALDATE ${HEADER_FIELDS})` },
  ];
}

async function login(port: number, tls = false): Promise<RawImap> {
  const c = await RawImap.connect(port, '127.0.0.1', 30_000, tls);
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
    await c.ok(`FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE UID RFC822.SIZE INTERNALDATE ${HEADER_FIELDS})`);
    await c.ok('FETCH 1:* (BODY.PEEK[])');
    await c.ok(`SEARCH BODY ${quote(BODY_WORDS[0]!)}`);
    await c.ok(`SEARCH SUBJECT ${quote(SUBJECT_WORDS[0]!)}`);
    await c.ok('LIST "" "*"');
    await c.ok('LOGOUT');
  } finally {
    c.close();
  }
}

async function drive(port: number, scenario: Scenario, round: number): Promise<RunResult> {
  const tally = new Tally();
  const tls = scenario === 'tls';
  const started = performance.now();
  const until = started + SECONDS * 1000;
  if (scenario === 'churn') {
    await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
      const r = rng(1000 * round + i);
      while (performance.now() < until) {
        const t0 = performance.now();
        const c = await RawImap.connect(port);
        const res = await c.command(`LOGIN ${USER} ${quote(PASSWORD)}`);
        if (res.status !== 'OK') throw new Error(`LOGIN: ${res.text}`);
        tally.count('connect+LOGIN', performance.now() - t0, res.bytes);
        for (const op of churnCycle(r, N)) await tally.run(c, op);
        await tally.run(c, { kind: 'LOGOUT', text: 'LOGOUT' });
        c.close();
      }
    }));
  } else {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => login(port, tls)));
    await clients[0]!.ok('NOOP');
    const begun = performance.now();
    const end = begun + SECONDS * 1000;
    await Promise.all(clients.map(async (c, i) => {
      const r = rng(1000 * round + i);
      const { pick } = picker(r, N);
      if (scenario === 'body-search') await c.ok('SELECT INBOX');
      while (performance.now() < end) {
        const ops = scenario === 'body-search' ? [{ kind: 'SEARCH body', text: `SEARCH BODY ${quote(pick(BODY_WORDS))}` }] : syncCycle(r, N);
        for (const op of ops) {
          if (performance.now() >= end) break;
          await tally.run(c, op);
        }
      }
    }));
    for (const c of clients) {
      await c.command('LOGOUT').catch(() => undefined);
      c.close();
    }
    return { seconds: (performance.now() - begun) / 1000, total: tally.total, bytes: tally.bytes, perKind: tally.perKind, errors: tally.errors };
  }
  return { seconds: (performance.now() - started) / 1000, total: tally.total, bytes: tally.bytes, perKind: tally.perKind, errors: tally.errors };
}

/**
 * One imaptest run (see IMAPTEST above): commands/s from its per-second TSV (`output=`), whose rows hold
 * an OK count, a timed count and summed milliseconds per state.
 */
async function imaptestRun(bin: string, port: number, variant: 'persistent' | 'tls' | 'churn', round: number, dir: string): Promise<RunResult> {
  const out = join(dir, `imaptest-${variant}-${port}-${round}.tsv`);
  const args = [
    'host=127.0.0.1', `port=${port}`, `user=${USER}`, `pass=${PASSWORD}`, 'box=INBOX', `clients=${CLIENTS}`, `secs=${SECONDS}`, `seed=${round + 1}`,
    ...(variant === 'tls' ? ['ssl=any-cert'] : []),
    '-', `logout=${variant === 'churn' ? 100 : 0}`, 'list=50', 'status=50', 'fetch=100', 'fetch2=100,30', 'search=50', `output=${out}`,
  ];
  const errors: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      tail += d;
      const lines = tail.split('\n');
      tail = lines.pop() ?? '';
      for (const l of lines) if (/Error/.test(l) && errors.length < 10) errors.push(l.slice(0, 200));
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`imaptest exited with ${code}: ${errors.join('; ')}`))));
  });
  const [head, ...rows] = readFileSync(out, 'utf8').trim().split('\n');
  const states = (head ?? '').split('\t').filter((c) => c.endsWith(' count')).map((c) => c.slice(0, -6));
  const perKind = new Map<string, { n: number; ms: number }>();
  let total = 0;
  for (const row of rows) {
    const v = row.split('\t').map(Number);
    states.forEach((st, i) => {
      const k = perKind.get(st) ?? { n: 0, ms: 0 };
      // count, timed count, msecs
      k.n += v[3 * i] ?? 0;
      k.ms += v[3 * i + 2] ?? 0;
      perKind.set(st, k);
      total += v[3 * i] ?? 0;
    });
  }
  // Mean latency is msecs over OK commands (timed counts equal OK counts in this read-only mix).
  return { seconds: rows.length, total, bytes: 0, perKind, errors };
}

function report(scenario: Scenario, p: RunResult[], d: RunResult[]): void {
  console.log(`\n== ${scenario}: ${CLIENTS} clients, ${SECONDS} s per run, ${p.length} rounds (min / median / max)`);
  console.log(`  Postern  ${spread(p.map(rate)).padStart(26)} commands/s`);
  if (d.length) {
    console.log(`  Dovecot  ${spread(d.map(rate)).padStart(26)} commands/s`);
    console.log(`  ratio    ${spread(p.map((r, i) => rate(r) / rate(d[i]!)), 2).padStart(26)} x (Postern/Dovecot, same round)`);
  }
  const pk = merged(p);
  const dk = merged(d);
  console.log(`  mean latency per command type (ms), Postern${d.length ? ' vs Dovecot' : ''}:`);
  for (const [kind, k] of [...pk].sort()) {
    const o = dk.get(kind);
    console.log(`    ${kind.padEnd(16)} ${(k.ms / k.n).toFixed(2).padStart(8)}${o ? ` vs ${(o.ms / o.n).toFixed(2).padStart(8)}` : ''}   (${k.n} commands)`);
  }
  for (const r of [...p, ...d]) if (r.errors.length) console.log(`  failed commands (first ${r.errors.length}):\n    ${r.errors.join('\n    ')}`);
}

async function main(): Promise<void> {
  console.log(`bench:imap: ${N} messages, ${CLIENTS} clients, ${SECONDS} s per run, ${ROUNDS} rounds, scenarios ${SCENARIOS.join(', ')}, ${IDLE} IDLE connections`);
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
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
    // Every bench client signs in as the same user at the same moment; the default sign-in burst (5 per
    // account) would space the sixth and later attempts, as it should for a password guesser.
    writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), signIn: { burst: 1000, addressBurst: 100000 } }, null, 2) + '\n');
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

    if (!POSTERN_ONLY) {
      t0 = performance.now();
      dovecot = await startDovecot({ name: 'bench', protocols: ['imap'], implicitTls: true, users: [{ name: USER, password: PASSWORD, messages }] });
      console.log(`Dovecot: ${N} Maildir files written and server started in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    await warm(port);
    if (dovecot) await warm(dovecot.imapPort);
    for (const scenario of SCENARIOS as Scenario[]) {
      const p: RunResult[] = [];
      const d: RunResult[] = [];
      const pPort = scenario === 'tls' ? tlsPort : port;
      for (let round = 0; round < ROUNDS; round++) {
        const dPort = dovecot ? (scenario === 'tls' ? dovecot.imapsPort : dovecot.imapPort) : 0;
        // P D, D P, P D, …: neither server always runs first.
        const order = round % 2 === 0 ? ['p', 'd'] : ['d', 'p'];
        for (const who of order) {
          if (who === 'p') p.push(await drive(pPort, scenario, round));
          else if (dovecot) d.push(await drive(dPort, scenario, round));
        }
      }
      report(scenario, p, d);
    }
    const bin = process.env.IMAPTEST;
    if (bin) {
      for (const variant of ['persistent', 'tls', 'churn'] as const) {
        const p: RunResult[] = [];
        const d: RunResult[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const order = round % 2 === 0 ? ['p', 'd'] : ['d', 'p'];
          for (const who of order) {
            if (who === 'p') p.push(await imaptestRun(bin, variant === 'tls' ? tlsPort : port, variant, round, dir));
            else if (dovecot) d.push(await imaptestRun(bin, variant === 'tls' ? dovecot.imapsPort : dovecot.imapPort, variant, round, dir));
          }
        }
        report(`imaptest ${variant}` as Scenario, p, d);
      }
    }
    if (IDLE === 0) return;
    if (dovecot && process.env.IMAP_BENCH_DOVECOT_IDLE !== '0') {
      await idleMemory({ name: 'Dovecot (for comparison)', kind: 'dovecot', port: dovecot.imapPort, pid: dovecot.pid, steps: [0, Math.floor(IDLE / 2), IDLE], user: USER, password: PASSWORD });
    }
    await dovecot?.stop();
    dovecot = undefined;
    // A fresh process, so the heap the mix grew (and its later collection) does not blur the figure.
    await stopServer(server);
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
    if (server) await stopServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
