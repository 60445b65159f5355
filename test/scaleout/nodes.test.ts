// Several nodes on one postgres-s3 archive: two `postern serve` processes, each with its own data
// directory (its own durable intake), share the tier's PostgreSQL database and RGW bucket.
// - IMAP IDLE on node A announces a message archived through node B's SMTP within a second;
// - both nodes take mail for the same folder at once: UIDs are unique and dense, nothing is lost;
// - the same message sent through both nodes at once becomes one message with one S3 object;
// - a scheduled job runs once per slot across the cluster; `postern status` lists both nodes.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { stopServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { ImapClient } from '../protocol/imap-client.ts';
import { runCli } from '../helpers/cli.ts';
import { enginesFromEnv, freshBucket, freshDatabase, s3ClientConfig } from './engines.ts';
import { addAlice, startNode } from './cluster-node.ts';

const tier = enginesFromEnv();
const work = mkdtempSync(join(tmpdir(), 'postern-nodes-'));
let db: Awaited<ReturnType<typeof freshDatabase>>;
let bucket: string;
let a: SpawnedServer;
let b: SpawnedServer;
let imapA: number;
const PASSWORD = 'nodes test password';

async function start(name: string): Promise<SpawnedServer> {
  return startNode({ work, dbUrl: db.url, bucket, s3: tier.s3 }, name, {
    extra: ['jobs:', '  - name: every-two-seconds', '    kind: purge', '    schedule: "*/2 * * * * *"', '    options: { dryRun: true, batchSize: 10 }'],
  });
}

function mail(subject: string, body = 'hello'): string {
  return `From: outside@example.org\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${createHash('sha1').update(subject).digest('hex')}@example.org>\r\n\r\n${body}\r\n`;
}

async function send(s: SpawnedServer, messages: string[]): Promise<void> {
  const c = await SmtpClient.open(s.smtpPort);
  await c.read();
  await c.cmd('EHLO nodes.test');
  for (const m of messages) {
    const r = await sendMail(c, 'outside@example.org', ['alice@example.com'], m);
    assert.equal(r.code, 250, r.text);
  }
  await c.cmd('QUIT').catch(() => undefined);
  c.close();
}

interface Entry { uid: number; messageId: string; subject: string }
async function inbox(s: SpawnedServer): Promise<Entry[]> {
  const r = await s.api<{ entries: Entry[] }>('GET', '/api/v1/archive/alice/messages?folder=Inbox&limit=1000');
  return r.entries;
}

