// The archiving pipeline for one intake entry: routing, unmatched mail, replay after a crash between
// the archive commit and the intake removal, and quarantine of entries whose data is corrupt.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArchiver } from '../../../core/pipeline/archive-message.ts';
import { Intake, type IntakeRecord } from '../../../core/intake/intake.ts';
import { QueueManager } from '../../../core/intake/queue-manager.ts';
import { KvArchiveStore } from '../../../core/storage/kv-archive.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { HookRegistry } from '../../../core/app/hooks.ts';
import { createMemoryLogger } from '../../../core/log.ts';
import { createMetrics } from '../../../core/metrics.ts';
import multidropRouter from '../../../core/router/multidrop-router.ts';
import { defaultConfig } from '../../../core/config/schema.ts';
import { App } from '../../../core/app/app.ts';
import { isPosternError } from '../../../core/errors.ts';
import { testAnalysisPool } from '../../helpers/analysis.ts';
import { DEFAULT_BLOB_CODEC, decodeChunk, encodeChunkPacked } from '../../../core/storage/blob-codec.ts';

let dir: string;
let pool: ReturnType<typeof testAnalysisPool>;
let archive: KvArchiveStore;
let intake: Intake;
let intakeKv: RocksEngine;
let hooks: HookRegistry;
const { logger, lines } = createMemoryLogger();

beforeEach(async () => {
  pool = testAnalysisPool(createMemoryLogger().logger);
  dir = mkdtempSync(join(tmpdir(), 'postern-pipe-'));
  archive = new KvArchiveStore(new RocksEngine(join(dir, 'archive')));
  intakeKv = new RocksEngine(join(dir, 'intake'));
  intake = new Intake(intakeKv, join(dir, 'intake'), 1024);
  await archive.open();
  await intake.open();
  hooks = new HookRegistry(logger, 1000);
  const app = new App(logger, hooks);
  app.decorate('archive', archive);
  app.decorate('metrics', createMetrics());
  await app.register(multidropRouter, defaultConfig().routing);
  await archive.addUser({ name: 'alice', addresses: ['alice@example.com'] });
  await archive.addUser({ name: '_unrouted', addresses: [] });
});

afterEach(async () => {
  await pool.close();
  await intake.close();
  await archive.close();
  rmSync(dir, { recursive: true, force: true });
});

function archiver() {
  return createArchiver({ archive, intake, hooks, log: logger, metrics: createMetrics(), analysis: pool, unmatched: { user: '_unrouted', folder: 'Inbox' } });
}

async function spool(body: string, rcptTo: string[], mailFrom = 'x@else.org'): Promise<{ record: IntakeRecord; inline: Buffer | null }> {
  const w = intake.writer();
  await w.write(Buffer.from(body));
  return w.commit({ listener: 'smtp', envelope: { mailFrom, rcptTo }, session: { remoteAddress: '127.0.0.1', helo: 'h', user: null } });
}

test('replaying an entry after its archive commit (crash before intake removal) archives nothing twice', async () => {
  const { record, inline } = await spool('Subject: once\r\n\r\nx\r\n', ['alice@example.com']);
  const run = archiver();
  await run(record, inline);
  await run(record, null); // as after a restart: data read back from the intake
  const entries = await archive.listEntries('alice', 'Inbox');
  assert.equal(entries.length, 1);
  assert.equal((await archive.stats()).messages, 1);
  assert.ok(lines.some((l) => l.msg === 'Intake entry was archived before a restart; removing it'));
});

