// `npm run bench:search`: full-text search at archive scale (issue 15 "Benchmark"), Postern next to
// Dovecot + fts-xapian on the same messages. Prints figures and flags answers that differ from what
// the generator planted; asserts nothing about speed.
//
//  1. Corpus: test/bench/search-corpus.ts writes N deterministic, realistic messages (sizes mostly
//     2–30 KB with a tail of attachments up to a few MB, 20 % with attachments incl. small PDFs,
//     text/plain and multipart/alternative, 100 users at one domain + outside correspondents, one
//     "big user" with BIG messages in Inbox) as one mbox file per user and folder.
//  2. Ingest A/B: AB_ROUNDS rounds of the same ~AB_MESSAGES-message subset of files into fresh
//     servers, index OFF and ON alternating, min / median msg/s per side (the machine's load falls on
//     both). Then the full ingest, index OFF then ON: a server started with the shipped config (config/postern.yaml; the
//     imap plugin moved to a free loopback port), once without the `search` plugin entry and once
//     with it; each user's files go in with `postern import mbox --user U [--direction sent]` (JOBS
//     CLIs at a time, biggest file first) until every message is archived. msg/s ON vs OFF. The ON
//     run goes in two halves of about N/2 messages (the big user's INBOX split by date), with the
//     index catch-up and the API queries after each half: the two query passes give each query
//     shape's growth with N, which the 1M estimate uses.
//  3. Index catch-up: after each half, until GET /api/v1/search/status says pending 0 (times
//     summed; the queries wait further until it no longer says merging, and that time is printed
//     apart); the index's size on disk (<dataDir>/search) against the raw mail bytes and the
//     searchable text; the server's RSS.
//  4. Ten query shapes through GET /api/v1/search with the admin token: one cold call, then RUNS
//     timed calls each; p50 / p95 / max. Hit totals are checked against the generator's counts
//     where the generator knows them (one more, informational shape: text inside PDF attachments).
//  5. IMAP SEARCH SUBJECT / BODY / FROM on the big user's INBOX over a raw socket, Postern and a
//     private Dovecot 2.3 with fts-xapian (Debian dovecot-imapd + dovecot-fts-xapian; `doveadm index`
//     before timing, its time printed), cold (first call in the session) then REPEAT warm rounds,
//     interleaved between the two servers. fts-xapian matches words and word prefixes, not arbitrary
//     substrings (RFC 3501 substring semantics, which Postern keeps), so the needles are whole words.
//  6. Export: `postern export --user BIG --format mbox --output F`, msg/s and MB/s.
//  7. A table with Postern vs Dovecot, ratios and the issue's targets (API p95 < 200 ms at 1M; IMAP
//     indexed SEARCH ≤ 1.5× Dovecot + fts-xapian). When N < 1,000,000 the 1M figures are
//     extrapolated (said so in the output): times linear in N, query p95 with each shape's growth
//     between the two passes (and the linear bound beside it).
// The machine's load is printed with each phase: on a shared 2-core machine every figure is noisy.
//
// Environment (or argv: --messages N --big-user N …, same names in kebab case):
//   BENCH_MESSAGES (1000000), BENCH_BIG_USER (N/10: 100,000 at 1M), BENCH_USERS (100), BENCH_SEED (1),
//   BENCH_QUERY_RUNS (20, at least 20), BENCH_IMAP_REPEAT (5), BENCH_IMPORT_JOBS (2 CLIs at once),
//   BENCH_IMPORT_PARALLEL (4 uploads per CLI), BENCH_INDEX_OFF (1; 0 skips the ingest run without the
//   index), BENCH_AB_ROUNDS (3; 0 skips the A/B), BENCH_AB_MESSAGES (min(10000, N/10)), BENCH_ONLY=ingest-ab
//   (stop after the A/B), BENCH_ONLY=web (after the API queries, time the web access's result pages and
//   stop: what `npm run bench:web` runs), BENCH_WEB (1; 0 skips the web timing), BENCH_WEB_BROWSER_RUNS (5 per
//   shape in Chromium; 0 skips the browser), BENCH_DOVECOT (1; 0 skips Dovecot), BENCH_CORPUS_DIR (keep the generated mbox files there
//   and reuse them when the shape matches), BENCH_KEEP (1 keeps the work directory), BENCH_TIMEOUT_S
//   (600 per IMAP command / query); POSTERN_PROFILE=DIR writes the servers' CPU profiles there.
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { spawnServer, stopServer, type SpawnedServer } from '../helpers/spawn-server.ts';
import { CLI } from '../helpers/cli.ts';
import { makeCertificate, startDovecot, type Dovecot } from '../interop/dovecot.ts';
import { freePort, run } from '../interop/harness.ts';
import { enableImapUser } from '../interop/imap-targets.ts';
import { RawImap, quote } from './imap-client.ts';
import { Corpus, DOMAIN, NEEDLES, mboxEntry, type CorpusShape } from './search-corpus.ts';
import { webQueries, type WebResult } from './web-pages.ts';
import { dirBytes } from '../helpers/dir-bytes.ts';

// ---------------------------------------------------------------------------------------------- settings

function argOrEnv(name: string): string | undefined {
  const flag = `--${name.replace(/^BENCH_/, '').toLowerCase().replace(/_/g, '-')}`;
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === flag && argv[i + 1] !== undefined) return argv[i + 1];
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
  }
  return process.env[name];
}

