// `npm run bench:scale`: one user's INBOX at the size of a real archive, Postern next to Dovecot.
//
//  1. A deterministic generator writes SCALE_MESSAGES (200,000) messages of about 2 KB (From, To, Date,
//     Message-ID, a Subject of dictionary words, a plain-text body of 12–30 lines) to an mbox file. One
//     message in a hundred has the word "zephyr" in its subject, one in a hundred "quokka" in its body.
//  2. Postern: `postern import mbox --user alice FILE` into a running server (the CLI as an operator
//     runs it); prints the import rate, the data directory's bytes per message and the server's RSS.
//  3. Dovecot 2.3: the same messages as Maildir files (as the interop tests run it).
//  4. Over a raw IMAP socket to each, REPEAT times (after one untimed warm-up of each command):
//     SELECT INBOX, UID FETCH 1:* (FLAGS), FETCH 1:* (FLAGS RFC822.SIZE INTERNALDATE), FETCH of the last 50
//     messages' headers, SEARCH SUBJECT zephyr,
//     SEARCH FROM of one sender, and (SCALE_BODY_SEARCH=1) SEARCH BODY quokka; prints min / median / max
//     seconds per command, the ratio to Dovecot, and Postern's RSS afterwards.
//     With SCALE_SEARCH=1 (the default) Postern runs the search plugin too (its full-text index serves
//     IMAP SEARCH's text keys): after the import the bench waits until GET /api/v1/search/status says
//     every archived message is indexed, prints that catch-up time, and probes then; SCALE_SEARCH=0
//     runs the imap plugin alone (SEARCH scans).
// Prints figures, and flags a search whose number of matches differs between the two servers.
//
// Environment: SCALE_MESSAGES (200000), SCALE_REPEAT (3), SCALE_BODY_SEARCH (0), SCALE_SEARCH (1), SCALE_DOVECOT
// (1; 0 skips Dovecot), SCALE_TIMEOUT_S (600 per command).
import { createWriteStream, mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer, stopServer, type SpawnedServer } from '../helpers/spawn-server.ts';
import { CLI } from '../helpers/cli.ts';
import { makeCertificate, startDovecot, type Dovecot } from '../interop/dovecot.ts';
import { freePort } from '../interop/harness.ts';
import { ADDRESS, PASSWORD, USER, enableImapUser, folderCount, posternConfig } from '../interop/imap-targets.ts';
import { RawImap, quote } from './imap-client.ts';
import { prng as rng } from '../helpers/prng.ts';
import { dirBytes } from '../helpers/dir-bytes.ts';

const N = envInt('SCALE_MESSAGES', 200_000);
const REPEAT = envInt('SCALE_REPEAT', 3);
const BODY_SEARCH = process.env.SCALE_BODY_SEARCH === '1';
const WITH_DOVECOT = process.env.SCALE_DOVECOT !== '0';
const WITH_SEARCH = process.env.SCALE_SEARCH !== '0';
const TIMEOUT_MS = envInt('SCALE_TIMEOUT_S', 600) * 1000;

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return Number(v);
}

const WORDS = ('archive account budget meeting report invoice project schedule review update contract deadline ' +
  'customer quarter market supplier payment shipment travel office policy request approval training release ' +
  'server network backup storage license renewal planning forecast agenda summary proposal feedback').split(' ');
const SENDERS = Array.from({ length: 200 }, (_, i) => `sender${i}@partner${i % 37}.example`);


