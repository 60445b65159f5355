// Faults of the postgres-s3 backend (issue 16): two `postern serve` nodes share the tier's PostgreSQL
// and RGW, each with its own data directory (its node-local durable intake).
// - node A killed with SIGKILL under SMTP load on both nodes: every message A acknowledged is archived
//   exactly once after A restarts on the same data directory; B keeps accepting and serving meanwhile;
// - PostgreSQL stopped for 20 s: SMTP keeps acknowledging into the intake, nothing is quarantined or lost,
//   archiving resumes by itself, and IMAP IDLE across nodes works again (the LISTEN connection came back);
// - RGW stopped: the intake holds the mail, postern_intake_oldest_age_seconds rises, the archive catches up;
// - a PUT whose commit never happened leaves no visible message and the `blob-sweep` job removes it once
//   past its grace period, never touching a referenced blob, counting Object Lock refusals.
// The engines are the tier's: every pause is undone in a finally, whatever the test's outcome.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { stopServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { ImapClient } from '../protocol/imap-client.ts';
import { S3BlobStore } from '../../core/storage/s3-blob-store.ts';
import { enginesFromEnv, freshBucket, freshDatabase, s3ClientConfig } from './engines.ts';
import { addAlice, startNode } from './cluster-node.ts';

const tier = enginesFromEnv();
const work = mkdtempSync(join(tmpdir(), 'postern-faults-'));
let db: Awaited<ReturnType<typeof freshDatabase>>;
let bucket: string;
let a: SpawnedServer;
let b: SpawnedServer;
const PASSWORD = 'faults test password';

// Retries every 1, 2, 4, 4 … s: catching up after an outage takes seconds, not the default minute.
// Three attempts would quarantine an entry within ~7 s if an outage counted as its failure.
const start = (name: string): Promise<SpawnedServer> => startNode({ work, dbUrl: db.url, bucket, s3: tier.s3 }, name, {
  s3Extra: 'timeoutSeconds: 5', extra: ['intake: { retryBaseSeconds: 1, retryMaxSeconds: 4, maxAttempts: 3 }'],
});

function mail(subject: string): string {
  // A random body: every message is new content, so archiving it needs an S3 PUT.
  return `From: outside@example.org\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${createHash('sha1').update(subject).digest('hex')}@example.org>\r\n\r\n${randomBytes(48).toString('base64')}\r\n`;
}

/** Sends each subject in one session; returns the subjects answered 250 (stops at the first failure). */
async function send(s: SpawnedServer, subjects: string[], onAck?: (subject: string) => void): Promise<{ acked: string[]; other: string[] }> {
  const acked: string[] = [];
  const other: string[] = [];
  let c: SmtpClient | null = null;
  try {
    c = await SmtpClient.open(s.smtpPort);
    await c.read();
    await c.cmd('EHLO faults.test');
    for (const subject of subjects) {
      const r = await sendMail(c, 'outside@example.org', ['alice@example.com'], mail(subject));
      if (r.code !== 250) {
        other.push(`${r.code} ${r.text}`);
        break;
      }
      acked.push(subject);
      onAck?.(subject);
    }
    await c.cmd('QUIT').catch(() => undefined);
  } catch (err) {
    other.push(`connection: ${(err as Error).message}`);
  } finally {
    c?.close();
  }
  return { acked, other };
}

interface Entry { uid: number; subject: string }
async function inbox(s: SpawnedServer): Promise<Entry[]> {
  return (await s.api<{ entries: Entry[] }>('GET', '/api/v1/archive/alice/messages?folder=Inbox&limit=5000')).entries;
}

/** Every subject archived exactly once (and no other copies of them). */
function assertOnce(entries: Entry[], subjects: string[], what: string): void {
  const count = new Map<string, number>();
  for (const e of entries) count.set(e.subject, (count.get(e.subject) ?? 0) + 1);
  const missing = subjects.filter((s) => count.get(s) === undefined);
  const twice = subjects.filter((s) => (count.get(s) ?? 0) > 1);
  assert.deepEqual(missing, [], `${what}: acknowledged but not archived`);
  assert.deepEqual(twice, [], `${what}: archived more than once`);
}