function int(name: string, dflt: number, min = 1): number {
  const v = argOrEnv(name);
  if (v === undefined || v === '') return dflt;
  const clean = v.replace(/[_,]/g, '');
  if (!/^\d+$/.test(clean) || Number(clean) < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${v}"`);
  return Number(clean);
}

const N = int('BENCH_MESSAGES', 1_000_000, 100);
const BIG = int('BENCH_BIG_USER', Math.floor(N / 10), 10);
const USERS = int('BENCH_USERS', 100, 2);
const SEED = int('BENCH_SEED', 1, 0);
const QUERY_RUNS = Math.max(20, int('BENCH_QUERY_RUNS', 20));
const IMAP_REPEAT = int('BENCH_IMAP_REPEAT', 5);
const IMPORT_JOBS = int('BENCH_IMPORT_JOBS', 2);
const IMPORT_PARALLEL = int('BENCH_IMPORT_PARALLEL', 4);
const WITH_OFF = argOrEnv('BENCH_INDEX_OFF') !== '0';
const WITH_DOVECOT = argOrEnv('BENCH_DOVECOT') !== '0';
const CORPUS_DIR = argOrEnv('BENCH_CORPUS_DIR');
const KEEP = argOrEnv('BENCH_KEEP') === '1';
const TIMEOUT_MS = int('BENCH_TIMEOUT_S', 600) * 1000;
const AB_ROUNDS = int('BENCH_AB_ROUNDS', 3, 0);
const AB_MESSAGES = int('BENCH_AB_MESSAGES', Math.min(10_000, Math.floor(N / 10)));
const ONLY_AB = argOrEnv('BENCH_ONLY') === 'ingest-ab';
const ONLY_WEB = argOrEnv('BENCH_ONLY') === 'web';
const WITH_WEB = ONLY_WEB || argOrEnv('BENCH_WEB') !== '0';
const WEB_BROWSER_RUNS = int('BENCH_WEB_BROWSER_RUNS', 5, 0);
const FULL = 1_000_000;
const PASSWORD = 'bench-search-pw';
const SHIPPED_CONFIG = fileURLToPath(new URL('../../config/postern.yaml', import.meta.url));
/** Bump when search-corpus.ts changes what it generates (a kept corpus of another version is regenerated). */
const CORPUS_VERSION = 3;

const benchStart = performance.now();
const elapsed = (): string => `${((performance.now() - benchStart) / 60_000).toFixed(1)} min`;
const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');
const log = (s: string): void => console.log(`[${elapsed()}] ${s}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (b: number): string => `${(b / 1048576).toFixed(b < 10 * 1048576 ? 1 : 0)} MiB`;

// ---------------------------------------------------------------------------------------------- corpus

interface FileInfo {
  user: string;
  folder: 'Inbox' | 'Sent';
  /** The big user's INBOX comes in two files, older and newer half (the ON run's midpoint needs both halves). */
  part: string;
  file: string;
  messages: number;
  bytes: number;
}

/** What the generator knows about the corpus (counts the searches are checked against). */
interface CorpusFacts {
  version: number;
  shape: CorpusShape;
  files: FileInfo[];
  bytes: number;
  textBytes: number;
  attachments: number;
  pdfs: number;
  largest: number;
  sizes: { p10: number; p50: number; p90: number; p99: number; in2to30: number };
  /** Planted needles, whole corpus. */
  planted: { subject: number; body: number; rare: number; pdf: number };
  /** Big user's INBOX: planted subject/body needles and From needle matches. */
  bigInbox: { messages: number; bytes: number; subject: number; body: number; from: number };
  /** Expected hits of some API queries (computed from the generated headers). */
  expect: Record<string, number>;
}

/** The outside correspondents and colleagues the queries name (fixed by the seed). */
function queryPeople(c: Corpus): { fromOutside: string; fromSurname: string; orFrom: string; orTo: string; participant: string; bigAddress: string } {
  // SEARCH FROM needle: the surname of the most frequent outside correspondent, as a whole word.
  const top = c.frequentOutside(0);
  return {
    fromOutside: top.address,
    fromSurname: top.name.split(' ').at(-1)!.toLowerCase(),
    orFrom: c.frequentOutside(3).address,
    orTo: c.users[7 % c.users.length]!.address,
    participant: c.users[5 % c.users.length]!.address,
    bigAddress: `${c.bigUser}@${DOMAIN}`,
  };
}

const SUBJECT_PHRASE = 'quarterly budget review';
const ATTACH_RANGE = { after: '2019-12-31', before: '2020-07-01', from: Date.UTC(2020, 0, 1), to: Date.UTC(2020, 6, 1) };

async function writeCorpus(dir: string, c: Corpus): Promise<CorpusFacts> {
  mkdirSync(dir, { recursive: true });
  const people = queryPeople(c);
  const streams = new Map<string, { s: WriteStream; info: FileInfo }>();
  const sizes: number[] = [];
  const facts: CorpusFacts = {
    version: CORPUS_VERSION, shape: c.shape, files: [], bytes: 0, textBytes: 0, attachments: 0, pdfs: 0, largest: 0,
    sizes: { p10: 0, p50: 0, p90: 0, p99: 0, in2to30: 0 },
    planted: { subject: 0, body: 0, rare: 0, pdf: 0 },
    bigInbox: { messages: 0, bytes: 0, subject: 0, body: 0, from: 0 },
    expect: { fromOutside: 0, subjectPhrase: 0, attachRange: 0 },
  };
  const t0 = performance.now();
  let lastReport = t0;
  for (let i = 0; i < c.shape.n; i++) {
    const g = c.message(i);
    const part = g.owner.user === c.bigUser && g.owner.folder === 'Inbox' ? (i < c.shape.n / 2 ? 'a' : 'b') : '';
    const key = `${g.owner.user}.${g.owner.folder}${part ? `.${part}` : ''}`;
    let out = streams.get(key);
    if (!out) {
      const file = join(dir, `${key}.mbox`);
      out = { s: createWriteStream(file), info: { user: g.owner.user, folder: g.owner.folder, part, file, messages: 0, bytes: 0 } };
      streams.set(key, out);
    }
    let ok = true;
    for (const part of mboxEntry(g)) ok = out.s.write(part) && ok;
    if (!ok) await once(out.s, 'drain');
    out.info.messages++;
    out.info.bytes += g.bytes.length;
    sizes.push(g.bytes.length);
    facts.bytes += g.bytes.length;
    facts.textBytes += g.textBytes;
    facts.largest = Math.max(facts.largest, g.bytes.length);
    if (g.hasAttachment) facts.attachments++;
    if (g.hasPdf) facts.pdfs++;
    for (const k of ['subject', 'body', 'rare', 'pdf'] as const) if (g.planted[k]) facts.planted[k]++;
    if (g.from.includes(people.fromOutside)) facts.expect.fromOutside!++;
    if (g.subject.includes(SUBJECT_PHRASE)) facts.expect.subjectPhrase!++;
    if (g.hasAttachment && g.date.getTime() >= ATTACH_RANGE.from && g.date.getTime() < ATTACH_RANGE.to) facts.expect.attachRange!++;
    if (g.owner.user === c.bigUser && g.owner.folder === 'Inbox') {
      facts.bigInbox.messages++;
      facts.bigInbox.bytes += g.bytes.length;
      if (g.planted.subject) facts.bigInbox.subject++;
      if (g.planted.body) facts.bigInbox.body++;
      if (g.from.includes(people.fromSurname)) facts.bigInbox.from++;
    }
    if (performance.now() - lastReport > 30_000) {
      lastReport = performance.now();
      log(`  generated ${i + 1} / ${c.shape.n} (${((i + 1) / ((lastReport - t0) / 1000)).toFixed(0)} msg/s)`);
    }
  }
  for (const { s, info } of streams.values()) {
    s.end();
    await once(s, 'finish');
    facts.files.push(info);
  }
  sizes.sort((a, b) => a - b);
  const q = (p: number): number => sizes[Math.min(sizes.length - 1, Math.floor(p * sizes.length))]!;
  facts.sizes = { p10: q(0.1), p50: q(0.5), p90: q(0.9), p99: q(0.99), in2to30: sizes.filter((s) => s >= 2048 && s <= 30 * 1024).length / sizes.length };
  facts.files.sort((a, b) => b.messages - a.messages);
  writeFileSync(join(dir, 'corpus.json'), JSON.stringify(facts, null, 1));
  return facts;
}

async function corpus(dir: string, c: Corpus): Promise<CorpusFacts> {
  const manifest = join(dir, 'corpus.json');
  if (existsSync(manifest)) {
    const facts = JSON.parse(readFileSync(manifest, 'utf8')) as CorpusFacts;
    if (facts.version === CORPUS_VERSION && JSON.stringify(facts.shape) === JSON.stringify(c.shape) && facts.files.every((f) => existsSync(f.file))) {
      log(`reusing the corpus in ${dir}`);
      return facts;
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return writeCorpus(dir, c);
}

// ---------------------------------------------------------------------------------------------- servers


function rssMb(pid: number | undefined): number {
  if (!pid || !existsSync(`/proc/${pid}/status`)) return Number.NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** The shipped configuration with the imap plugin on the given loopback ports, with or without `search`. */
function benchConfig(dir: string, name: string, o: { search: boolean; port: number; certFile: string; keyFile: string }): string {
  const shipped = parseYaml(readFileSync(SHIPPED_CONFIG, 'utf8')) as { plugins?: Array<{ name: string; config?: Record<string, unknown> }> } & Record<string, unknown>;
  const plugins = (shipped.plugins ?? []).filter((p) => o.search || p.name !== 'search').map((p) =>
    p.name === 'imap' ? { ...p, config: { ...p.config, host: '127.0.0.1', port: o.port, tlsPort: null, tls: { cert: o.certFile, key: o.keyFile }, allowPlaintext: true } } : p);
  if (!plugins.some((p) => p.name === 'imap')) throw new Error('the shipped config has no imap plugin entry');
  if (o.search && !plugins.some((p) => p.name === 'search')) throw new Error('the shipped config has no search plugin entry');
  const file = join(dir, `${name}.yaml`);
  // dataDir comes from POSTERN_DATA_DIR (spawnServer); JSON is YAML.
  writeFileSync(file, JSON.stringify({ ...shipped, plugins }, null, 2) + '\n');
  return file;
}

function cli(args: string[], server: SpawnedServer, dataDir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], {
      env: { ...process.env, POSTERN_DATA_DIR: dataDir, POSTERN_ADMIN_PORT: String(server.adminPort) }, maxBuffer: 64 * 1024 * 1024, timeout: 6 * 3_600_000,
    }, (err, stdout, stderr) => (err ? reject(new Error(`postern ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(String(stdout))));
  });
}

