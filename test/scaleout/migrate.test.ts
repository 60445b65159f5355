// `postern migrate --to postgres-s3` end to end on the tier's real PostgreSQL and Ceph RGW: an embedded
// archive filled through a real server (SMTP, three users, a retention policy, a legal hold, a message
// over 1 MiB), stopped; the migration refused while the server runs, killed once midway through its
// records and resumed; then a server on postgres-s3 over the same data directory serves every message
// byte-identical, `postern verify` and `postern audit verify` pass, and the migrated objects carry their
// Object Lock retention and legal hold, read with the S3 API directly. A second archive is refused by the
// migrated target.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { GetObjectCommand, GetObjectLegalHoldCommand, GetObjectRetentionCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { configSchema } from '../../core/config/schema.ts';
import { migrateToPostgresS3 } from '../../core/migrate/run.ts';
import { RocksEngine } from '../../core/storage/rocksdb-engine.ts';
import { CLI, runCli, type CliResult } from '../helpers/cli.ts';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { spawnServer, stopServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';
import { enginesFromEnv, freshBucket, freshDatabase, s3ClientConfig, type TierEngines } from './engines.ts';

const YEAR_MS = 365 * 86_400_000;
let engines: TierEngines;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let bucket: string;
let s3: S3Client;
let tmp: string;
let dataDir: string;
let target: Record<string, string>;
let srv: SpawnedServer | null = null;

before(async () => {
  engines = enginesFromEnv();
  db = await freshDatabase(engines.pgUrl);
  bucket = await freshBucket(engines.s3, 'mig');
  s3 = new S3Client(s3ClientConfig(engines.s3));
  tmp = mkdtempSync(join(tmpdir(), 'postern-migrate-'));
  dataDir = join(tmp, 'data');
  const secretFile = join(tmp, 's3.secret');
  writeFileSync(secretFile, engines.s3.secretAccessKey, { mode: 0o600 });
  target = {
    POSTERN_STORAGE_POSTGRES_URL: db.url, POSTERN_STORAGE_S3_ENDPOINT: engines.s3.endpoint, POSTERN_STORAGE_S3_REGION: engines.s3.region,
    POSTERN_STORAGE_S3_BUCKET: bucket, POSTERN_STORAGE_S3_ACCESS_KEY_ID: engines.s3.accessKeyId, POSTERN_STORAGE_S3_SECRET_ACCESS_KEY_FILE: secretFile,
    POSTERN_STORAGE_S3_CREATE_BUCKET: 'false',
  };
});

after(async () => {
  if (srv) await stopServer(srv);
  s3?.destroy();
  await db?.drop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The migration in this process (a CLI process costs seconds of start-up on a loaded machine), into `pgUrl` and `bucketName`. */
function migrateHere(dir: string, pgUrl: string, bucketName: string): ReturnType<typeof migrateToPostgresS3> {
  const config = configSchema.parse({
    dataDir: dir,
    storage: {
      postgres: { url: pgUrl },
      s3: { endpoint: engines.s3.endpoint, region: engines.s3.region, bucket: bucketName, accessKeyId: engines.s3.accessKeyId, secretAccessKeyFile: target.POSTERN_STORAGE_S3_SECRET_ACCESS_KEY_FILE, createBucket: false },
    },
  });
  return migrateToPostgresS3(config, { batch: 1000 });
}

function cli(args: string[], env: Record<string, string> = {}, dir = dataDir): Promise<CliResult> {
  return runCli(args, { dataDir: dir, adminPort: srv?.adminPort }, env);
}

async function raw(s: SpawnedServer, user: string, uid: number): Promise<Buffer> {
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const res = await fetch(`http://127.0.0.1:${s.adminPort}/api/v1/archive/${user}/messages/${uid}/raw?folder=Inbox`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200, `${user} ${uid}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Every message of every user's Inbox, by "user/uid". */
async function allMessages(s: SpawnedServer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const user of ['alice', 'bob', 'carol']) {
    const { entries } = await s.api<{ entries: Array<{ uid: number }> }>('GET', `/api/v1/archive/${user}/messages?folder=Inbox`);
    for (const e of entries) out.set(`${user}/${e.uid}`, await raw(s, user, e.uid));
  }
  return out;
}

async function migrateState(client?: pg.Client): Promise<{ phase: string; last_key: Buffer | null } | null> {
  const c = client ?? new pg.Client({ connectionString: db.url });
  if (!client) await c.connect();
  try {
    const exists = await c.query<{ t: string | null }>("SELECT to_regclass('migrate_state')::text AS t");
    if (!exists.rows[0]?.t) return null;
    return (await c.query<{ phase: string; last_key: Buffer | null }>('SELECT phase, last_key FROM migrate_state')).rows[0] ?? null;
  } finally {
    if (!client) await c.end();
  }
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
let before_: Map<string, Buffer>;
let large: Buffer;
let carolOnly: Buffer;

test('an embedded archive filled over SMTP, with a policy, a hold and a message over 1 MiB', async () => {
  srv = await spawnServer(dataDir);
  // Through the admin API the CLI uses (each CLI process costs seconds on a loaded machine).
  for (const name of ['alice', 'bob', 'carol']) await srv.api('POST', '/api/v1/users', { name, addresses: [`${name}@example.com`], domains: [], pop3Users: [] });
  await srv.api('POST', '/api/v1/policies', { name: 'keep-alice', match: { users: ['alice'] }, minimum: '7y' });
  await srv.api('POST', '/api/v1/holds', { name: 'bob-case', scope: { users: ['bob'] } });
  const c = await SmtpClient.open(srv.smtpPort);
  await c.read();
  await c.cmd('EHLO migrate.example');
  const mail = (to: string[], subject: string, body: string): string =>
    `From: sender@client.example\r\nTo: ${to.join(', ')}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@client.example>\r\n\r\n${body}\r\n`;
  for (let n = 1; n <= 12; n++) {
    const to = [['alice@example.com'], ['bob@example.com'], ['carol@example.com'], ['alice@example.com', 'bob@example.com']][n % 4] as string[];
    assert.equal((await sendMail(c, 'sender@client.example', to, mail(to, `Note ${n}`, `body ${n} `.repeat(50)))).code, 250);
  }
  // Over one chunk (1 MiB) once encoded: random base64 does not compress to below it.
  const big = Buffer.from(Array.from({ length: 1_600_000 }, (_, i) => ((i * 2654435761) >>> 13) & 0xff)).toString('base64').replace(/.{76}/g, '$&\r\n');
  assert.equal((await sendMail(c, 'sender@client.example', ['alice@example.com', 'bob@example.com'], mail(['alice@example.com', 'bob@example.com'], 'Large one', big))).code, 250);
  c.close();
  await waitDrained(srv);
  before_ = await allMessages(srv);
  assert.equal(before_.size, 3 + 3 + 3 + 3 + 3 + 2); // 12 notes over 4 recipient sets (alice+bob twice over), the large one twice
  large = before_.get(`alice/${[...before_.keys()].filter((k) => k.startsWith('alice/')).length}`) as Buffer;
  assert.ok(large.length > 2 * 1024 * 1024, `large message is ${large.length} bytes`);
  carolOnly = before_.get('carol/1') as Buffer;

  // The source is in use: the migration refuses and writes nothing to the target.
  await assert.rejects(migrateHere(dataDir, db.url, bucket), /is in use \(is a Postern server running on/);
  assert.equal(await migrateState(), null);
  await stopServer(srv);
  srv = null;
});

test('a migration killed midway resumes, and its report shows a verified copy', async () => {
  const child = spawn(process.execPath, [CLI, 'migrate', '--to', 'postgres-s3', '--batch', '1'], {
    env: { ...process.env, POSTERN_DATA_DIR: dataDir, ...target }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let killedAt: { phase: string; last_key: Buffer | null } | null = null;
  const watcher = new pg.Client({ connectionString: db.url });
  await watcher.connect();
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    const s = await migrateState(watcher);
    if (s?.phase === 'records' && s.last_key !== null) {
      child.kill('SIGKILL');
      killedAt = s;
      break;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  await watcher.end();
  await exited;
  assert.ok(killedAt, `the migration was not seen in its records phase: ${stderr}`);
  const left = await migrateState();
  assert.equal(left?.phase, 'records', 'killed before it finished its records');

  const r = await cli(['migrate', '--to', 'postgres-s3'], target);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /: resumed at phase records$/m);
  assert.doesNotMatch(r.stdout, /Copied \d+ blob chunks? this run/, 'chunks were done before the kill');
  assert.match(r.stdout, /^ {2}ok\tentries\t17 → 17\t/m);
  assert.match(r.stdout, /^ {2}ok\tobjects\t\d+ objects of \d+ blobs re-read/m);
  assert.match(r.stdout, /^ {2}ok\tretention\t\d+ retained objects? each checked/m);
  assert.match(r.stdout, /The target matches the source/);
  assert.doesNotMatch(r.stdout, /DIFFERS/);
  assert.equal((await migrateState())?.phase, 'done');

});

test('the migrated objects carry Object Lock retention and legal hold (read with the S3 API)', async () => {
  const id = sha(large);
  for (const key of [`blobs/${id}`, `blobs/${id}.000001`]) {
    const ret = await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: key }));
    assert.equal(ret.Retention?.Mode, 'COMPLIANCE', key);
    assert.ok((ret.Retention?.RetainUntilDate?.getTime() ?? 0) > Date.now() + 6 * YEAR_MS, `${key} retained until ${String(ret.Retention?.RetainUntilDate)}`);
    const hold = await s3.send(new GetObjectLegalHoldCommand({ Bucket: bucket, Key: key }));
    assert.equal(hold.LegalHold?.Status, 'ON', `${key}: bob's hold covers the message`);
  }
  // Carol's mail: no policy, no hold.
  const key = `blobs/${sha(carolOnly)}`;
  const hold = await s3.send(new GetObjectLegalHoldCommand({ Bucket: bucket, Key: key })).catch(() => null);
  assert.notEqual(hold?.LegalHold?.Status, 'ON');
  const ret = await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: key })).catch(() => null);
  assert.equal(ret?.Retention?.RetainUntilDate, undefined);
});