/** Alice reading her own message (the admin token sees only headers under preview blocking). */
async function ownMessage(s: SpawnedServer, uid: number): Promise<{ blobId: string; captures: unknown[] }> {
  const res = await fetch(`http://127.0.0.1:${s.adminPort}/api/v1/archive/alice/messages/${uid}?folder=Inbox`, {
    headers: { authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}` },
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { message: { blobId: string; captures: unknown[] } }).message;
}

before(async () => {
  db = await freshDatabase(tier.pgUrl);
  bucket = await freshBucket(tier.s3, 'nodes');
  a = await start('node-a');
  b = await start('node-b');
  await addAlice(a, PASSWORD);
  const st = await a.api<{ listeners: Record<string, number | null> }>('GET', '/api/v1/status');
  imapA = st.listeners.imap ?? 0;
  assert.ok(imapA > 0, 'node A listens for IMAP');
});

after(async () => {
  for (const s of [a, b]) if (s) await stopServer(s).catch(() => undefined);
  await db?.drop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

test('a user added on node A routes mail on node B (the directory change reaches B)', async () => {
  await send(b, [mail('first through B')]);
  await waitDrained(b);
  const entries = await inbox(a);
  assert.deepEqual(entries.map((e) => [e.uid, e.subject]), [[1, 'first through B']]);
});

test('IMAP IDLE on node A announces mail archived through node B within a second', async () => {
  const c = await ImapClient.open(imapA);
  try {
    await c.readUnit();
    assert.equal((await c.cmd(`LOGIN alice "${PASSWORD}"`)).kind, 'OK');
    const sel = await c.cmd('SELECT INBOX');
    assert.equal(sel.kind, 'OK', sel.status);
    const before = Number(/\* (\d+) EXISTS/.exec(sel.text)?.[1] ?? -1);
    c.write('I1 IDLE\r\n');
    assert.match(await c.readUnit(), /^\+ /);
    await send(b, [mail('announced across nodes')]);
    await waitDrained(b);
    const archivedAt = Date.now();
    const line = await c.readUnit(5000);
    const announcedAfter = Date.now() - archivedAt;
    assert.equal(line, `* ${before + 1} EXISTS`);
    assert.ok(announcedAfter < 1000, `announced ${announcedAfter} ms after node B had archived it`);
    c.write('DONE\r\n');
    assert.equal((await c.until('I1')).kind, 'OK');
  } finally {
    c.close();
  }
});

test('both nodes filing into one folder at once: unique, dense UIDs and every message archived', async () => {
  const start = (await inbox(a)).length;
  const perNode = 40;
  const batch = (node: string): string[] => Array.from({ length: perNode }, (_, i) => mail(`concurrent ${node} ${i}`));
  // Several sessions per node, so both writers have groups in flight at the same time.
  await Promise.all([
    ...[0, 1, 2, 3].map((k) => send(a, batch('a').filter((_, i) => i % 4 === k))),
    ...[0, 1, 2, 3].map((k) => send(b, batch('b').filter((_, i) => i % 4 === k))),
  ]);
  await Promise.all([waitDrained(a), waitDrained(b)]);
  const entries = await inbox(b);
  assert.equal(entries.length, start + 2 * perNode);
  assert.deepEqual(entries.map((e) => e.uid), Array.from({ length: entries.length }, (_, i) => i + 1), 'UIDs 1..n, each once, in order');
  const subjects = new Set(entries.map((e) => e.subject));
  for (const node of ['a', 'b']) for (let i = 0; i < perNode; i++) assert.ok(subjects.has(`concurrent ${node} ${i}`), `concurrent ${node} ${i} archived`);
  const status = await a.api<{ archive: { messages: number; entries: number } }>('GET', '/api/v1/status');
  assert.equal(status.archive.entries, entries.length, 'the shared counters count both nodes\' entries');
});

test('the same message through both nodes at once is one message with one S3 object', async () => {
  const bytes = mail('one copy please', 'identical body '.repeat(200));
  const sha = createHash('sha256').update(bytes).digest('hex');
  const beforeCount = (await inbox(a)).length;
  await Promise.all([send(a, [bytes]), send(b, [bytes]), send(a, [bytes]), send(b, [bytes])]);
  await Promise.all([waitDrained(a), waitDrained(b)]);
  const entries = (await inbox(a)).filter((e) => e.subject === 'one copy please');
  assert.equal(entries.length, 1, 'one entry in the folder');
  assert.equal((await inbox(a)).length, beforeCount + 1);
  const msg = await ownMessage(b, entries[0]?.uid ?? 0);
  assert.equal(msg.captures.length, 4, 'all four captures kept as provenance');
  assert.equal(msg.blobId, sha);
  const s3 = new S3Client(s3ClientConfig(tier.s3));
  try {
    const v = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `blobs/${sha}` }));
    assert.equal((v.Versions ?? []).length, 1, 'one PUT for the one unique content');
  } finally {
    s3.destroy();
  }
});

test('a scheduled job runs once per slot across the cluster', async () => {
  await new Promise((r) => setTimeout(r, 7000));
  const r = await a.api<{ results: Array<{ job: string; startedAt: string }> }>('GET', '/api/v1/jobs/every-two-seconds/results');
  const starts = r.results.map((x) => Date.parse(x.startedAt)).sort((x, y) => x - y);
  assert.ok(starts.length >= 3, `the job ran (${starts.length} runs)`);
  // Two nodes firing the same slot would leave two runs within a few milliseconds of each other.
  for (let i = 1; i < starts.length; i++) assert.ok((starts[i] as number) - (starts[i - 1] as number) > 1000, `runs ${i - 1} and ${i} are one slot apart`);
  const nodes = (await runCli(['status'], { dataDir: join(work, 'node-b'), adminPort: b.adminPort }, { POSTERN_CONFIG: join(work, 'node-b.yaml') })).stdout;
  assert.match(nodes, /Node: +node-a on .* alive/);
  assert.match(nodes, /Node: +node-b \(this one\) on .* alive/);
});