interface Ingest {
  label: string;
  seconds: number;
  cliSeconds: number;
  messages: number;
  bytes: number;
  rate: number;
  mbPerS: number;
  dataDirBytes: number;
  rss: number;
  load: string;
  indexedAtEnd: number;
}

async function startPostern(dir: string, label: string, search: boolean, cert: { certFile: string; keyFile: string }): Promise<{ server: SpawnedServer; dataDir: string; imapPort: number }> {
  const imapPort = await freePort();
  const config = benchConfig(dir, `postern-${label}`, { search, port: imapPort, ...cert });
  const dataDir = join(dir, `data-${label}`);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const server = await spawnServer(dataDir, { POSTERN_CONFIG: config, POSTERN_IMAP_PORT: String(imapPort)});
  return { server, dataDir, imapPort };
}

async function addUsers(server: SpawnedServer, c: Corpus): Promise<void> {
  for (const [k, u] of c.userNames.entries()) await server.api('POST', '/api/v1/users', { name: u, addresses: [c.users[k]!.address] });
}

/** Splits the files in two sets of about N/2 messages: the big user's older INBOX half and files filling up to N/2 first. */
function halves(files: FileInfo[]): [FileInfo[], FileInfo[]] {
  const first: FileInfo[] = [];
  const second: FileInfo[] = [];
  let a = 0;
  let b = 0;
  for (const f of files) {
    if (f.part === 'a') { first.push(f); a += f.messages; }
    else if (f.part === 'b') { second.push(f); b += f.messages; }
  }
  for (const f of files) {
    if (f.part) continue;
    if (a <= b) { first.push(f); a += f.messages; } else { second.push(f); b += f.messages; }
  }
  return [first, second];
}

async function ingest(label: string, server: SpawnedServer, dataDir: string, files: FileInfo[], c: Corpus): Promise<Ingest> {
  const queue = [...files].sort((x, y) => y.messages - x.messages); // biggest first
  const messages = files.reduce((s, f) => s + f.messages, 0);
  const bytes = files.reduce((s, f) => s + f.bytes, 0);
  const t0 = performance.now();
  let done = 0;
  let lastReport = t0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const f = queue.shift();
      if (!f) return;
      await cli(['import', 'mbox', '--user', f.user, ...(f.folder === 'Sent' ? ['--direction', 'sent'] : []), '--parallel', String(IMPORT_PARALLEL), f.file], server, dataDir);
      done += f.messages;
      if (performance.now() - lastReport > 60_000) {
        lastReport = performance.now();
        log(`  ${label}: ${done} / ${messages} messages uploaded (${(done / ((lastReport - t0) / 1000)).toFixed(0)} msg/s), load ${load()}`);
      }
    }
  };
  await Promise.all(Array.from({ length: IMPORT_JOBS }, worker));
  const cliSeconds = (performance.now() - t0) / 1000;
  // Uploads are durable in the intake when the CLI returns; archiving may still run.
  for (;;) {
    const st = await server.api<{ intake: { depth: number } }>('GET', '/api/v1/status');
    if (st.intake.depth === 0) break;
    if (performance.now() - t0 > 6 * 3_600_000) throw new Error(`${label}: intake not drained after 6 hours`);
    await sleep(200);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { label, seconds, cliSeconds, messages, bytes, rate: messages / seconds, mbPerS: bytes / 1048576 / seconds, dataDirBytes: dirBytes(dataDir), rss: rssMb(server.child.pid), load: load(), indexedAtEnd: await documents(server) };
}

async function documents(server: SpawnedServer): Promise<number> {
  try {
    return (await server.api<{ documents: number }>('GET', '/api/v1/search/status')).documents;
  } catch {
    return 0; // no search plugin
  }
}

async function checkArchived(label: string, server: SpawnedServer, c: Corpus, want: number): Promise<void> {
  let archived = 0;
  for (const u of c.userNames) {
    const r = await server.api<{ folders: Array<{ folder: string; messages: number }> }>('GET', `/api/v1/users/${u}/folders`);
    archived += r.folders.reduce((a, f) => a + f.messages, 0);
  }
  if (archived !== want) console.log(`  !! ${label}: ${archived} entries archived, ${want} generated`);
}

/** Two ingests (ON run: halves) as one figure. */
function combine(label: string, parts: Ingest[]): Ingest {
  const last = parts[parts.length - 1]!;
  const seconds = parts.reduce((s, p) => s + p.seconds, 0);
  const messages = parts.reduce((s, p) => s + p.messages, 0);
  const bytes = parts.reduce((s, p) => s + p.bytes, 0);
  return { ...last, label, seconds, cliSeconds: parts.reduce((s, p) => s + p.cliSeconds, 0), messages, bytes, rate: messages / seconds, mbPerS: bytes / 1048576 / seconds, indexedAtEnd: parts.reduce((s, p) => s + p.indexedAtEnd, 0) };
}

interface SearchStatus { documents: number; archived: number; indexed: number; pending: number; oldestPendingAt: string | null; failedExtractions: number; merging: boolean }

/** seconds: until every entry was indexed; mergedSeconds: until the indexer had also merged the field tables (queries are timed after that). */
interface CatchUp { seconds: number; mergedSeconds: number; docs: number; rate: number; status: SearchStatus; maxRss: number; statusMs: number[] }