test('the verification reports a changed record and a changed object (exit 1)', async () => {
  const key = `blobs/${sha(carolOnly)}`;
  const original = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = Buffer.from(await original.Body?.transformToByteArray() ?? []);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    assert.equal((await c.query("UPDATE users SET v = v || ' '::bytea WHERE k = $1", [Buffer.from('u\u0000carol')])).rowCount, 1);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from('not the chunk') }));
    const r = await cli(['migrate', '--to', 'postgres-s3'], target);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /already copied; verified again$/m);
    assert.match(r.stdout, /^ {2}DIFFERS\tusers\t4 → 4\t/m);
    assert.match(r.stdout, /^ {2}DIFFERS\tobjects\t/m);
    assert.match(r.stdout, new RegExp(`problem: Object of blob ${sha(carolOnly)} chunk 0: 13 bytes differ`));
    assert.match(r.stdout, /The target DIFFERS from the source/);
  } finally {
    await c.query('UPDATE users SET v = substring(v from 1 for length(v) - 1) WHERE k = $1', [Buffer.from('u\u0000carol')]);
    await c.end();
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
  }
});

test('a server on postgres-s3 over the same data directory serves every message byte-identical; verify and audit verify pass', async () => {
  const env = { POSTERN_STORAGE_BACKEND: 'postgres-s3', ...target };
  srv = await spawnServer(dataDir, env);
  const now = await allMessages(srv);
  assert.deepEqual([...now.keys()].sort(), [...before_.keys()].sort());
  for (const [k, v] of before_) assert.ok(now.get(k)?.equals(v), `${k} differs after the migration`);
  const v = await cli(['verify'], env);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  // What `postern audit verify` asks the server.
  const audit = await srv.api<{ ok: boolean; records: number }>('GET', '/api/v1/audit/verify');
  assert.ok(audit.ok && audit.records > 3, JSON.stringify(audit));
  await stopServer(srv);
  srv = null;
});