test('a message no known user claims goes to the unassigned archive, is counted and logged as a warning (domains, not recipient addresses)', async () => {
  const { record, inline } = await spool('Subject: nobody\r\n\r\nx\r\n', ['stranger@Else.org', 'other@else.org', 'z@far.example'], 'x@else.org');
  const metrics = createMetrics();
  lines.length = 0;
  await createArchiver({ archive, intake, hooks, log: logger, metrics, analysis: pool, unmatched: { user: '_unrouted', folder: 'Inbox' } })(record, inline);
  assert.deepEqual((await archive.listEntries('_unrouted', 'Inbox')).map((e) => e.subject), ['nobody']);
  assert.match(await metrics.registry.metrics(), /^postern_unrouted_messages_total 1$/m);
  const warned = lines.filter((l) => l.msg === 'Message matched no known user; kept in the unassigned archive');
  assert.equal(warned.length, 1, JSON.stringify(lines));
  const [line] = warned;
  assert.equal(line?.level, 'warn');
  assert.equal(line?.intakeId, record.id);
  assert.equal(line?.captureId, record.id);
  assert.equal(line?.archive, '_unrouted');
  assert.equal(line?.listener, 'smtp');
  assert.equal(line?.from, 'x@else.org');
  assert.equal(line?.rcpts, 3);
  assert.deepEqual(line?.rcptDomains, ['else.org', 'far.example']);
  assert.ok(!JSON.stringify(line).includes('stranger'), 'recipient addresses are not logged');

  // A routed message is neither counted nor logged.
  const routed = await spool('Subject: known\r\n\r\nx\r\n', ['alice@example.com']);
  await createArchiver({ archive, intake, hooks, log: logger, metrics, analysis: pool, unmatched: { user: '_unrouted', folder: 'Inbox' } })(routed.record, routed.inline);
  assert.match(await metrics.registry.metrics(), /^postern_unrouted_messages_total 1$/m);
  assert.equal(lines.filter((l) => l.msg === 'Message matched no known user; kept in the unassigned archive').length, 1);
});

test('a spooled (file) entry is archived from its file with exact bytes', async () => {
  const body = 'Subject: big\r\n\r\n' + 'z'.repeat(5000) + '\r\n';
  const { record, inline } = await spool(body, ['alice@example.com']);
  assert.equal(record.storage, 'file');
  assert.equal(inline, null);
  await archiver()(record, null);
  const [entry] = await archive.listEntries('alice', 'Inbox');
  const msg = await archive.getMessage(entry?.messageId ?? '');
  const parts: Buffer[] = [];
  for await (const c of (await archive.openBlob(msg?.blobId ?? ''))!) parts.push(c as Buffer);
  assert.equal(Buffer.concat(parts).toString(), body);
});

test('an analysis worker given the blob codec compresses a held message; the archive stores those bytes and reads back the original exactly', async () => {
  const packing = testAnalysisPool(createMemoryLogger().logger, [], { codec: DEFAULT_BLOB_CODEC });
  try {
    const body = 'Subject: packed\r\n\r\n' + 'compressible words '.repeat(40) + '\r\n';
    const { record, inline } = await spool(body, ['alice@example.com']);
    assert.ok(inline);
    const result = await packing.analyze({ source: { bytes: inline }, size: record.size });
    const packed = result.units[0]?.packed;
    assert.ok(packed?.bytes, 'the worker returned compressed bytes');
    assert.ok(packed.bytes.byteLength < inline.length / 2);
    assert.deepEqual({ codec: packed.codec, level: packed.level, minSize: packed.minSize }, { ...DEFAULT_BLOB_CODEC });
    assert.ok(decodeChunk(encodeChunkPacked(inline, packed)).equals(inline));
    await createArchiver({ archive, intake, hooks, log: logger, metrics: createMetrics(), analysis: packing, unmatched: { user: '_unrouted', folder: 'Inbox' } })(record, inline);
    const [entry] = await archive.listEntries('alice', 'Inbox');
    const msg = await archive.getMessage(entry?.messageId ?? '');
    const parts: Buffer[] = [];
    for await (const c of (await archive.openBlob(msg?.blobId ?? ''))!) parts.push(c as Buffer);
    assert.equal(Buffer.concat(parts).toString(), body);
  } finally {
    await packing.close();
  }
});