async function catchUp(server: SpawnedServer, startDocs: number): Promise<CatchUp> {
  const t0 = performance.now();
  let lastReport = t0;
  let maxRss = 0;
  const statusMs: number[] = [];
  let indexed: number | null = null;
  for (;;) {
    const t1 = performance.now();
    const st = await server.api<SearchStatus>('GET', '/api/v1/search/status');
    statusMs.push(performance.now() - t1);
    const t = (performance.now() - t0) / 1000;
    maxRss = Math.max(maxRss, rssMb(server.child.pid));
    if (st.pending === 0 && st.indexed >= st.archived) {
      indexed ??= t;
      if (!st.merging) return { seconds: indexed, mergedSeconds: t, docs: st.documents - startDocs, rate: (st.documents - startDocs) / Math.max(indexed, 0.001), status: st, maxRss, statusMs };
    } else indexed = null;
    if (performance.now() - lastReport > 60_000) {
      lastReport = performance.now();
      log(`  index: ${st.documents} documents, ${st.pending} pending (${((st.documents - startDocs) / t).toFixed(0)} docs/s so far), RSS ${rssMb(server.child.pid).toFixed(0)} MB, load ${load()}`);
    }
    if (t > 6 * 3600) throw new Error('the index did not catch up in 6 hours');
    // Every status call counts the index (it runs on the server's main thread): poll gently.
    await sleep(2000);
  }
}

/**
 * Ingest A/B: the same subset of files (about AB_MESSAGES messages: whole files of the smaller users,
 * by name) into fresh servers, index OFF and ON alternating (OFF, ON, then ON, OFF, …), AB_ROUNDS
 * rounds: min / median msg/s per side, so a change in the machine's load falls on both.
 */
async function ingestAB(dir: string, cert: { certFile: string; keyFile: string }, facts: CorpusFacts, c: Corpus): Promise<{ off: number[]; on: number[]; messages: number; files: number }> {
  const subset: FileInfo[] = [];
  let messages = 0;
  for (const f of [...facts.files].filter((x) => x.user !== c.bigUser).sort((a, b) => a.file.localeCompare(b.file))) {
    if (messages >= AB_MESSAGES) break;
    subset.push(f);
    messages += f.messages;
  }
  const rates = { off: [] as number[], on: [] as number[] };
  for (let r = 0; r < AB_ROUNDS; r++) {
    for (const side of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const s = await startPostern(dir, `ab-${side}`, side === 'on', cert);
      try {
        await addUsers(s.server, c);
        const x = await ingest(`A/B ${side}`, s.server, s.dataDir, subset, c);
        rates[side].push(x.rate);
        log(`  A/B round ${r + 1}, index ${side.toUpperCase()}: ${x.rate.toFixed(0)} msg/s (${duration(x.seconds)})${side === 'on' ? `, ${x.indexedAtEnd} documents indexed meanwhile` : ''}, RSS ${x.rss.toFixed(0)} MB, load ${x.load}`);
      } finally {
        await stopServer(s.server);
        rmSync(s.dataDir, { recursive: true, force: true });
      }
    }
  }
  return { ...rates, messages, files: subset.length };
}

// ---------------------------------------------------------------------------------------------- API queries

interface Shape {
  name: string;
  q: string;
  user?: string;
  /** Expected total from the generator (null: not known). */
  expect: number | null;
  /** Informational: not one of the ten shapes. */
  extra?: boolean;
}

function shapes(c: Corpus, facts: CorpusFacts): Shape[] {
  const p = queryPeople(c);
  return [
    { name: 'rare word', q: NEEDLES.rare, expect: facts.planted.rare },
    { name: 'common word', q: 'meeting', expect: null },
    { name: 'from:', q: `from:${p.fromOutside}`, expect: facts.expect.fromOutside ?? null },
    { name: 'participant:', q: `participant:${p.participant}`, expect: null },
    { name: 'subject phrase', q: `subject:"${SUBJECT_PHRASE}"`, expect: facts.expect.subjectPhrase ?? null },
    { name: 'has:attachment + dates', q: `has:attachment after:${ATTACH_RANGE.after} before:${ATTACH_RANGE.before}`, expect: facts.expect.attachRange ?? null },
    { name: 'body: word', q: `body:${NEEDLES.body}`, expect: facts.planted.body },
    { name: 'NOT', q: `invoice NOT from:${DOMAIN}`, expect: null },
    { name: 'OR of two fields', q: `from:${p.orFrom} OR to:${p.orTo}`, expect: null },
    { name: 'user-scoped', q: 'budget', user: c.bigUser, expect: null },
    { name: 'attachment: PDF text', q: `attachment:${NEEDLES.pdf}`, expect: facts.planted.pdf, extra: true },
  ];
}

interface QueryResult { shape: Shape; cold: number; runs: number[]; total: number; totalExact: boolean; error?: string }

async function apiQueries(server: SpawnedServer, dataDir: string, list: Shape[]): Promise<QueryResult[]> {
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const one = async (s: Shape): Promise<{ ms: number; total: number; totalExact: boolean }> => {
    const url = `http://127.0.0.1:${server.adminPort}/api/v1/search?${new URLSearchParams({ q: s.q, limit: '50', ...(s.user ? { user: s.user } : {}) })}`;
    const t0 = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(TIMEOUT_MS) });
    const body = (await res.json()) as { total?: number; totalExact?: boolean; error?: string };
    const ms = performance.now() - t0;
    if (!res.ok) throw new Error(`${res.status} ${body.error ?? ''}`);
    return { ms, total: body.total ?? 0, totalExact: body.totalExact ?? false };
  };
  const out: QueryResult[] = [];
  for (const s of list) {
    try {
      const cold = await one(s);
      const runs: number[] = [];
      for (let i = 0; i < QUERY_RUNS; i++) runs.push((await one(s)).ms);
      out.push({ shape: s, cold: cold.ms, runs, total: cold.total, totalExact: cold.totalExact });
    } catch (err) {
      out.push({ shape: s, cold: Number.NaN, runs: [], total: 0, totalExact: false, error: (err as Error).message });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- IMAP

interface Probe { name: string; text: string; expect: number }

function imapProbes(c: Corpus, facts: CorpusFacts): Probe[] {
  const p = queryPeople(c);
  return [
    { name: `SEARCH SUBJECT ${NEEDLES.subject}`, text: `SEARCH SUBJECT ${quote(NEEDLES.subject)}`, expect: facts.bigInbox.subject },
    { name: `SEARCH BODY ${NEEDLES.body}`, text: `SEARCH BODY ${quote(NEEDLES.body)}`, expect: facts.bigInbox.body },
    { name: `SEARCH FROM ${p.fromSurname}`, text: `SEARCH FROM ${quote(p.fromSurname)}`, expect: facts.bigInbox.from },
  ];
}

interface ImapSide { cold: Map<string, number>; runs: Map<string, number[]>; counts: Map<string, number>; select: number }

async function timedCommand(conn: RawImap, text: string): Promise<{ seconds: number; count: number }> {
  const t0 = performance.now();
  const res = await Promise.race([
    conn.command(text, true),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${text}: no answer in ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS).unref()),
  ]);
  if (res.status !== 'OK') throw new Error(`${text}: ${res.status} ${res.text}`);
  const line = res.untagged.find((l) => l.startsWith('* SEARCH')) ?? '* SEARCH';
  const ids = line.replace(/^\* SEARCH ?/, '').trim();
  return { seconds: (performance.now() - t0) / 1000, count: ids === '' ? 0 : ids.split(/\s+/).length };
}

async function imapSession(port: number, user: string): Promise<{ conn: RawImap; select: number }> {
  const conn = await RawImap.connect(port, '127.0.0.1', 60_000);
  await conn.ok(`LOGIN ${quote(user)} ${quote(PASSWORD)}`);
  const t0 = performance.now();
  await conn.ok('SELECT INBOX');
  return { conn, select: (performance.now() - t0) / 1000 };
}