test('another archive is refused by the migrated target', async () => {
  const other = join(tmp, 'other');
  const engine = new RocksEngine(join(other, 'archive'));
  await engine.open();
  await engine.write([{ type: 'put', key: 'u\u0000dave', value: Buffer.from('{}') }], { sync: true });
  await engine.close();
  await assert.rejects(migrateHere(other, db.url, bucket), /The target holds a migration of another archive/);
});

test('an unfinished migration whose source changed starts over; a finished one whose source changed is refused', async () => {
  const other = join(tmp, 'other');
  const db2 = await freshDatabase(engines.pgUrl);
  try {
    const bucket2 = await freshBucket(engines.s3, 'mig');
    const first = await migrateHere(other, db2.url, bucket2);
    assert.equal(first.start.kind, 'new');
    assert.ok(first.report.ok, JSON.stringify(first.report.problems));
    const c = new pg.Client({ connectionString: db2.url });
    await c.connect();
    try {
      // As if it had been killed before its end, and a server had then committed to the source.
      await c.query("UPDATE migrate_state SET phase = 'records', last_key = NULL, finished_at = NULL");
      const source = new RocksEngine(join(other, 'archive'));
      await source.open();
      await source.write([{ type: 'put', key: 'u\u0000erin', value: Buffer.from('{}') }, { type: 'del', key: 'u\u0000dave' }], { sync: true });
      await source.close();
      const again = await migrateHere(other, db2.url, bucket2);
      assert.equal(again.start.kind, 'restarted');
      assert.ok(again.report.ok, JSON.stringify(again.report.problems));
      const users = await c.query<{ k: Buffer }>('SELECT k FROM users ORDER BY k');
      assert.deepEqual(users.rows.map((r) => r.k.toString('utf8')), ['u\u0000erin'], 'the copy of the old state is gone');

      const changed = new RocksEngine(join(other, 'archive'));
      await changed.open();
      await changed.write([{ type: 'put', key: 'u\u0000fred', value: Buffer.from('{}') }], { sync: true });
      await changed.close();
      await assert.rejects(migrateHere(other, db2.url, bucket2), /the archive has changed since/);
    } finally {
      await c.end();
    }
  } finally {
    await db2.drop();
  }
});
