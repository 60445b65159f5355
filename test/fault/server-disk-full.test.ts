// Fault tier: a full disk under the whole server (a spawned `postern serve` whose data directory is a
// 32 MB tmpfs, mounted here; needs root, as CI has). SMTP load over several connections fills the
// intake and the archive until the server answers 4xx; while the disk stays full every transaction
// gets 4xx (never 5xx, never a dropped connection); once the tmpfs is grown, mail is acknowledged again
// within seconds, the entries stranded by the failure resume in-process (the intake drains without a
// restart), and after a clean restart every acknowledged message is archived exactly once, byte for
// byte, with no write loss recorded and a clean verify run.
// Was: everything acknowledged after the disk was freed sat behind a torn write-ahead log record and
// was gone after the restart. The second test makes sure archive commits (not only intake writes) hit
// the full disk: a backlog is being archived when the disk fills.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.ts';
import type { SmtpClient } from '../helpers/smtp-client.ts';
import {
  archivedBySubject, growTmpfs, holdFull, intakeEntries, metricValue, mountTmpfs, prng, rawMessage, runVerify, session, status,
  storageMetrics, testMessage, transaction, umount, waitFor, type Outcome,
} from './fault-helpers.ts';

const CONNECTIONS = 4;
/** After the first 4xx, keep sending this long with the disk held full. */
const FULL_MS = 4000;
/** After the tmpfs is grown, 4xx replies are tolerated this long (the engines reopen at most once a second, on the next write). */
const RECOVERY_MS = 6000;
const AFTER_GROW = 500;
// Short retry backoff, so entries deferred while the disk was full come back within seconds (the
// default starts at 5 s and doubles); the attempt limit stays at its default.
const ENV = { POSTERN_INTAKE_RETRY_BASE_SECONDS: '1', POSTERN_INTAKE_RETRY_MAX_SECONDS: '4' };

type Phase = 'fill' | 'full' | 'grown';
interface Sent {
  n: number;
  phase: Phase;
  startedAt: number;
  outcome: Outcome;
  size: number;
}