/** Cold (first call of each command in a new session), then REPEAT warm rounds, both servers interleaved. */
async function imapCompare(targets: Array<{ name: string; port: number }>, user: string, probes: Probe[]): Promise<Map<string, ImapSide>> {
  const sides = new Map<string, ImapSide>();
  const conns = new Map<string, RawImap>();
  for (const t of targets) {
    const { conn, select } = await imapSession(t.port, user);
    conns.set(t.name, conn);
    const side: ImapSide = { cold: new Map(), runs: new Map(), counts: new Map(), select };
    for (const p of probes) {
      const r = await timedCommand(conn, p.text);
      side.cold.set(p.name, r.seconds);
      side.counts.set(p.name, r.count);
    }
    sides.set(t.name, side);
  }
  for (let i = 0; i < IMAP_REPEAT; i++) {
    const order = i % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const side = sides.get(t.name)!;
      for (const p of probes) {
        const r = await timedCommand(conns.get(t.name)!, p.text);
        side.runs.set(p.name, [...(side.runs.get(p.name) ?? []), r.seconds]);
      }
    }
  }
  for (const conn of conns.values()) {
    await conn.command('LOGOUT').catch(() => undefined);
    conn.close();
  }
  return sides;
}

const FTS_XAPIAN = '/usr/lib/dovecot/modules/lib21_fts_xapian_plugin.so';

