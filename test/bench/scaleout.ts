// `npm run bench:scaleout` (issue 16): the SpamAssassin corpus journaled twice over SMTP into
//   1. the embedded default (RocksDB, one node),
//   2. storage.backend postgres-s3 with one node,
//   3. postgres-s3 with two nodes (two `postern serve` processes, each its own data dir and intake, the
//      same database and bucket; the SMTP sessions split across both),
// all in one run, against a private PostgreSQL 15 and a single-node Ceph RGW started here (and stopped at
// the end). The second pass sends the same messages again: deduplication means no new message, blob or
// S3 object. Each pass is timed from the first SMTP connection until every node's intake is empty (an
// intake entry leaves only once the archive has committed it), so msg/s is the archived rate.
// The senders are a real SMTP client population: SESSIONS parallel sessions, each sending message after
// message (test/interop/imap-targets.ts smtpSend), as a journaling MTA's connection pool does.
// Measured per run: archived msg/s per pass; S3 requests per unique message counted by RGW itself (its
// access log: PutObject, PutObjectRetention, PutObjectLegalHold, GET, HEAD) and RGW's mean PutObject
// latency; PostgreSQL rows and bytes per message (count(*) and pg_total_relation_size of the archive
// tables), transactions (xact_commit: each autocommitted read counts, so it tracks round trips outside
// the writer's steps) and WAL bytes per message; the cluster-wide writer lock sampled every 50 ms from
// pg_locks (share of time held, whether its holder is inside PostgreSQL or back in Node / waiting for
// S3, sessions queued); CPU ms per message of each process (Postern nodes,
// PostgreSQL with its backends, radosgw, ceph-osd, ceph-mon, this bench's SMTP clients). Then the IMAP
// read mix of bench:imap (test/bench/imap-mix.ts) on the embedded and the one-node cluster archive in
// alternating rounds, and on the two-node cluster with the clients split across both nodes. Prints a
// table with ratios (cluster/embedded, two nodes/one node) and the target check of the issue (cluster
// >= 0.3x embedded; two nodes not below one node). Asserts nothing.
//
// Environment: SCALEOUT_BENCH_MESSAGES (0 = the whole corpus), SCALEOUT_BENCH_SESSIONS (8),
// SCALEOUT_BENCH_IMAP_CLIENTS (10), SCALEOUT_BENCH_IMAP_SECONDS (10), SCALEOUT_BENCH_IMAP_ROUNDS (3),
// SCALEOUT_BENCH_KEEP=1 keeps the temp dir (engine and server logs).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopServer } from '../helpers/spawn-server.ts';
import { makeCertificate } from '../interop/dovecot.ts';
import { ADDRESS, PASSWORD, USER, enableImapUser, folderCount } from '../interop/imap-targets.ts';
import { freshBucket, freshDatabase, startCeph, startPostgres, type Ceph, type Postgres } from '../scaleout/engines.ts';
import { merged, persistentMix, rate, spread, type RunResult } from './imap-mix.ts';
import { corpus, journal, startNode, type Node, type PassResult } from './scaleout-nodes.ts';
import { dirBytes } from '../helpers/dir-bytes.ts';
import { LOCK_WRITER } from '../../core/storage/pg-schema.ts';
import { RgwRequestLog, addS3, enginePids, pgFootprint, sampleWriterLock, type LockProfile, type PgFootprint, type S3Counts } from './scaleout-probes.ts';

const LIMIT = envInt('SCALEOUT_BENCH_MESSAGES', 0, true);
const SESSIONS = envInt('SCALEOUT_BENCH_SESSIONS', 8);
const IMAP_CLIENTS = envInt('SCALEOUT_BENCH_IMAP_CLIENTS', 10);
const IMAP_SECONDS = envInt('SCALEOUT_BENCH_IMAP_SECONDS', 10);
const IMAP_ROUNDS = envInt('SCALEOUT_BENCH_IMAP_ROUNDS', 3);

function envInt(name: string, dflt: number, zeroOk = false): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < (zeroOk ? 0 : 1)) throw new Error(`${name} must be a ${zeroOk ? 'non-negative' : 'positive'} integer, got "${v}"`);
  return Number(v);
}