/** Alice reading her own archive (the admin token sees only headers under preview blocking). */
const asAlice = (s: SpawnedServer, path: string): Promise<Response> =>
  fetch(`http://127.0.0.1:${s.adminPort}${path}`, { headers: { authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}` } });

async function metric(s: SpawnedServer, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} is exported`);
  return Number(m[1]);
}

async function drained(s: SpawnedServer, timeoutMs: number): Promise<void> {
  await waitDrained(s, timeoutMs);
  const st = await s.api<{ intake: { corrupt: number } }>('GET', '/api/v1/status');
  assert.equal(st.intake.corrupt, 0, 'nothing quarantined');
}

before(async () => {
  db = await freshDatabase(tier.pgUrl);
  bucket = await freshBucket(tier.s3, 'faults');
  a = await start('node-a');
  b = await start('node-b');
  await addAlice(a, PASSWORD);
});

after(async () => {
  for (const s of [a, b]) if (s) await stopServer(s).catch(() => undefined);
  await db?.drop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

test('node A killed with SIGKILL under load: all it acknowledged is archived once after restart; B keeps serving', async () => {
  const perSession = 12;
  const subjects = (node: string, k: number): string[] => Array.from({ length: perSession }, (_, i) => `kill ${node}${k} ${i}`);
  let ackedByA = 0;
  let killed!: () => void;
  const killedAt = new Promise<void>((r) => (killed = r));
  const onAckA = (): void => {
    if (++ackedByA === 10) {
      a.child.kill('SIGKILL');
      killed();
    }
  };
  const sessionsA = [0, 1, 2].map((k) => send(a, subjects('a', k), onAckA));
  const sessionsB = [0, 1, 2].map((k) => send(b, subjects('b', k)));
  await killedAt;
  assert.equal((await a.exited).signal, 'SIGKILL');
  // While A is down, B takes new mail and serves reads.
  const whileDown = await send(b, ['kill b while A is down']);
  assert.deepEqual(whileDown.acked, ['kill b while A is down'], whileDown.other.join('; '));
  const resultsA = await Promise.all(sessionsA);
  const resultsB = await Promise.all(sessionsB);
  await drained(b, 30_000);
  const onB = await inbox(b);
  assert.ok(onB.some((e) => e.subject === 'kill b while A is down'), 'B archived and serves its mail while A is down');
  const acksA = resultsA.flatMap((r) => r.acked);
  const acksB = [...resultsB.flatMap((r) => r.acked), ...whileDown.acked];
  assert.ok(acksA.length >= 10 && acksA.length < 3 * perSession, `A acknowledged ${acksA.length} before it died`);
  assert.equal(acksB.length, 3 * perSession + 1, `B acknowledged everything: ${resultsB.flatMap((r) => r.other).join('; ')}`);

  a = await start('node-a'); // the same data directory: its intake replays
  await drained(a, 30_000);
  const entries = await inbox(a);
  assertOnce(entries, [...acksA, ...acksB], 'after the restart');
  // A message A had committed but not yet acknowledged may be archived too, but never twice.
  const sentA = [0, 1, 2].flatMap((k) => subjects('a', k));
  assert.deepEqual(entries.filter((e) => sentA.includes(e.subject) && entries.filter((x) => x.subject === e.subject).length > 1), []);
  assert.deepEqual(entries.map((e) => e.uid), Array.from({ length: entries.length }, (_, i) => i + 1), 'UIDs dense');
  const archivedBeforeRestart = acksA.filter((s) => onB.some((e) => e.subject === s)).length;
  console.log(`# kill -9: A acknowledged ${acksA.length} (${acksA.length - archivedBeforeRestart} of them still in its intake when it died), B ${acksB.length}; archived ${entries.length} (A's unacknowledged in flight: ${entries.length - acksA.length - acksB.length})`);
});

test('PostgreSQL stopped for 20 s: SMTP keeps acknowledging, nothing is lost, archiving resumes by itself, IDLE across nodes works after', async () => {
  const before = (await inbox(a)).length;
  const subjects = (node: string): string[] => Array.from({ length: 10 }, (_, i) => `pg down ${node} ${i}`);
  let stoppedAt = 0;
  let restartedAt = 0;
  let acked: string[] = [];
  const refused: string[] = [];
  try {
    await tier.postgres.stop('fast');
    stoppedAt = Date.now();
    for (const [s, node] of [[a, 'a'], [b, 'b']] as const) {
      const r = await send(s, subjects(node));
      acked.push(...r.acked);
      refused.push(...r.other);
    }
    assert.deepEqual(refused, [], 'SMTP acknowledges into the intake while PostgreSQL is down');
    assert.equal(acked.length, 20);
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + 20_000 - Date.now())));
    assert.ok(await metric(a, 'postern_intake_depth_messages') >= 10, 'node A holds its mail in the intake');
    assert.ok(await metric(a, 'postern_intake_oldest_age_seconds') >= 10, 'the oldest waiting entry is as old as the outage');
  } finally {
    await tier.postgres.start();
    restartedAt = Date.now();
  }
  await Promise.all([drained(a, 60_000), drained(b, 60_000)]);
  const caughtUp = Date.now() - restartedAt;
  const entries = await inbox(b);
  assertOnce(entries, acked, 'after the PostgreSQL outage');
  assert.equal(entries.length, before + acked.length);
  console.log(`# PostgreSQL down ${Math.round((restartedAt - stoppedAt) / 1000)} s: sent 20, acknowledged ${acked.length}, archived ${entries.length - before}, caught up ${caughtUp} ms after it returned`);

  // The LISTEN connection came back by itself: IDLE on A hears of mail archived through B.
  const imapA = (await a.api<{ listeners: Record<string, number | null> }>('GET', '/api/v1/status')).listeners.imap ?? 0;
  const c = await ImapClient.open(imapA);
  try {
    await c.readUnit();
    assert.equal((await c.cmd(`LOGIN alice "${PASSWORD}"`)).kind, 'OK');
    const sel = await c.cmd('SELECT INBOX');
    const exists = Number(/\* (\d+) EXISTS/.exec(sel.text)?.[1] ?? -1);
    c.write('I1 IDLE\r\n');
    assert.match(await c.readUnit(), /^\+ /);
    // The listener retries every second; give it that long before measuring.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual((await send(b, ['after the pg outage'])).acked, ['after the pg outage']);
    await waitDrained(b);
    const archivedAt = Date.now();
    assert.equal(await c.readUnit(5000), `* ${exists + 1} EXISTS`);
    const announcedAfter = Date.now() - archivedAt;
    assert.ok(announcedAfter < 1000, `announced ${announcedAfter} ms after B archived it`);
    c.write('DONE\r\n');
    assert.equal((await c.until('I1')).kind, 'OK');
  } finally {
    c.close();
  }
});