/** Kill a server still running (a failed assertion) and remove the tmpfs under it. */
async function teardown(server: SpawnedServer | null, mnt: string): Promise<void> {
  if (server && (server.child.exitCode !== null || server.child.signalCode !== null)) console.log(`# server had exited (${server.child.exitCode ?? server.child.signalCode}); last log lines:\n${server.logs.slice(-15).map((l) => `#   ${l}`).join('\n')}`);
  if (server && server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
  umount(mnt);
  rmSync(mnt, { recursive: true, force: true });
}

test('whole server on a full disk: 4xx while full, 250 again after space returns, stranded entries drain in-process, every acknowledged message archived exactly once', { timeout: 300000 }, async () => {
  const mnt = mkdtempSync(join(tmpdir(), 'postern-srvfull-'));
  mountTmpfs(mnt, '32m');
  const seed = Number(process.env.POSTERN_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const diag = (line: string): void => console.log(`# disk-full: ${line}`);
  diag(`seed=${seed} (POSTERN_FAULT_SEED to repeat)`);
  const rng = prng(seed);
  const body = (n: number, size: number): string => testMessage(`full ${n}`, `full-${n}`, size, seed + n);
  let server: SpawnedServer | null = null;
  const filler = join(mnt, 'filler');
  const started = Date.now();
  let releaseFull = (): void => undefined;
  try {
    server = await spawnServer(mnt, ENV);
    const s1 = server;
    await s1.api('POST', '/api/v1/users', { name: 'journal', addresses: ['journal@example.com'] });

    const sent: Sent[] = [];
    const violations: string[] = [];
    let phase: Phase = 'fill';
    let next = 0;
    let firstTempAt = 0;
    let heldFullAt = 0;
    let growAt = 0;
    let ackedAfterGrow = 0;
    let stopAt = 0; // 0: not yet decided
    let giveUp = false;
    const seenRefusing = new Set<string>();
    /** GET /api/v1/status answers while the disk is full (reported, not asserted: see the diagnostics). */
    const statusFailures: string[] = [];

    const worker = async (w: number): Promise<void> => {
      let c: SmtpClient | null = null;
      while (!giveUp && (stopAt === 0 || Date.now() < stopAt)) {
        if (!c || c.closed) {
          c = await session(s1.smtpPort);
          if (!c) {
            violations.push(`connection ${w}: could not open an SMTP session in phase ${phase}`);
            await new Promise((r) => setTimeout(r, 200));
            continue;
          }
        }
        const n = next++;
        const myPhase = phase;
        const size = 20000 + Math.floor(rng() * 40000);
        const startedAt = Date.now();
        const outcome = await transaction(c, body(n, size));
        sent.push({ n, phase: myPhase, startedAt, outcome, size });
        if (outcome.kind === 'ack') {
          // (A transaction started while full may be acknowledged once the disk has been grown.)
          if (phase === 'full') violations.push(`message ${n} acknowledged while the disk was held full`);
          if (myPhase === 'grown') ackedAfterGrow++;
        } else if (outcome.kind === 'temp') {
          if (phase === 'fill' && firstTempAt === 0) {
            firstTempAt = Date.now();
            diag(`first 4xx (${outcome.code} at ${outcome.phase}) after ${sent.filter((x) => x.outcome.kind === 'ack').length} acknowledged, ${((firstTempAt - started) / 1000).toFixed(1)} s`);
            releaseFull = holdFull(filler);
            heldFullAt = Date.now();
            phase = 'full';
          }
          if (myPhase === 'grown' && startedAt > growAt + RECOVERY_MS) violations.push(`message ${n}: ${outcome.code} at ${outcome.phase} ${startedAt - growAt} ms after the disk was grown`);
          if (outcome.closing) { c.close(); c = null; }
          await new Promise((r) => setTimeout(r, 50));
        } else {
          violations.push(`message ${n} in phase ${myPhase}: ${JSON.stringify(outcome)}`);
          c.close();
          c = null;
        }
      }
      c?.close();
    };

    const controller = (async (): Promise<void> => {
      // Fill until the first 4xx (bounded), hold the disk full for FULL_MS, grow, then run until
      // AFTER_GROW more acknowledgements.
      await waitFor(async () => firstTempAt > 0, 90000, () => `The disk never filled: ${sent.length} sent, no 4xx`, 50);
      const fullUntil = heldFullAt + FULL_MS;
      while (Date.now() < fullUntil) {
        try {
          for (const store of (await status(s1)).durability.refusingWrites) seenRefusing.add(store);
        } catch (err) {
          statusFailures.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      diag(`full phase ended at ${((Date.now() - started) / 1000).toFixed(1)} s`);
      diag(`while full: refusing writes seen for [${[...seenRefusing].join(', ')}]; status API failed ${statusFailures.length} times${statusFailures[0] ? ` (${statusFailures[0].slice(0, 300)})` : ''}; write failures intake=${await metricValue(s1, 'postern_storage_write_failures_total{store="intake"}')} archive=${await metricValue(s1, 'postern_storage_write_failures_total{store="archive"}')}`);
      releaseFull();
      growTmpfs(mnt, '256m');
      rmSync(filler, { force: true });
      growAt = Date.now();
      phase = 'grown';
      await waitFor(async () => ackedAfterGrow >= AFTER_GROW, 120000, () => `Only ${ackedAfterGrow} acknowledged after the disk was grown`, 50);
      stopAt = Date.now();
      diag(`load ended at ${((Date.now() - started) / 1000).toFixed(1)} s`);
    })().catch((err: unknown) => {
      giveUp = true; // the workers stop too
      throw err;
    });
    await Promise.all([controller, ...Array.from({ length: CONNECTIONS }, (_, w) => worker(w))]);
    releaseFull();

    const of = (p: Phase, kind: Outcome['kind']): Sent[] => sent.filter((x) => x.phase === p && x.outcome.kind === kind);
    const acked = sent.filter((x) => x.outcome.kind === 'ack');
    const grownTemps = of('grown', 'temp');
    const firstAckAfterGrow = Math.min(...of('grown', 'ack').map((x) => x.startedAt));
    diag(`sent ${sent.length}: fill ${of('fill', 'ack').length} acked / ${of('fill', 'temp').length} 4xx; full ${of('full', 'temp').length} 4xx / ${of('full', 'ack').length} acked; grown ${of('grown', 'ack').length} acked / ${grownTemps.length} 4xx; first 250 ${firstAckAfterGrow - growAt} ms after growing`);
    assert.deepEqual(violations.slice(0, 20), [], `${violations.length} violations (5xx, dropped connections, 250 while full, 4xx after recovery)`);
    assert.ok(of('full', 'temp').length >= 5, 'transactions were tried while the disk was full');
    assert.ok(await metricValue(s1, 'postern_storage_write_failures_total{store="intake"}') >= 1, 'the intake database hit the full disk');
    assert.ok(of('grown', 'ack').length >= AFTER_GROW);

    // Stranded entries resume in this process: the intake drains without a restart.
    const drainMs = await waitFor(async () => {
      const st = await status(s1);
      return st.intake.depth === 0 && st.intake.processing === 0;
    }, 60000, async () => `The intake did not drain without a restart; ${await storageMetrics(s1)}`);
    const stranded = new Set(s1.logs.filter((l) => l.includes('"Recording an intake failure failed')).map((l) => (JSON.parse(l) as { intakeId: string }).intakeId));
    const reopened = s1.logs.filter((l) => l.includes('"Database reopened after a failed write')).map((l) => (JSON.parse(l) as { store: string }).store);
    diag(`intake drained in-process ${drainMs} ms after the load ended; ${stranded.size} entries were stranded (their deferral not recordable) and retried from memory; reopened: [${reopened.join(', ')}]`);
    // Otherwise the drain above proves nothing about stranded entries.
    assert.ok(stranded.size > 0, 'some acknowledged entries could not record their deferral while the disk was full');
    diag(`drained at ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const live = await status(s1);
    assert.equal(live.intake.corrupt, 0, `entries quarantined: ${JSON.stringify(await intakeEntries(s1, 'corrupt'))}`);
    assert.deepEqual(live.durability.refusingWrites, []);

    s1.child.kill('SIGTERM');
    const exit = await s1.exited;
    assert.equal(exit.code, 0, `clean stop after the disk was full:\n${s1.logs.slice(-5).join('\n')}`);
    diag(`stopped at ${((Date.now() - started) / 1000).toFixed(1)} s`);

    server = await spawnServer(mnt, ENV);
    const s2 = server;
    const st = await status(s2);
    assert.equal(st.intake.depth, 0, 'nothing left in the intake after the restart');
    assert.equal(st.intake.corrupt, 0);
    assert.deepEqual(await intakeEntries(s2), [], 'the intake is empty');
    assert.deepEqual(st.durability.lostWrites, [], 'no acknowledged write batch was lost');
    assert.deepEqual(st.durability.refusingWrites, []);

    diag(`restarted at ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const { counts, uids, other } = await archivedBySubject(s2, /^full (\d+)$/);
    assert.deepEqual(other, [], 'only test messages are archived');
    const byN = new Map(sent.map((x) => [String(x.n), x]));
    const lost = acked.filter((x) => counts.get(String(x.n)) !== 1);
    assert.deepEqual(lost.slice(0, 10).map((x) => `${x.n} (${x.phase}) archived ${counts.get(String(x.n)) ?? 0} times`), [],
      `${lost.length} of ${acked.length} acknowledged messages not archived exactly once (${lost.filter((x) => x.phase === 'grown').length} of them acknowledged after the disk was grown)`);
    let refusedButArchived = 0;
    for (const [n, count] of counts) {
      const x = byN.get(n);
      assert.equal(count, 1, `message ${n} archived ${count} times`);
      assert.ok(x && x.outcome.kind !== 'cut', `message ${n} archived but never fully sent`);
      if (x.outcome.kind !== 'ack') refusedButArchived++;
    }
    // Byte-for-byte: a sample across the phases, the body as sent (after the archive's own header, if any).
    const sample = [...of('fill', 'ack').slice(-5), ...of('grown', 'ack').slice(0, 5), ...of('grown', 'ack').slice(-5)];
    for (const x of sample) {
      const raw = await rawMessage(s2, mnt, uids.get(String(x.n)) as number);
      const want = body(x.n, x.size);
      assert.ok(raw.endsWith(want), `message ${x.n} archived with different bytes (${raw.length} vs ${want.length} sent)`);
    }

    diag(`reconciled at ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const report = await runVerify(s2);
    assert.equal(report.ok, true, `verify found problems: ${JSON.stringify(report.details.slice(0, 5))}`);
    assert.equal(report.total, 0);
    assert.ok(report.checked.entries >= acked.length, `verify checked ${report.checked.entries} entries`);
    diag(`summary: acknowledged=${acked.length} (before full ${of('fill', 'ack').length}, after grow ${of('grown', 'ack').length}) lost=${lost.length} duplicated=${[...counts.values()].filter((c) => c > 1).length} refused-but-archived=${refusedButArchived} 4xx-while-full=${of('full', 'temp').length} recovery=${firstAckAfterGrow - growAt}ms drain=${drainMs}ms total=${((Date.now() - started) / 1000).toFixed(1)}s`);

    s2.child.kill('SIGTERM');
    assert.equal((await s2.exited).code, 0);
    server = null;
  } finally {
    releaseFull();
    await teardown(server, mnt);
  }
});

// The archive side of a full disk, made certain: the server acknowledges a backlog while archiving
// yields to arriving mail, then the disk fills up while that backlog is being archived, so archive
// commits (not only intake writes) fail. Once space returns, archiving must resume in this process.
test('the archive database hitting a full disk while it archives a backlog: archiving resumes in-process once space returns, every message archived exactly once', { timeout: 240000 }, async () => {
  const BACKLOG_PER_CONNECTION = 100;
  const mnt = mkdtempSync(join(tmpdir(), 'postern-arcfull-'));
  mountTmpfs(mnt, '64m');
  const seed = Number(process.env.POSTERN_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const diag = (line: string): void => console.log(`# archive-full: ${line}`);
  diag(`seed=${seed} (POSTERN_FAULT_SEED to repeat)`);
  const rng = prng(seed);
  // Archiving waits while mail keeps arriving (less than 1.5 s apart), for up to 2 minutes.
  const env = { ...ENV, POSTERN_INTAKE_ARCHIVE_MAX_LAG_MS: '120000', POSTERN_INTAKE_ARCHIVE_QUIET_MS: '1500' };
  const filler = join(mnt, 'filler');
  let releaseFull = (): void => undefined;
  let server: SpawnedServer | null = null;
  const started = Date.now();
  try {
    server = await spawnServer(mnt, env);
    const s1 = server;
    await s1.api('POST', '/api/v1/users', { name: 'journal', addresses: ['journal@example.com'] });
    const acked: number[] = [];
    const refused: string[] = [];
    await Promise.all(Array.from({ length: CONNECTIONS }, async (_, w) => {
      const c = await session(s1.smtpPort);
      assert.ok(c, 'SMTP session');
      for (let i = 0; i < BACKLOG_PER_CONNECTION; i++) {
        const n = w * BACKLOG_PER_CONNECTION + i;
        const outcome = await transaction(c, testMessage(`backlog ${n}`, `backlog-${n}`, 20000 + Math.floor(rng() * 40000), seed + n));
        if (outcome.kind === 'ack') acked.push(n);
        else refused.push(`${n}: ${JSON.stringify(outcome)}`);
      }
      c.close();
    }));
    assert.deepEqual(refused, [], 'the backlog is acknowledged (the disk is not full yet)');
    const backlog = (await status(s1)).intake.depth;
    diag(`${acked.length} acknowledged in ${((Date.now() - started) / 1000).toFixed(1)} s; ${backlog} not archived yet`);
    assert.ok(backlog >= acked.length / 2, `a backlog waits for archiving (${backlog})`);

    // Archiving starts once mail stops; fill the disk while it runs.
    await waitFor(async () => (await status(s1)).intake.depth <= backlog - 10, 30000, async () => `Archiving did not start: ${JSON.stringify((await status(s1)).intake)}`, 20);
    releaseFull = holdFull(filler);
    const fullAt = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    const archiveFailures = await metricValue(s1, 'postern_storage_write_failures_total{store="archive"}');
    const atFull = await status(s1).then((st) => JSON.stringify(st.intake), (err: Error) => `(status failed: ${err.message.slice(0, 200)})`);
    diag(`held full for ${Date.now() - fullAt} ms: archive write failures ${archiveFailures}, intake ${atFull}`);
    assert.ok(archiveFailures >= 1, 'an archive commit hit the full disk');
    releaseFull();
    growTmpfs(mnt, '256m');
    rmSync(filler, { force: true });
    const grownAt = Date.now();

    const drainMs = await waitFor(async () => {
      const st = await status(s1);
      return st.intake.depth === 0 && st.intake.processing === 0;
    }, 60000, async () => `Archiving did not resume without a restart after the disk was grown; ${await storageMetrics(s1)}`);
    diag(`intake drained in-process ${drainMs} ms after the disk was grown`);
    const live = await status(s1);
    assert.equal(live.intake.corrupt, 0, `entries quarantined: ${JSON.stringify(await intakeEntries(s1, 'corrupt'))}`);
    assert.deepEqual(live.durability.refusingWrites, []);
    s1.child.kill('SIGTERM');
    assert.equal((await s1.exited).code, 0, `clean stop:\n${s1.logs.slice(-5).join('\n')}`);

    server = await spawnServer(mnt, env);
    const s2 = server;
    const st = await status(s2);
    assert.deepEqual(await intakeEntries(s2), [], 'the intake is empty');
    assert.deepEqual(st.durability.lostWrites, [], 'no acknowledged write batch was lost');
    const { counts, other } = await archivedBySubject(s2, /^backlog (\d+)$/);
    assert.deepEqual(other, []);
    const wrong = acked.filter((n) => counts.get(String(n)) !== 1);
    assert.deepEqual(wrong.slice(0, 10).map((n) => `${n} archived ${counts.get(String(n)) ?? 0} times`), [], `${wrong.length} of ${acked.length} acknowledged messages not archived exactly once`);
    assert.equal(counts.size, acked.length);
    const report = await runVerify(s2);
    assert.equal(report.ok, true, `verify found problems: ${JSON.stringify(report.details.slice(0, 5))}`);
    diag(`summary: acknowledged=${acked.length} lost=${wrong.filter((n) => !counts.has(String(n))).length} duplicated=${wrong.filter((n) => (counts.get(String(n)) ?? 0) > 1).length} archive-write-failures=${archiveFailures} drain=${drainMs}ms (since grow ${Date.now() - grownAt}ms) total=${((Date.now() - started) / 1000).toFixed(1)}s`);
    s2.child.kill('SIGTERM');
    assert.equal((await s2.exited).code, 0);
    server = null;
  } finally {
    releaseFull();
    await teardown(server, mnt);
  }
});