interface RunFigures {
  label: string;
  passes: PassResult[];
  inbox: number;
  s3?: S3Counts[];
  pg?: PgFootprint[];
  lock?: LockProfile[];
  /** Embedded: bytes of the archive directory after each pass. */
  disk?: number[];
  imap: RunResult[];
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

async function addUser(nodes: Node[]): Promise<void> {
  const first = nodes[0]!;
  await first.server.api('POST', '/api/v1/users', { name: USER, addresses: [ADDRESS] });
  await enableImapUser(first.server.adminPort, first.dataDir, USER, PASSWORD);
}

async function imapMix(ports: number[], count: number, round: number): Promise<RunResult> {
  return persistentMix(ports, { user: USER, password: PASSWORD, clients: IMAP_CLIENTS, seconds: IMAP_SECONDS, count, round });
}

function passLine(label: string, p: PassResult, n: number): string {
  return `  ${label}: ${n} messages archived in ${p.seconds.toFixed(1)} s = ${f1(n / p.seconds)} msg/s (SMTP done after ${p.ingestSeconds.toFixed(1)} s); load ${load()}`;
}

async function main(): Promise<void> {
  const messages = corpus(LIMIT);
  const mib = messages.reduce((s, m) => s + m.length, 0) / 1048576;
  console.log(`bench:scaleout: ${messages.length} SpamAssassin corpus messages (${mib.toFixed(1)} MiB) journaled twice over ${SESSIONS} SMTP sessions; IMAP mix ${IMAP_CLIENTS} clients x ${IMAP_SECONDS} s x ${IMAP_ROUNDS} rounds`);
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, load ${load()}`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-scaleout-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as the postgres OS user below it
  let postgres: Postgres | undefined;
  let ceph: Ceph | undefined;
  const running: Node[] = [];
  const stop = async (nodes: Node[]): Promise<void> => {
    for (const n of nodes) {
      await stopServer(n.server);
      running.splice(running.indexOf(n), 1);
    }
  };
  let failed = false;
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> => (cleaned ??= (async () => {
    for (const n of [...running]) await stopServer(n.server).catch(() => undefined);
    await ceph?.stop().catch((err: Error) => console.error(`Ceph: ${err.message}`));
    await postgres?.stop().catch((err: Error) => console.error(`PostgreSQL: ${err.message}`));
    if (process.env.SCALEOUT_BENCH_KEEP === '1' || failed) console.error(`bench:scaleout: temp dir kept at ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  })());
  // Interrupted: the engines and servers are daemons and children of this run; stop them all.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().finally(() => process.exit(130)));
  try {
    const t0 = performance.now();
    [postgres, ceph] = await Promise.all([startPostgres({ dir: join(dir, 'pg') }), startCeph({ dir: join(dir, 'ceph') })]);
    console.log(`engines: PostgreSQL 15 and Ceph RGW up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const engines = enginePids(postgres.dataDir, ceph.dir);
    const rgwLog = new RgwRequestLog(join(ceph.logDir, 'client.rgw.postern.log'));
    const cert = await makeCertificate(dir);
    const secretFile = join(dir, 's3.secret');
    writeFileSync(secretFile, ceph.secretAccessKey, { mode: 0o600 });
    const runs: RunFigures[] = [];

    // 1. Embedded.
    console.log('\n== embedded (RocksDB), one node');
    const emb = await startNode(dir, 'embedded', cert, {});
    running.push(emb);
    await addUser([emb]);
    const embRun: RunFigures = { label: 'embedded', passes: [], inbox: 0, disk: [], imap: [] };
    for (const pass of [1, 2]) {
      const p = await journal([emb], messages, engines, SESSIONS);
      embRun.passes.push(p);
      embRun.disk!.push(dirBytes(join(emb.dataDir, 'archive')));
      console.log(passLine(`pass ${pass}`, p, messages.length));
    }
    embRun.inbox = await folderCount(emb.server.adminPort, emb.dataDir, USER, 'Inbox');
    runs.push(embRun);

    // 2. and 3. The cluster: one node, then two, each on a fresh database and bucket.
    const clusterRun = async (label: string, names: string[]): Promise<{ run: RunFigures; nodes: Node[] }> => {
      console.log(`\n== ${label}`);
      const db = await freshDatabase(postgres!.url);
      const bucket = await freshBucket(ceph!, 'bench');
      const env = {
        POSTERN_STORAGE_BACKEND: 'postgres-s3', POSTERN_STORAGE_POSTGRES_URL: db.url,
        POSTERN_STORAGE_S3_ENDPOINT: ceph!.endpoint, POSTERN_STORAGE_S3_REGION: ceph!.region, POSTERN_STORAGE_S3_BUCKET: bucket,
        POSTERN_STORAGE_S3_ACCESS_KEY_ID: ceph!.accessKeyId, POSTERN_STORAGE_S3_SECRET_ACCESS_KEY_FILE: secretFile, POSTERN_STORAGE_S3_CREATE_BUCKET: 'false',
      };
      const nodes: Node[] = [];
      // One after the other: the first applies the database's migrations.
      for (const name of names) {
        const n = await startNode(dir, name, cert, { ...env, POSTERN_STORAGE_NODE: name });
        nodes.push(n);
        running.push(n);
      }
      await addUser(nodes);
      rgwLog.since(bucket);
      const run: RunFigures = { label, passes: [], inbox: 0, s3: [], pg: [], lock: [], imap: [] };
      for (const pass of [1, 2]) {
        const sampler = sampleWriterLock(db.url, LOCK_WRITER);
        const p = await journal(nodes, messages, engines, SESSIONS);
        run.lock!.push(await sampler.stop());
        run.passes.push(p);
        // RGW writes its log a moment later; an idle PostgreSQL backend reports its commits within 10 s.
        await new Promise((r) => setTimeout(r, 11_000));
        run.s3!.push(rgwLog.since(bucket));
        run.pg!.push(await pgFootprint(db.url));
        console.log(passLine(`pass ${pass}`, p, messages.length));
      }
      run.inbox = await folderCount(nodes[0]!.server.adminPort, nodes[0]!.dataDir, USER, 'Inbox');
      runs.push(run);
      return { run, nodes };
    };
    const one = await clusterRun('postgres-s3, one node', ['node-a']);

    // IMAP read mix: embedded and the one-node cluster in alternating rounds (E C, C E, …).
    console.log(`\n== IMAP read mix: embedded and one-node cluster, alternating (load ${load()})`);
    const count = embRun.inbox;
    if (one.run.inbox !== count) console.log(`  !! INBOX holds ${embRun.inbox} messages on embedded, ${one.run.inbox} on the cluster`);
    await imapMix([emb.imapPort], count, 99);
    await imapMix([one.nodes[0]!.imapPort], count, 99);
    for (let round = 0; round < IMAP_ROUNDS; round++) {
      const order = round % 2 === 0 ? [embRun, one.run] : [one.run, embRun];
      for (const r of order) r.imap.push(await imapMix(r === embRun ? [emb.imapPort] : [one.nodes[0]!.imapPort], count, round));
    }
    await stop([emb, ...one.nodes]);

    const two = await clusterRun('postgres-s3, two nodes', ['node-a', 'node-b']);
    console.log(`\n== IMAP read mix: two-node cluster, clients split across both (load ${load()})`);
    const ports = two.nodes.map((n) => n.imapPort);
    await imapMix(ports, count, 99);
    for (let round = 0; round < IMAP_ROUNDS; round++) two.run.imap.push(await imapMix(ports, count, round));
    await stop(two.nodes);

    report(runs, messages.length);
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await cleanup();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function report(runs: RunFigures[], n: number): void {
  const [emb, one, two] = runs as [RunFigures, RunFigures, RunFigures];
  const rateOf = (r: RunFigures, pass: number): number => n / r.passes[pass]!.seconds;
  const both = (r: RunFigures): number => (2 * n) / (r.passes[0]!.seconds + r.passes[1]!.seconds);
  const metric = (r: RunFigures, pass: number, key: string): number => r.passes[pass]!.metrics.get(key) ?? Number.NaN;
  const s3 = (r: RunFigures, pass: number): S3Counts | undefined => r.s3?.[pass];
  const pgAt = (r: RunFigures, pass: number): PgFootprint | undefined => r.pg?.[pass];
  const imap = (r: RunFigures): number => median(r.imap.map(rate));
  type Row = [string, (r: RunFigures) => number, boolean]; // label, value, whether ratios mean anything
  const rows: Row[] = [
    ['pass 1 (new) archived msg/s', (r) => rateOf(r, 0), true],
    ['pass 2 (duplicates) archived msg/s', (r) => rateOf(r, 1), true],
    ['both passes archived msg/s', both, true],
    ['IMAP read mix commands/s (median)', imap, true],
    ['messages per RocksDB commit group, pass 1', (r) => metric(r, 0, 'postern_group_commit_callers_sum{archive}') / metric(r, 0, 'postern_group_commit_callers_count{archive}'), false],
    ['S3 PutObject per unique message, pass 1', (r) => (s3(r, 0)?.putObject ?? Number.NaN) / r.inbox, false],
    ['S3 PutObject, pass 2 (total)', (r) => s3(r, 1)?.putObject ?? Number.NaN, false],
    ['S3 PUT retention+legal hold per message', (r) => { const c = s3(r, 0); return c ? (c.putRetention + c.putLegalHold) / r.inbox : Number.NaN; }, false],
    ['S3 GET+HEAD per message, both passes', (r) => { const c = r.s3 ? r.s3.reduce(addS3) : undefined; return c ? (c.get + c.head) / (2 * n) : Number.NaN; }, false],
    ['RGW PutObject mean latency, ms', (r) => { const c = s3(r, 0); return c && c.putObject > 0 ? (1000 * c.putObjectSeconds) / c.putObject : Number.NaN; }, false],
    ['writer lock held, share of pass 1 time', (r) => r.lock?.[0]?.held ?? Number.NaN, false],
    ['  of which holder outside PostgreSQL', (r) => r.lock?.[0]?.heldIdle ?? Number.NaN, false],
    ['sessions queued for the lock, pass 1 mean', (r) => r.lock?.[0]?.waiters ?? Number.NaN, false],
    ['writer lock held, share of pass 2 time', (r) => r.lock?.[1]?.held ?? Number.NaN, false],
    ['PostgreSQL rows per message, pass 1', (r) => (pgAt(r, 0)?.rows ?? Number.NaN) / r.inbox, false],
    ['PostgreSQL rows added per duplicate', (r) => { const a = pgAt(r, 0); const b = pgAt(r, 1); return a && b ? (b.rows - a.rows) / n : Number.NaN; }, false],
    ['PostgreSQL bytes per message, both passes', (r) => (pgAt(r, 1)?.bytes ?? Number.NaN) / r.inbox, false],
    ['embedded archive dir bytes per message', (r) => (r.disk?.[1] ?? Number.NaN) / r.inbox, false],
    ['PostgreSQL transactions per message, pass 1', (r) => (pgAt(r, 0)?.commits ?? Number.NaN) / n, false],
    ['PostgreSQL transactions per message, pass 2', (r) => { const a = pgAt(r, 0); const b = pgAt(r, 1); return a && b ? (b.commits - a.commits) / n : Number.NaN; }, false],
    ['WAL bytes per message, both passes', (r) => { const p = r.pg; return p && p[1] ? p[1].walBytes / (2 * n) : Number.NaN; }, false],
  ];
  const cpuRoles = [...new Set(runs.flatMap((r) => r.passes.flatMap((p) => [...p.cpu.keys()])))];
  for (const pass of [0, 1]) {
    for (const role of cpuRoles) rows.push([`CPU ms/message pass ${pass + 1}: ${role}`, (r) => (1000 * (r.passes[pass]!.cpu.get(role) ?? Number.NaN)) / n, false]);
    rows.push([`CPU ms/message pass ${pass + 1}: all of the above`, (r) => (1000 * [...r.passes[pass]!.cpu.values()].reduce((a, b) => a + b, 0)) / n, false]);
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`\n== results (${n} corpus messages; INBOX holds ${emb.inbox} / ${one.inbox} / ${two.inbox} after dedup; load ${load()})`);
  console.log(`  ${''.padEnd(w)} ${'embedded'.padStart(10)} ${'1 node'.padStart(10)} ${'2 nodes'.padStart(10)}   ${'1n/emb'.padStart(7)} ${'2n/emb'.padStart(7)} ${'2n/1n'.padStart(7)}`);
  for (const [label, fn, ratios] of rows) {
    const [e, a, b] = [fn(emb), fn(one), fn(two)];
    const v = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : f2(x)).padStart(10);
    const rt = (x: number): string => (ratios ? f2(x) : '').padStart(7);
    console.log(`  ${label.padEnd(w)} ${v(e)} ${v(a)} ${v(b)}   ${rt(a / e)} ${rt(b / e)} ${rt(b / a)}`);
  }
  console.log('\n  IMAP read mix commands/s per round (min / median / max):');
  for (const r of runs) console.log(`    ${r.label.padEnd(24)} ${spread(r.imap.map(rate))}`);
  const kinds = runs.map((r) => merged(r.imap));
  console.log(`  IMAP mean latency per command type, ms (${runs.map((r) => r.label).join(' / ')}):`);
  for (const kind of [...new Set(kinds.flatMap((k) => [...k.keys()]))].sort()) {
    console.log(`    ${kind.padEnd(16)} ${kinds.map((k) => { const v = k.get(kind); return (v ? v.ms / v.n : Number.NaN).toFixed(1).padStart(8); }).join(' ')}`);
  }
  for (const r of runs) for (const x of r.imap) if (x.errors.length) console.log(`  ${r.label}: failed IMAP commands: ${x.errors.join('; ')}`);
  const target = both(one) / both(emb);
  console.log(`\n  target: cluster (one node) archives ${f2(target)}x the embedded rate (issue 16: >= 0.30) -> ${target >= 0.3 ? 'met' : 'MISSED'}`);
  const scale = both(two) / both(one);
  console.log(`  target: two nodes archive ${f2(scale)}x one node (issue 16: not lower, >= 1.00) -> ${scale >= 1 ? 'met' : 'MISSED'}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
