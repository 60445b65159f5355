// The message-attributes mechanism end to end: `index` hook results merged into MessageRecord.attributes
// by the archiving pipeline (a real intake and RocksDB archive), the IMAP data stored once with a new
// message and kept when a copy merges in, and oversized or non-JSON attributes dropped with a warning.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArchiver, messageAttributes, MAX_ATTRIBUTES_BYTES } from '../../../../core/pipeline/archive-message.ts';
import { Intake } from '../../../../core/intake/intake.ts';
import { KvArchiveStore } from '../../../../core/storage/kv-archive.ts';
import { RocksEngine } from '../../../../core/storage/rocksdb-engine.ts';
import { HookRegistry } from '../../../../core/app/hooks.ts';
import { createMemoryLogger } from '../../../../core/log.ts';
import { createMetrics } from '../../../../core/metrics.ts';
import { computeImapData, imapDataOf } from '../../../../plugins/imap/message/index.ts';
import { testAnalysisPool } from '../../../helpers/analysis.ts';

let dir: string;
let pool: ReturnType<typeof testAnalysisPool>;
let archive: KvArchiveStore;
let intake: Intake;
let hooks: HookRegistry;
const { logger, lines } = createMemoryLogger();

beforeEach(async () => {
  pool = testAnalysisPool(createMemoryLogger().logger);
  dir = mkdtempSync(join(tmpdir(), 'postern-attrs-'));
  archive = new KvArchiveStore(new RocksEngine(join(dir, 'archive')));
  intake = new Intake(new RocksEngine(join(dir, 'intake')), join(dir, 'intake'), 1024);
  await archive.open();
  await intake.open();
  hooks = new HookRegistry(logger, 5000);
  hooks.on('route', 'test-router', () => [{ user: 'alice', folder: 'Inbox', reason: 'test' }]);
  await archive.addUser({ name: 'alice', addresses: ['alice@example.com'] });
  lines.length = 0;
});

afterEach(async () => {
  await pool.close();
  await intake.close();
  await archive.close();
  rmSync(dir, { recursive: true, force: true });
});

async function archiveMessage(body: string): Promise<string> {
  const w = intake.writer();
  await w.write(Buffer.from(body));
  const { record, inline } = await w.commit({ listener: 'smtp', envelope: { mailFrom: 'x@else.org', rcptTo: ['alice@example.com'] }, session: { remoteAddress: '127.0.0.1', helo: 'h', user: null } });
  await createArchiver({ archive, intake, hooks, log: logger, metrics: createMetrics(), analysis: pool, unmatched: { user: 'alice', folder: 'Inbox' } })(record, inline);
  const entries = await archive.listEntries('alice', 'Inbox');
  return (entries[entries.length - 1] as { messageId: string }).messageId;
}

const MAIL = 'From: a@b.c\r\nSubject: attributes\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\nhello\r\n--z--\r\n';

test('the imap plugin\'s index result is stored with the message and reads back valid', async () => {
  hooks.on('index', 'imap', async ({ context }) => ({ imap: await computeImapData(context.open()) }));
  const id = await archiveMessage(MAIL);
  const message = await archive.getMessage(id);
  const data = imapDataOf(message?.attributes);
  assert.ok(data, 'stored IMAP data validates');
  assert.equal(data.envelope, '(NIL "attributes" ((NIL NIL "a" "b.c")) ((NIL NIL "a" "b.c")) ((NIL NIL "a" "b.c")) NIL NIL NIL NIL NIL)');
  assert.equal(data.bodystructure, '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL) "mixed" ("boundary" "z") NIL NIL NIL)');
  assert.equal(data.headerSize, MAIL.indexOf('\r\n\r\n') + 4);
});

test('an LF message gets CRLF view sizes in its stored IMAP data; the archived bytes stay LF', async () => {
  hooks.on('index', 'imap', async ({ context }) => ({ imap: await computeImapData(context.open()) }));
  const lf = MAIL.replace(/\r\n/g, '\n');
  const id = await archiveMessage(lf);
  const message = await archive.getMessage(id);
  const data = imapDataOf(message?.attributes);
  assert.ok(data, 'stored IMAP data validates');
  assert.equal(message?.size, lf.length);
  assert.equal(data.size, MAIL.length);
  assert.equal(data.headerSize, MAIL.indexOf('\r\n\r\n') + 4);
  assert.equal(data.bodystructure, '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL) "mixed" ("boundary" "z") NIL NIL NIL)');
  const blob = await archive.openBlob(message?.blobId ?? '');
  assert.ok(blob);
  const parts: Buffer[] = [];
  for await (const chunk of blob) parts.push(chunk as Buffer);
  assert.equal(Buffer.concat(parts).toString('latin1'), lf);
});

test('parts of several plugins are merged; the first plugin to return a key wins', async () => {
  hooks.on('index', 'one', () => ({ a: 1, shared: 'first' }));
  hooks.on('index', 'two', () => ({ b: [true, null], shared: 'second' }));
  hooks.on('index', 'three', () => undefined);
  const id = await archiveMessage(MAIL);
  assert.deepEqual((await archive.getMessage(id))?.attributes, { a: 1, shared: 'first', b: [true, null] });
});

test('a copy merged into an existing message keeps the first message\'s attributes', async () => {
  let n = 0;
  hooks.on('dedup', 'same', async () => (n > 0 ? { mergeInto: (await archive.listEntries('alice', 'Inbox'))[0]?.messageId ?? '' } : null));
  hooks.on('index', 'counter', () => ({ capture: ++n }));
  const first = await archiveMessage(MAIL);
  const second = await archiveMessage(MAIL);
  assert.equal(second, first);
  const m = await archive.getMessage(first);
  assert.deepEqual(m?.attributes, { capture: 1 });
  assert.equal(m?.captures.length, 2);
});

test('without index results a message has no attributes', async () => {
  const id = await archiveMessage(MAIL);
  assert.equal((await archive.getMessage(id))?.attributes, undefined);
});

test('an oversized attribute is dropped with a warning and the message is still archived', async () => {
  hooks.on('index', 'huge', () => ({ huge: 'x'.repeat(MAX_ATTRIBUTES_BYTES) }));
  hooks.on('index', 'small', () => ({ small: 'kept' }));
  const id = await archiveMessage(MAIL);
  assert.deepEqual((await archive.getMessage(id))?.attributes, { small: 'kept' });
  assert.ok(lines.some((l) => l.msg === 'Message attribute is too large; dropped' && l.key === 'huge'));
});

test('messageAttributes drops values that are not JSON and copies the rest', () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const source = { nested: { list: [1, 'two'] } };
  const out = messageAttributes([{ fn: () => 1, cyclic, big: 10n, undef: undefined }, source], logger);
  assert.deepEqual(out, { nested: { list: [1, 'two'] } });
  assert.notEqual(out?.nested, source.nested, 'a copy, not the plugin\'s object');
  assert.ok(lines.some((l) => l.msg === 'Message attribute is not JSON; dropped' && l.key === 'cyclic'));
  assert.ok(lines.some((l) => l.msg === 'Message attribute is not JSON; dropped' && l.key === 'big'));
  assert.equal(messageAttributes([], logger), undefined);
  assert.equal(messageAttributes([{}], logger), undefined);
  // The limit counts the whole set: two halves that each fit do not both fit.
  const half = 'y'.repeat(MAX_ATTRIBUTES_BYTES / 2);
  assert.deepEqual(Object.keys(messageAttributes([{ a: half }, { b: half }], logger) ?? {}), ['a']);
});