/** Message i (CRLF lines); deterministic. */
function message(i: number, r: () => number): string {
  const pick = (): string => WORDS[Math.floor(r() * WORDS.length)]!;
  const subject = Array.from({ length: 3 + Math.floor(r() * 5) }, pick);
  if (i % 100 === 7) subject.splice(1, 0, 'zephyr');
  const date = new Date(Date.UTC(2020, 0, 1) + i * 157_000).toUTCString().replace('GMT', '+0000');
  const lines = [
    `From: ${SENDERS[i % SENDERS.length]}`,
    `To: ${ADDRESS}`,
    `Subject: ${subject.join(' ')}`,
    `Date: ${date}`,
    `Message-ID: <scale-${i}@bench.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
  ];
  const bodyLines = 12 + Math.floor(r() * 19);
  for (let l = 0; l < bodyLines; l++) {
    const words = Array.from({ length: 8 + Math.floor(r() * 6) }, pick);
    if (l === 3 && i % 100 === 13) words.push('quokka');
    lines.push(words.join(' '));
  }
  return lines.join('\r\n') + '\r\n';
}

async function writeMbox(file: string): Promise<{ bytes: number; messages: Buffer[] | null }> {
  const out = createWriteStream(file);
  const r = rng(42);
  let bytes = 0;
  const keep: Buffer[] | null = WITH_DOVECOT ? [] : null;
  for (let i = 0; i < N; i++) {
    const m = message(i, r);
    bytes += m.length;
    keep?.push(Buffer.from(m, 'latin1'));
    // mboxrd: no body line of the generator starts with "From ", so nothing needs quoting.
    if (!out.write(`From MAILER-DAEMON Thu Jan  1 00:00:00 2020\n${m.replace(/\r\n/g, '\n')}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return { bytes, messages: keep };
}


function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function cli(args: string[], server: SpawnedServer, dataDir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, POSTERN_DATA_DIR: dataDir, POSTERN_ADMIN_PORT: String(server.adminPort) }, maxBuffer: 64 * 1024 * 1024, timeout: 3_600_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`postern ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(String(stdout))));
  });
}

/** Seconds until the search index holds every archived message (GET /api/v1/search/status). */
async function indexCaughtUp(server: SpawnedServer): Promise<number> {
  const t0 = performance.now();
  let reported = t0;
  for (;;) {
    const st = await server.api<{ archived: number; indexed: number; pending: number }>('GET', '/api/v1/search/status');
    if (st.pending === 0 && st.indexed >= st.archived && st.archived >= N) return (performance.now() - t0) / 1000;
    if (performance.now() - reported > 60_000) {
      reported = performance.now();
      console.log(`  search index: ${st.indexed} of ${st.archived} indexed, ${st.pending} pending, load ${loadavg()[0]?.toFixed(2)}`);
    }
    if (performance.now() - t0 > 6 * 3_600_000) throw new Error('the search index did not catch up in 6 hours');
    await new Promise((r) => setTimeout(r, 2000));
  }
}

interface Probe {
  name: string;
  text: string;
}

const PROBES: Probe[] = [
  { name: 'SELECT INBOX', text: 'SELECT INBOX' },
  { name: 'UID FETCH 1:* (FLAGS)', text: 'UID FETCH 1:* (FLAGS)' },
  { name: 'FETCH 1:* (FLAGS SIZE DATE)', text: 'FETCH 1:* (FLAGS RFC822.SIZE INTERNALDATE)' },
  { name: 'FETCH last 50 headers', text: `FETCH ${Math.max(1, N - 49)}:* (UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])` },
  { name: 'SEARCH SUBJECT zephyr', text: `SEARCH SUBJECT ${quote('zephyr')}` },
  { name: 'SEARCH FROM sender17@', text: `SEARCH FROM ${quote('sender17@')}` },
  ...(BODY_SEARCH ? [{ name: 'SEARCH BODY quokka', text: `SEARCH BODY ${quote('quokka')}` }] : []),
];

async function timed(c: RawImap, text: string): Promise<{ seconds: number; untagged: string[] }> {
  const t0 = performance.now();
  const res = await Promise.race([
    c.command(text, text.startsWith('SEARCH')),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${text}: no answer in ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS).unref()),
  ]);
  if (res.status !== 'OK') throw new Error(`${text}: ${res.status} ${res.text}`);
  return { seconds: (performance.now() - t0) / 1000, untagged: res.untagged };
}

/** Times every probe REPEAT times after a warm-up (the first, cold figure is printed separately). */
async function probe(port: number): Promise<{ cold: Map<string, number>; runs: Map<string, number[]>; answers: Map<string, string> }> {
  const c = await RawImap.connect(port, '127.0.0.1', 60_000);
  await c.command(`LOGIN ${USER} ${quote(PASSWORD)}`);
  const cold = new Map<string, number>();
  const runs = new Map<string, number[]>();
  const answers = new Map<string, string>();
  for (const p of PROBES) {
    const first = await timed(c, p.text);
    cold.set(p.name, first.seconds);
    if (p.text.startsWith('SEARCH')) answers.set(p.name, (first.untagged.find((l) => l.startsWith('* SEARCH')) ?? '').replace(/^\* SEARCH ?/, ''));
  }
  for (let i = 0; i < REPEAT; i++) {
    for (const p of PROBES) {
      const t = await timed(c, p.text);
      runs.set(p.name, [...(runs.get(p.name) ?? []), t.seconds]);
    }
  }
  await c.command('LOGOUT').catch(() => undefined);
  c.close();
  return { cold, runs, answers };
}

const spread = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return `${s[0]!.toFixed(4)} / ${med.toFixed(4)} / ${s.at(-1)!.toFixed(4)}`;
};

async function main(): Promise<void> {
  console.log(`bench:scale: ${N} messages in one INBOX, ${REPEAT} timed runs per command${BODY_SEARCH ? ', with SEARCH BODY' : ''}`);
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-scale-'));
  let server: SpawnedServer | undefined;
  let dovecot: Dovecot | undefined;
  try {
    const mbox = join(dir, 'inbox.mbox');
    let t0 = performance.now();
    const { bytes, messages } = await writeMbox(mbox);
    console.log(`generated ${N} messages, ${(bytes / 1048576).toFixed(0)} MiB (${(bytes / N).toFixed(0)} bytes each) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const cert = await makeCertificate(dir);
    const port = await freePort();
    const tlsPort = await freePort();
    const config = posternConfig(dir, { port, tlsPort, certFile: cert.certFile, keyFile: cert.keyFile, imap: { allowPlaintext: true }, plugins: WITH_SEARCH ? [{ name: 'search' }] : [] });
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    server = await spawnServer(dataDir, { POSTERN_CONFIG: config, POSTERN_IMAP_PORT: String(port), POSTERN_IMAPS_PORT: String(tlsPort) });
    await server.api('POST', '/api/v1/users', { name: USER, addresses: [ADDRESS] });
    await enableImapUser(server.adminPort, dataDir, USER, PASSWORD);
    const pid = server.child.pid as number;
    const rssBefore = rssMb(pid);
    t0 = performance.now();
    await cli(['import', 'mbox', '--user', USER, mbox], server, dataDir);
    const uploadS = (performance.now() - t0) / 1000;
    // The import returns once every message is durably in the intake; archiving may still be running.
    for (;;) {
      const n = await folderCount(server.adminPort, dataDir, USER, 'Inbox');
      if (n >= N) break;
      if (performance.now() - t0 > 4 * 3_600_000) throw new Error(`only ${n} of ${N} archived after 4 hours`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const importS = (performance.now() - t0) / 1000;
    console.log(`\nPostern: postern import mbox returned after ${uploadS.toFixed(1)} s (every message durable in the intake)`);
    const disk = dirBytes(dataDir);
    console.log(`Postern: all archived after ${importS.toFixed(1)} s = ${(N / importS).toFixed(0)} msg/s; data dir ${(disk / 1048576).toFixed(0)} MiB = ${(disk / N).toFixed(0)} bytes/message (raw ${(bytes / N).toFixed(0)}); RSS ${rssBefore.toFixed(0)} MB before, ${rssMb(pid).toFixed(0)} MB after the import`);
    if (WITH_SEARCH) {
      const indexed = await indexCaughtUp(server);
      console.log(`Postern: search index caught up ${indexed.toFixed(1)} s after the last message was archived (${(N / Math.max(indexed, 0.001)).toFixed(0)} msg/s if it all waited); RSS ${rssMb(pid).toFixed(0)} MB`);
    }
    const p = await probe(port);
    const rssAfter = rssMb(pid);

    let d: Awaited<ReturnType<typeof probe>> | undefined;
    if (WITH_DOVECOT && messages) {
      t0 = performance.now();
      dovecot = await startDovecot({ name: 'scale', protocols: ['imap'], implicitTls: false, users: [{ name: USER, password: PASSWORD, messages }] });
      console.log(`Dovecot: ${N} Maildir files written and server started in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      d = await probe(dovecot.imapPort);
    }

    console.log(`\nseconds per command (cold = first call; then min / median / max of ${REPEAT} warm runs)`);
    for (const pr of PROBES) {
      const pw = p.runs.get(pr.name) ?? [];
      const line = [`  ${pr.name.padEnd(24)} Postern cold ${p.cold.get(pr.name)!.toFixed(4)}  warm ${spread(pw)}`];
      if (d) {
        const dw = d.runs.get(pr.name) ?? [];
        const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
        line.push(`\n  ${''.padEnd(24)} Dovecot cold ${d.cold.get(pr.name)!.toFixed(4)}  warm ${spread(dw)}   Postern/Dovecot (median) ${(med(pw) / med(dw)).toFixed(2)}x`);
        // The import uploads in parallel, so UIDs differ from the file order: compare the number of matches.
        const count = (a: string | undefined): number => (a === undefined || a === '' ? 0 : a.split(' ').length);
        if (p.answers.has(pr.name) && count(p.answers.get(pr.name)) !== count(d.answers.get(pr.name))) line.push(`\n  !! ${pr.name}: Postern finds ${count(p.answers.get(pr.name))}, Dovecot ${count(d.answers.get(pr.name))}`);
      }
      console.log(line.join(''));
    }
    for (const [name, ans] of p.answers) console.log(`  ${name}: ${ans === '' ? 0 : ans.split(' ').length} matches (Postern)`);
    console.log(`Postern RSS after the IMAP commands: ${rssAfter.toFixed(0)} MB`);
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