/** Archived messages whose archive lag (postern_archive_lag_seconds) was over 5 s. */
async function lateArchived(s: SpawnedServer): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
  const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  return value(/^postern_archive_lag_seconds_count (\S+)$/m) - value(/^postern_archive_lag_seconds_bucket\{le="5"\} (\S+)$/m);
}

test('RGW stopped: the intake holds the mail, its oldest entry ages, the archive catches up when RGW returns', async () => {
  const before = (await inbox(a)).length;
  const lateBefore = await lateArchived(a);
  const subjects = Array.from({ length: 15 }, (_, i) => `rgw down ${i}`);
  let acked: string[] = [];
  let restartedAt = 0;
  let stoppedFor = 0;
  try {
    await tier.ceph.stopRgw();
    const stoppedAt = Date.now();
    const r = await send(a, subjects);
    assert.deepEqual(r.other, [], 'SMTP acknowledges while RGW is down');
    acked = r.acked;
    await new Promise((res) => setTimeout(res, 6000));
    assert.equal(await metric(a, 'postern_intake_depth_messages'), subjects.length, 'nothing archived without the object store');
    const age = await metric(a, 'postern_intake_oldest_age_seconds');
    assert.ok(age >= 5, `postern_intake_oldest_age_seconds rose to ${age}`);
    assert.equal((await inbox(b)).length, before, 'no message is visible without its bytes');
    stoppedFor = Date.now() - stoppedAt;
  } finally {
    await tier.ceph.startRgw();
    restartedAt = Date.now();
  }
  await drained(a, 60_000);
  const caughtUp = Date.now() - restartedAt;
  const entries = await inbox(b);
  assertOnce(entries, acked, 'after the RGW outage');
  assert.equal(entries.length, before + subjects.length);
  assert.equal(await metric(a, 'postern_intake_oldest_age_seconds'), 0);
  assert.equal(await lateArchived(a) - lateBefore, subjects.length, 'postern_archive_lag_seconds counts each held message as archived over 5 s late');
  console.log(`# RGW down ${Math.round(stoppedFor / 1000)} s: sent ${subjects.length}, acknowledged ${acked.length}, archived ${entries.length - before}, caught up ${caughtUp} ms after it returned`);
});