async function startDovecotFts(c: Corpus): Promise<{ dc: Dovecot; writeSeconds: number; indexSeconds: number; messages: number }> {
  if (!existsSync(FTS_XAPIAN)) throw new Error(`${FTS_XAPIAN} missing: install dovecot-fts-xapian (test/interop/install-deps.sh)`);
  // fts-xapian 1.5.5 (Debian 12) README: mail_plugins fts fts_xapian; fts = xapian; fts_xapian = partial=3 full=20;
  // fts_autoindex. fts_enforced = yes: a search never silently falls back to reading every message.
  const extraConfig = [
    'mail_plugins = $mail_plugins fts fts_xapian',
    'plugin {',
    '  fts = xapian',
    '  fts_xapian = partial=3 full=20 verbose=0',
    '  fts_autoindex = yes',
    '  fts_enforced = yes',
    '}',
    'service indexer-worker {',
    '  vsz_limit = 2G',
    '}',
  ].join('\n');
  const t0 = performance.now();
  const dc = await startDovecot({ name: 'bench-search', protocols: ['imap'], implicitTls: false, users: [{ name: c.bigUser, password: PASSWORD, messages: [] }], extraConfig });
  let messages = 0;
  try {
    for (let i = 0; i < c.shape.n; i++) {
      const o = c.ownerOf(i);
      if (o.user !== c.bigUser || o.folder !== 'Inbox') continue;
      dc.addMessage(c.bigUser, c.message(i).bytes);
      messages++;
    }
    const writeSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const r = await run('doveadm', ['-c', join(dc.dir, 'dovecot.conf'), 'index', '-u', c.bigUser, 'INBOX'], { timeoutMs: 6 * 3_600_000 });
    if (r.code !== 0) throw new Error(`doveadm index: exit ${r.code}\n${r.stderr}\n${dc.logs().slice(-3000)}`);
    return { dc, writeSeconds, indexSeconds: (performance.now() - t1) / 1000, messages };
  } catch (err) {
    await dc.stop().catch(() => undefined);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------- output

const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
function pct(xs: number[], p: number): number {
  const s = sorted(xs);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}
const median = (xs: number[]): number => pct(xs, 0.5);
const ms = (x: number): string => (Number.isNaN(x) ? '—' : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`);
const secs = (x: number): string => ms(x * 1000);
const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number): string => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
function duration(s: number): string {
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// ---------------------------------------------------------------------------------------------- main

/** The commit measured, and whether the working tree had uncommitted changes (they are measured too). */
async function treeState(): Promise<string> {
  const head = await run('git', ['rev-parse', '--short', 'HEAD']).catch(() => null);
  const status = await run('git', ['status', '--porcelain', '--untracked-files=no']).catch(() => null);
  if (!head || head.code !== 0) return 'not a git checkout';
  const changed = status ? status.stdout.toString().split('\n').filter((l) => l.trim() !== '') : [];
  return `${head.stdout.toString().trim()}${changed.length ? ` + uncommitted changes in ${changed.length} tracked files (${changed.map((l) => l.slice(3)).slice(0, 6).join(', ')}${changed.length > 6 ? ', …' : ''})` : ''}`;
}

/** Wall seconds of one `postern --help` (the fixed cost every import CLI pays before its first upload). */
async function cliStartSeconds(): Promise<number> {
  const t0 = performance.now();
  await run(process.execPath, [CLI, '--help']);
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  console.log(`bench:search: ${N.toLocaleString('en')} messages, ${USERS} users, big user ${BIG.toLocaleString('en')} in INBOX (+${Math.floor(BIG / 10).toLocaleString('en')} in Sent), seed ${SEED}`);
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load ${load()}`);
  console.log(`tree: ${await treeState()}`);
  if (N < FULL) console.log(`NOTE: measured at ${N.toLocaleString('en')} messages, not the issue's 1,000,000 (which it allows: "measure 200k and 1M by extrapolation"); every "1M" figure below is extrapolated from these measurements, not measured.`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-search-'));
  const c = new Corpus({ n: N, big: BIG, users: USERS, seed: SEED });
  const corpusDir = CORPUS_DIR ?? join(dir, 'corpus');
  let server: SpawnedServer | undefined;
  let dovecot: Dovecot | undefined;
  try {
    // 1. corpus
    let t0 = performance.now();
    const facts = await corpus(corpusDir, c);
    log(`corpus: ${N} messages, ${mib(facts.bytes)} (mean ${(facts.bytes / N / 1024).toFixed(1)} KB; p10/p50/p90/p99 ${[facts.sizes.p10, facts.sizes.p50, facts.sizes.p90, facts.sizes.p99].map((s) => (s / 1024).toFixed(1)).join(' / ')} KB; ${(facts.sizes.in2to30 * 100).toFixed(0)} % in 2–30 KB; largest ${mib(facts.largest)}), ` +
      `${(facts.attachments / N * 100).toFixed(1)} % with attachments, ${(facts.pdfs / N * 100).toFixed(1)} % with a PDF; searchable text ${mib(facts.textBytes)}; ${facts.files.length} mbox files; in ${duration((performance.now() - t0) / 1000)}`);
    log(`planted: "${NEEDLES.subject}" in ${facts.planted.subject} subjects, "${NEEDLES.body}" in ${facts.planted.body} bodies, "${NEEDLES.rare}" in ${facts.planted.rare}, "${NEEDLES.pdf}" in ${facts.planted.pdf} PDFs; big user ${c.bigUser}: INBOX ${facts.bigInbox.messages} messages (${mib(facts.bigInbox.bytes)})`);

    const cert = await makeCertificate(dir);

    // 2a. ingest A/B on a subset, alternating OFF and ON
    let ab: Awaited<ReturnType<typeof ingestAB>> | undefined;
    if (AB_ROUNDS > 0) {
      log(`ingest A/B: ${AB_ROUNDS} rounds of index OFF and ON alternating, ~${AB_MESSAGES} messages each, load ${load()}`);
      ab = await ingestAB(dir, cert, facts, c);
      const abLine = `ingest A/B (${ab.messages} messages in ${ab.files} files, ${AB_ROUNDS} rounds): OFF min/median/max ${ab.off.map((x) => x.toFixed(0)).sort((x, y) => Number(x) - Number(y)).join(' / ')} msg/s, ON ${ab.on.map((x) => x.toFixed(0)).sort((x, y) => Number(x) - Number(y)).join(' / ')} msg/s; index ON costs ${((1 - median(ab.on) / median(ab.off)) * 100).toFixed(1)} % (medians)`;
      log(abLine);
      if (ONLY_AB) return;
    }

    // 2. ingest without the index
    let off: Ingest | undefined;
    if (WITH_OFF) {
      const s = await startPostern(dir, 'off', false, cert);
      server = s.server;
      log(`ingest, search plugin OFF: importing ${facts.files.length} files (${IMPORT_JOBS} CLIs at once, --parallel ${IMPORT_PARALLEL}; one CLI start takes ${(await cliStartSeconds()).toFixed(1)} s now), load ${load()}`);
      await addUsers(s.server, c);
      off = await ingest('index OFF', s.server, s.dataDir, facts.files, c);
      await checkArchived('index OFF', s.server, c, N);
      log(`  index OFF: ${off.rate.toFixed(0)} msg/s (${off.mbPerS.toFixed(1)} MiB/s), ${duration(off.seconds)} (CLIs done after ${duration(off.cliSeconds)}), data dir ${mib(off.dataDirBytes)}, RSS ${off.rss.toFixed(0)} MB, load ${off.load}`);
      await stopServer(s.server);
      server = undefined;
      rmSync(s.dataDir, { recursive: true, force: true });
    }

    // 3. ingest with the index in two halves (the API queries run at the midpoint too, for their growth with N), catch-up after each
    const s = await startPostern(dir, 'on', true, cert);
    server = s.server;
    await addUsers(s.server, c);
    const [firstHalf, secondHalf] = halves(facts.files);
    const list = shapes(c, facts);
    const onParts: Ingest[] = [];
    const catchUps: CatchUp[] = [];
    let mid: { messages: number; results: QueryResult[] } | undefined;
    let maxRss = 0;
    for (const [k, files] of [firstHalf, secondHalf].entries()) {
      const label = `index ON, half ${k + 1}`;
      log(`ingest, search plugin ON, half ${k + 1}: importing ${files.length} files, load ${load()}`);
      const part = await ingest(label, s.server, s.dataDir, files, c);
      onParts.push(part);
      log(`  ${label}: ${part.messages} messages, ${part.rate.toFixed(0)} msg/s (${part.mbPerS.toFixed(1)} MiB/s), ${duration(part.seconds)}, ${part.indexedAtEnd} documents in the index at its end, RSS ${part.rss.toFixed(0)} MB, load ${part.load}`);
      const before = await documents(s.server);
      const cu = await catchUp(s.server, before);
      catchUps.push(cu);
      maxRss = Math.max(maxRss, cu.maxRss, part.rss);
      log(`  caught up ${duration(cu.seconds)} after it (${cu.docs} documents at ${cu.rate.toFixed(0)} docs/s), field tables merged ${duration(cu.mergedSeconds - cu.seconds)} later; ${cu.status.documents} documents, ${cu.status.failedExtractions} failed extractions; index ${mib(dirBytes(join(s.dataDir, 'search')))}; RSS max ${cu.maxRss.toFixed(0)} MB, now ${rssMb(s.server.child.pid).toFixed(0)} MB`);
      if (k === 0) {
        log(`API queries at the midpoint (${cu.status.documents} documents): ${QUERY_RUNS} timed runs each after one cold call, load ${load()}`);
        mid = { messages: cu.status.documents, results: await apiQueries(s.server, s.dataDir, list) };
      }
    }
    await checkArchived('index ON', s.server, c, N);
    const on = combine('index ON', onParts);
    const cuSeconds = catchUps.reduce((x, y) => x + y.seconds, 0);
    const cuDocs = catchUps.reduce((x, y) => x + y.docs, 0);
    const cuRate = cuDocs / cuSeconds;
    const finalStatus = catchUps[catchUps.length - 1]!.status;
    const searchDir = join(s.dataDir, 'search');
    const indexBytes = dirBytes(searchDir);
    const indexFiles = existsSync(searchDir) ? readdirSync(searchDir).map((f) => `${f} ${mib(statSync(join(searchDir, f)).size)}`).join(', ') : '';
    const archiveBytes = dirBytes(s.dataDir) - indexBytes;
    log(`  index ${mib(indexBytes)} (${indexFiles}); archive ${mib(archiveBytes)}`);
    console.log((await cli(['search', 'status'], s.server, s.dataDir)).split('\n').slice(0, 3).map((l) => `    ${l}`).join('\n'));

    // 4. API queries
    log(`API queries (${N} messages): ${QUERY_RUNS} timed runs each after one cold call, load ${load()}`);
    const qr = await apiQueries(s.server, s.dataDir, list);

    // 4b. the web access: time to the first result page, over HTTP and in Chromium
    let web: { results: WebResult[]; signInMs: number; auditor: string } | undefined;
    if (WITH_WEB) {
      log(`web access: GET /search as an auditor, ${QUERY_RUNS} runs per shape after one cold call${WEB_BROWSER_RUNS > 0 ? `, then ${WEB_BROWSER_RUNS} page loads in Chromium` : ''}, load ${load()}`);
      web = await webQueries(s.server, list.filter((x) => !x.extra), QUERY_RUNS, WEB_BROWSER_RUNS);
      printWeb(web, N);
      if (ONLY_WEB) {
        console.log(`\nload at the end ${load()}; total ${elapsed()}`);
        return;
      }
    }

    // 5. IMAP: Postern, then Dovecot + fts-xapian, interleaved
    await enableImapUser(s.server.adminPort, s.dataDir, c.bigUser, PASSWORD);
    const probes = imapProbes(c, facts);
    let dcInfo: { writeSeconds: number; indexSeconds: number; messages: number } | undefined;
    let dcHome: { total: number; index: number } | undefined;
    if (WITH_DOVECOT) {
      log(`Dovecot + fts-xapian: writing ${facts.bigInbox.messages} Maildir files and running doveadm index, load ${load()}`);
      const d = await startDovecotFts(c);
      dovecot = d.dc;
      dcInfo = d;
      const maildir = d.dc.maildir(c.bigUser);
      const home = dirBytes(join(maildir, '..'));
      dcHome = { total: home, index: home - dirBytes(join(maildir, 'cur')) - dirBytes(join(maildir, 'new')) };
      log(`  Maildir written in ${duration(d.writeSeconds)}; doveadm index -u ${c.bigUser} INBOX: ${duration(d.indexSeconds)} (${(d.messages / d.indexSeconds).toFixed(0)} msg/s); home ${mib(home)}, of which indexes (fts-xapian + dovecot.index*) ${mib(dcHome.index)}`);
    }
    log(`IMAP SEARCH on ${c.bigUser}'s INBOX: cold, then ${IMAP_REPEAT} warm rounds, load ${load()}`);
    const targets = [{ name: 'postern', port: s.imapPort }, ...(dovecot ? [{ name: 'dovecot', port: dovecot.imapPort }] : [])];
    const sides = await imapCompare(targets, c.bigUser, probes);

    // 6. export
    log(`export: postern export --user ${c.bigUser} --format mbox, load ${load()}`);
    const exportFile = join(dir, 'export.mbox');
    t0 = performance.now();
    await cli(['export', '--user', c.bigUser, '--format', 'mbox', '--output', exportFile], s.server, s.dataDir);
    const exportSeconds = (performance.now() - t0) / 1000;
    const exportBytes = statSync(exportFile).size;
    const exportMessages = readFileSync(`${exportFile}.manifest.jsonl`, 'utf8').split('\n').filter((l) => l.includes('"type":"message"')).length;
    const expectedExport = facts.files.filter((f) => f.user === c.bigUser).reduce((a, f) => a + f.messages, 0);
    rmSync(exportFile, { force: true });

    // 7. table
    const scale = FULL / N;
    console.log(`\n=== bench:search results: ${N.toLocaleString('en')} messages, ${USERS} users, big INBOX ${facts.bigInbox.messages.toLocaleString('en')}${N < FULL ? `; "1M" figures are extrapolated from ${N.toLocaleString('en')} (not measured)` : ''}; total ${elapsed()} ===\n`);
    console.log(`Ingest (postern import mbox --user, ${facts.files.length} files, ${IMPORT_JOBS} CLIs at once, until archived; the ON run in two halves with catch-up and queries between, times summed)`);
    const ingestLine = (x: Ingest): string => `  ${pad(x.label, 10)} ${lpad(x.rate.toFixed(0), 6)} msg/s  ${lpad(x.mbPerS.toFixed(1), 5)} MiB/s  ${lpad(duration(x.seconds), 9)}   1M: ${duration(FULL / x.rate)}   load at end ${x.load}`;
    if (off) console.log(ingestLine(off));
    console.log(ingestLine(on));
    const ingestCost = off ? (1 - on.rate / off.rate) * 100 : Number.NaN;
    if (off) console.log(`  index ON costs ${ingestCost.toFixed(1)} % of ingest throughput in these two full runs (one each: the machine's load may differ between them)`);
    const abCost = ab ? (1 - median(ab.on) / median(ab.off)) * 100 : Number.NaN;
    if (ab) console.log(`  A/B, ${ab.messages} messages, ${AB_ROUNDS} alternating rounds: OFF min/median ${Math.min(...ab.off).toFixed(0)} / ${median(ab.off).toFixed(0)} msg/s, ON ${Math.min(...ab.on).toFixed(0)} / ${median(ab.on).toFixed(0)} msg/s: index ON costs ${abCost.toFixed(1)} % (medians; target ≤ 10 %)`);
    console.log('\nIndex');
    const lastStatus = catchUps[catchUps.length - 1]!.statusMs;
    console.log(`  status call             GET /api/v1/search/status took ${ms(median(lastStatus))} median, ${ms(Math.max(...lastStatus))} max while the second half was indexed (it counts the index on the server's main thread; the metrics gauges run it every 15 s)`);
    console.log(`  catch-up after ingest   ${duration(cuSeconds)} for ${cuDocs} documents = ${cuRate.toFixed(0)} docs/s (${on.indexedAtEnd} were indexed while ingest ran); RSS up to ${maxRss.toFixed(0)} MB   1M from scratch: ~${duration(FULL / Math.max(1, cuRate))}`);
    console.log(`  index on disk           ${mib(indexBytes)} = ${(indexBytes / facts.bytes * 100).toFixed(0)} % of the raw mail (${mib(facts.bytes)}), ${(indexBytes / facts.textBytes).toFixed(2)}× its searchable text (${mib(facts.textBytes)}: headers + plain body + PDF text)   1M: ~${(indexBytes * scale / 2 ** 30).toFixed(1)} GiB`);
    console.log(`  archive on disk         ${mib(archiveBytes)} (data dir without the index); ${finalStatus.failedExtractions} failed extractions`);
    console.log(`\nAPI GET /api/v1/search, limit 50, admin token: one cold call, then ${QUERY_RUNS} runs; target p95 < 200 ms at 1M, goal < 50 ms`);
    console.log(`  growth k: p50 at N (${N}) vs at the midpoint (${mid?.messages ?? '—'} documents), latency ∝ N^k (clamped to 0..1; noisy when N/midpoint is small); 1M p95 = p95 × (1M/N)^k; linear = p95 × ${scale.toFixed(1)}`);
    console.log(`  ${pad('shape', 24)} ${pad('query', 52)} ${lpad('cold', 8)} ${lpad('p50', 8)} ${lpad('p95', 8)} ${lpad('max', 8)} ${lpad('hits', 7)} ${lpad('mid p50', 8)} ${lpad('k', 5)} ${lpad('1M p95', 8)} ${lpad('linear', 8)}  target  check`);
    const apiSummary: Array<{ name: string; p95: number; est: number }> = [];
    for (const r of qr) {
      const q = r.shape.user ? `${r.shape.q} [user=${r.shape.user}]` : r.shape.q;
      if (r.error) {
        console.log(`  ${pad(r.shape.name, 24)} ${pad(q.slice(0, 52), 52)} ERROR ${r.error}`);
        continue;
      }
      const p95 = pct(r.runs, 0.95);
      const m = mid?.results.find((x) => x.shape.name === r.shape.name);
      const midP50 = m && !m.error ? median(m.runs) : Number.NaN;
      const k = mid && !Number.isNaN(midP50) ? Math.min(1, Math.max(0, Math.log(median(r.runs) / midP50) / Math.log(N / mid.messages))) : 1;
      const est = p95 * Math.pow(scale, k);
      if (!r.shape.extra) apiSummary.push({ name: r.shape.name, p95, est });
      const hits = `${r.totalExact ? '' : '~'}${r.total}`;
      const expectNote = r.shape.expect === null ? '' : r.totalExact && r.total === r.shape.expect ? '= expected' : `!! expected ${r.shape.expect}`;
      const verdict = est < 50 ? 'goal' : est < 200 ? 'ok' : 'OVER';
      console.log(`  ${pad(r.shape.name + (r.shape.extra ? ' (extra)' : ''), 24)} ${pad(q.slice(0, 52), 52)} ${lpad(ms(r.cold), 8)} ${lpad(ms(median(r.runs)), 8)} ${lpad(ms(p95), 8)} ${lpad(ms(Math.max(...r.runs)), 8)} ${lpad(hits, 7)} ${lpad(ms(midP50), 8)} ${lpad(k.toFixed(2), 5)} ${lpad(ms(est), 8)} ${lpad(ms(p95 * scale), 8)}  ${pad(verdict, 6)}  ${expectNote}`);
    }
    console.log('  hits: the API\'s total (counted exactly up to 1,000 matches; "~" = estimated beyond); "= expected": equals what the generator planted or wrote');
    console.log(`\nIMAP on ${c.bigUser}'s INBOX (${facts.bigInbox.messages} messages${facts.bigInbox.messages < 100_000 ? '; the issue measures a 100,000-message folder' : ''}); cold = first call in the session, warm = min / median of ${IMAP_REPEAT}`);
    console.log('  fts-xapian matches words and word prefixes, Postern RFC 3501 substrings: the needles are whole words so both should agree');
    const P = sides.get('postern')!;
    const D = sides.get('dovecot');
    console.log(`  SELECT INBOX: Postern ${secs(P.select)}${D ? `, Dovecot ${secs(D.select)}` : ''}`);
    console.log(`  ${pad('command', 28)} ${lpad('Postern cold', 13)} ${lpad('warm min/med', 19)} ${lpad('Dovecot cold', 13)} ${lpad('warm min/med', 19)} ${lpad('ratio (med)', 11)}  matches P / D / expected  target ≤ 1.5×`);
    for (const p of probes) {
      const pr = P.runs.get(p.name) ?? [];
      const dr = D?.runs.get(p.name) ?? [];
      const ratio = D ? median(pr) / median(dr) : Number.NaN;
      const counts = `${P.counts.get(p.name)} / ${D ? D.counts.get(p.name) : '—'} / ${p.expect}`;
      const flag = (P.counts.get(p.name) !== p.expect || (D && D.counts.get(p.name) !== p.expect)) ? ' !!' : '';
      console.log(`  ${pad(p.name, 28)} ${lpad(secs(P.cold.get(p.name)!), 13)} ${lpad(`${secs(Math.min(...pr))} / ${secs(median(pr))}`, 19)} ${lpad(D ? secs(D.cold.get(p.name)!) : '—', 13)} ${lpad(D ? `${secs(Math.min(...dr))} / ${secs(median(dr))}` : '—', 19)} ${lpad(D ? `${ratio.toFixed(2)}×` : '—', 11)}  ${pad(counts + flag, 24)}  ${D ? (ratio <= 1.5 ? 'ok' : 'OVER') : ''}`);
    }
    if (dcInfo) console.log(`  Dovecot: doveadm index of ${dcInfo.messages} messages took ${duration(dcInfo.indexSeconds)} (${(dcInfo.messages / dcInfo.indexSeconds).toFixed(0)} msg/s); Postern's index catch-up rate above covers every archive`);
    console.log(`\nExport (postern export --user ${c.bigUser} --format mbox)`);
    console.log(`  ${exportMessages} messages${exportMessages !== expectedExport ? ` (!! expected ${expectedExport})` : ''}, ${mib(exportBytes)} in ${duration(exportSeconds)}: ${(exportMessages / exportSeconds).toFixed(0)} msg/s, ${(exportBytes / 1048576 / exportSeconds).toFixed(1)} MiB/s`);
    console.log(`\nSummary${N < FULL ? ` (measured at ${N.toLocaleString('en')}; 1M = extrapolated)` : ''}`);
    console.log(`  ${pad('', 40)} ${pad('Postern', 30)} ${pad('Dovecot + fts-xapian', 22)} ${pad('ratio', 8)} target`);
    const row = (name: string, p: string, d: string, ratio: string, target: string): void => console.log(`  ${pad(name, 40)} ${pad(p, 30)} ${pad(d, 22)} ${pad(ratio, 8)} ${target}`);
    row('ingest msg/s, index ON / OFF (full runs)', off ? `${on.rate.toFixed(0)} / ${off.rate.toFixed(0)} (${ingestCost.toFixed(1)} % cost)` : `${on.rate.toFixed(0)} / —`, '', '', `index costs ≤ 10 %: ${off ? (ingestCost <= 10 ? 'ok' : 'OVER') : '—'}`);
    if (ab) row('ingest msg/s, ON / OFF (A/B medians)', `${median(ab.on).toFixed(0)} / ${median(ab.off).toFixed(0)} (${abCost.toFixed(1)} % cost)`, '', '', `index costs ≤ 10 %: ${abCost <= 10 ? 'ok' : 'OVER'}`);
    row('indexing docs/s (catch-up / doveadm)', `${cuRate.toFixed(0)}`, dcInfo ? `${(dcInfo.messages / dcInfo.indexSeconds).toFixed(0)}` : '—', dcInfo ? `${(cuRate / (dcInfo.messages / dcInfo.indexSeconds)).toFixed(2)}×` : '', '');
    row('index size', `${mib(indexBytes)} (${(indexBytes / facts.bytes * 100).toFixed(0)} % of mail)`, dcHome ? `${mib(dcHome.index)} (${(dcHome.index / facts.bigInbox.bytes * 100).toFixed(0)} % of its mail)` : '—', '', '');
    const worst = [...apiSummary].sort((x, y) => y.est - x.est)[0];
    if (worst) row(`API p95, worst shape (${worst.name})`, `${ms(worst.p95)} (1M est ${ms(worst.est)})`, '', '', `< 200 ms at 1M: ${worst.est < 200 ? 'ok' : 'OVER'}`);
    row('API p95 over target at 1M (est)', `${apiSummary.filter((x) => x.est >= 200).length} of ${apiSummary.length} shapes`, '', '', '');
    for (const p of probes) {
      const pr = P.runs.get(p.name) ?? [];
      const dr = D?.runs.get(p.name) ?? [];
      const ratio = D ? median(pr) / median(dr) : Number.NaN;
      row(`IMAP ${p.name} (warm median)`, secs(median(pr)), D ? secs(median(dr)) : '—', D ? `${ratio.toFixed(2)}×` : '', D ? `≤ 1.5×: ${ratio <= 1.5 ? 'ok' : 'OVER'}` : '');
    }
    row('export mbox (big user)', `${(exportMessages / exportSeconds).toFixed(0)} msg/s, ${(exportBytes / 1048576 / exportSeconds).toFixed(1)} MiB/s`, '', '', '');
    console.log(`\nload at the end ${load()}; total ${elapsed()}`);
  } finally {
    await dovecot?.stop().catch(() => undefined);
    if (server) await stopServer(server).catch(() => undefined);
    if (KEEP) console.log(`work directory kept: ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

function printWeb(web: { results: WebResult[]; signInMs: number; auditor: string }, n: number): void {
  console.log(`\n=== web access (plugin web): time to the first result page over ${n.toLocaleString('en')} messages, as auditor ${web.auditor} (every archive); sign-in took ${ms(web.signInMs)} ===`);
  console.log('  HTTP: GET /search?q=… read to its end with the session cookie; browser: Chromium navigation until `load` with the page in the DOM');
  console.log(`  ${pad('shape', 24)} ${pad('query', 52)} ${lpad('cold', 8)} ${lpad('p50', 8)} ${lpad('p95', 8)} ${lpad('page', 8)} ${lpad('browser p50', 12)} ${lpad('max', 8)}`);
  for (const r of web.results) {
    const q = r.shape.user ? `${r.shape.q} [user=${r.shape.user}]` : r.shape.q;
    if (r.error && r.runs.length === 0) {
      console.log(`  ${pad(r.shape.name, 24)} ${pad(q.slice(0, 52), 52)} ERROR ${r.error}`);
      continue;
    }
    const b = r.browser.length > 0 ? `${lpad(ms(median(r.browser)), 12)} ${lpad(ms(Math.max(...r.browser)), 8)}` : `${lpad('—', 12)} ${lpad('—', 8)}`;
    console.log(`  ${pad(r.shape.name, 24)} ${pad(q.slice(0, 52), 52)} ${lpad(ms(r.cold), 8)} ${lpad(ms(median(r.runs)), 8)} ${lpad(ms(pct(r.runs, 0.95)), 8)} ${lpad(`${(r.bytes / 1024).toFixed(0)} KB`, 8)} ${b}${r.error ? `  (${r.error})` : ''}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