test('a spooled entry whose spool file is gone is reported corrupt, not archived', async () => {
  const { record } = await spool('Subject: big\r\n\r\n' + 'z'.repeat(5000) + '\r\n', ['alice@example.com']);
  assert.equal(record.storage, 'file');
  rmSync(intake.spoolPath(record.id));
  await assert.rejects(archiver()(record, null), (err) => isPosternError(err, 'INTAKE_CORRUPT'));
  assert.equal((await archive.stats()).messages, 0);
});

test('an entry whose stored bytes do not match the checksum is reported corrupt, not archived', async () => {
  const { record } = await spool('Subject: a\r\n\r\nx\r\n', ['alice@example.com']);
  // Damage the stored copy (same length, one byte changed), as a bad disk would.
  await intakeKv.write([{ type: 'put', key: `d\u0000${record.id}`, value: Buffer.from('Subject: b\r\n\r\nx\r\n') }], { sync: true });
  await assert.rejects(archiver()(record, null), (err) => isPosternError(err, 'INTAKE_CORRUPT'));
  assert.equal((await archive.stats()).messages, 0);
});

test('queue manager: a temporary failure defers with backoff and is retried; exhausted attempts quarantine as corrupt', async () => {
  const { record, inline } = await spool('Subject: flaky\r\n\r\nx\r\n', ['alice@example.com']);
  let calls = 0;
  const real = archiver();
  const outcomes: string[] = [];
  const q = new QueueManager(intake, async (r, i) => {
    calls += 1;
    if (calls < 3) throw new Error('storage hiccup');
    await real(r, i);
  }, { activeWindow: 2, maxAttempts: 5, retryBaseSeconds: 0.01, retryMaxSeconds: 0.05 }, logger, { onOutcome: (o) => outcomes.push(o) });
  q.start([]);
  q.enqueue(record, inline);
  const deadline = Date.now() + 10000;
  while (!outcomes.includes('archived') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await q.stop(1000);
  assert.deepEqual(outcomes, ['deferred', 'deferred', 'archived']);
  assert.equal(calls, 3);
  assert.equal((await archive.listEntries('alice', 'Inbox')).length, 1);
  assert.deepEqual(intake.counts(), { active: 0, deferred: 0, corrupt: 0 });

  const bad = await spool('Subject: never\r\n\r\nx\r\n', ['alice@example.com']);
  const seen: string[] = [];
  const q2 = new QueueManager(intake, async () => { throw new Error('always'); },
    { activeWindow: 1, maxAttempts: 2, retryBaseSeconds: 0.01, retryMaxSeconds: 0.02 }, logger, { onOutcome: (o) => seen.push(o) });
  q2.start([]);
  q2.enqueue(bad.record, bad.inline);
  const d2 = Date.now() + 10000;
  while (!seen.includes('corrupt') && Date.now() < d2) await new Promise((r) => setTimeout(r, 20));
  await q2.stop(1000);
  assert.deepEqual(seen, ['deferred', 'corrupt']);
  assert.deepEqual(intake.counts(), { active: 0, deferred: 0, corrupt: 1 });
  const kept = await intake.get(bad.record.id);
  assert.equal(kept?.state, 'corrupt');
  assert.equal(kept?.lastError, 'always');
});

test('intake reopen returns what was left, and orphan spool files (never acknowledged) are removed', async () => {
  const left = await spool('Subject: left\r\n\r\nx\r\n', ['alice@example.com']);
  const orphan = intake.writer();
  await orphan.write(Buffer.alloc(4096, 0x61)); // spills to a file, never committed
  await intake.close();
  const again = new Intake(new RocksEngine(join(dir, 'intake')), join(dir, 'intake'), 1024);
  const records = await again.open();
  assert.deepEqual(records.map((r) => r.id), [left.record.id]);
  const { readdirSync } = await import('node:fs');
  assert.deepEqual(readdirSync(join(dir, 'intake', 'spool')), []);
  intake = again;
});