test('a PUT whose commit never happened is invisible and swept after its grace period; referenced and locked objects stay', async () => {
  const store = new S3BlobStore({ endpoint: tier.s3.endpoint, region: tier.s3.region, bucket, accessKeyId: tier.s3.accessKeyId, secretAccessKey: tier.s3.secretAccessKey, forcePathStyle: true, createBucket: false });
  const s3 = new S3Client(s3ClientConfig(tier.s3));
  const versions = async (sha: string): Promise<number> =>
    ((await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `blobs/${sha}` }))).Versions ?? []).length;
  try {
    const before = await inbox(a);
    // What a batch leaves when its records never commit: the object, and nothing in PostgreSQL.
    const orphan = createHash('sha256').update('orphan ' + randomBytes(8).toString('hex')).digest('hex');
    await store.put(orphan, 0, Buffer.from('first chunk of a commit that failed'));
    await store.put(orphan, 1, Buffer.from('second chunk of a commit that failed'));
    const locked = createHash('sha256').update('locked orphan ' + randomBytes(8).toString('hex')).digest('hex');
    await store.put(locked, 0, Buffer.from('retained orphan'), { retainUntil: new Date(Date.now() + 3000).toISOString(), legalHold: false });
    assert.deepEqual(await inbox(a), before, 'no message is visible');
    const own = await asAlice(a, `/api/v1/archive/alice/messages/${before[0]?.uid ?? 0}?folder=Inbox`);
    assert.equal(own.status, 200);
    const referenced = ((await own.json()) as { message: { blobId: string } }).message.blobId;
    assert.equal(await versions(referenced), 1);

    const runSweep = async (name: string, options: Record<string, unknown>): Promise<{ status: string; summary: Record<string, number> }> => {
      await a.api('POST', '/api/v1/jobs', { name, kind: 'blob-sweep', options });
      await a.api('POST', `/api/v1/jobs/${name}/run`, {});
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await a.api<{ results: Array<{ status: string; summary: Record<string, number> }> }>('GET', `/api/v1/jobs/${name}/results`);
        if (r.results[0]) return r.results[0];
        assert.ok(Date.now() < deadline, 'the sweep finished');
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    // The default grace period (an hour) protects objects whose commit may still be under way.
    const young = await runSweep('sweep-default', {});
    assert.equal(young.summary.orphans, 0);
    assert.equal(await versions(orphan), 2);

    const swept = await runSweep('sweep-now', { olderThanSeconds: 0 });
    assert.equal(swept.summary.orphans, 2, JSON.stringify(swept));
    assert.equal(swept.summary.deletedVersions, 2, 'both chunks of the orphan');
    assert.equal(swept.summary.refusedVersions, 1, 'the retained orphan is refused by Object Lock, counted');
    assert.ok((swept.summary.blobs ?? 0) >= before.length + 2);
    assert.equal(await versions(orphan), 0, 'the orphan is gone');
    assert.equal(await versions(locked), 1, 'Object Lock kept the retained one');
    assert.equal(await versions(referenced), 1, 'a referenced blob is never touched');
    // Every archived message still reads back whole.
    const entries = await inbox(a);
    assert.equal(entries.length, before.length);
    for (const e of entries.slice(0, 5)) {
      const res = await asAlice(a, `/api/v1/archive/alice/messages/${e.uid}/raw?folder=Inbox`);
      assert.equal(res.status, 200, `message ${e.uid} reads back`);
      assert.match(await res.text(), new RegExp(`Subject: ${e.subject}`));
    }
  } finally {
    store.close();
    s3.destroy();
  }
});
