// The dedup plugin end to end: copies of one mail through different hubs become one message (merged
// recipients, one blob), different mails stay apart, simultaneous copies on two connections merge,
// and the Bloom filter is saved at shutdown and reloaded (not rebuilt) at the next start; a filter file
// in the old format (bloom-filters/xxhash) is rebuilt from the stored identities. The filter itself:
// no false negatives, the configured false-positive rate, and snapshots checked before use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BitBloom, BLOOM_HASH } from '../../../plugins/dedup/bit-bloom.ts';
import { BloomIndex } from '../../../plugins/dedup/bloom-index.ts';
import { createMemoryLogger } from '../../../core/log.ts';
import { SmtpClient, sendMail } from '../../helpers/smtp-client.ts';
import { startTestServer, type TestServer } from '../../helpers/test-server.ts';

const mail = (hub: string, body = 'Quarterly numbers attached.\r\n'): string =>
  `Received: from ${hub}.example.com by mx.example.com; Mon, 3 Jun 2024 10:00:00 +0000\r\nReturn-Path: <b-${hub}@example.com>\r\n` +
  `From: carol@else.org\r\nTo: alice@example.com, bob@example.com\r\nSubject: Numbers\r\nDate: Mon, 3 Jun 2024 09:59:00 +0000\r\nMessage-ID: <n1@else.org>\r\n\r\n${body}`;

async function send(srv: TestServer, rcpt: string, data: string): Promise<void> {
  const c = await SmtpClient.open(srv.smtpPort);
  await c.read();
  await c.cmd('EHLO hub.example.com');
  assert.equal((await sendMail(c, 'carol@else.org', [rcpt], data)).code, 250);
  c.close();
}

/** Run fn against a server with dedup on; the data directory is removed afterwards unless kept. */
async function withDedup(fn: (srv: TestServer) => Promise<void>, dataDir?: string, keep = false): Promise<TestServer> {
  const srv = await startTestServer((c) => { c.plugins = [{ name: 'dedup', config: {} }]; }, dataDir);
  if (!(await srv.archive.getUser('alice'))) {
    await srv.archive.addUser({ name: 'alice', addresses: ['alice@example.com'] });
    await srv.archive.addUser({ name: 'bob', addresses: ['bob@example.com'] });
  }
  try {
    await fn(srv);
  } finally {
    await srv.running.shutdown('test');
    if (!keep) rmSync(srv.dataDir, { recursive: true, force: true });
  }
  return srv;
}

test('copies through two hubs are one message filed for each recipient, with one blob; a different body is another message', async () => {
  await withDedup(async (srv) => {
    await send(srv, 'alice@example.com', mail('hub-a'));
    await srv.settle();
    await send(srv, 'bob@example.com', mail('hub-b'));
    await srv.settle();
    const stats = await srv.archive.stats();
    assert.equal(stats.messages, 1);
    assert.equal(stats.blobs, 1, 'the merged copy stores no second blob');
    const [a] = await srv.archive.listEntries('alice', 'Inbox');
    const [b] = await srv.archive.listEntries('bob', 'Inbox');
    assert.equal(a?.messageId, b?.messageId);
    assert.equal((await srv.archive.getMessage(a?.messageId ?? ''))?.captures.length, 2);
    await send(srv, 'bob@example.com', mail('hub-c', 'Quarterly numbers attached!\r\n'));
    await srv.settle();
    assert.equal((await srv.archive.stats()).messages, 2, 'one changed byte in the body is another message');
    const metrics = await srv.running.app.service('metrics').registry.metrics();
    assert.match(metrics, /^postern_dedup_duplicates_total 1$/m);
  });
});

test('two copies arriving at the same moment on two connections become one message', async () => {
  await withDedup(async (srv) => {
    await Promise.all([send(srv, 'alice@example.com', mail('hub-x')), send(srv, 'bob@example.com', mail('hub-y'))]);
    await srv.settle();
    const stats = await srv.archive.stats();
    assert.equal(stats.messages, 1);
    assert.equal(stats.entries, 2);
  });
});

test('the filter is saved at shutdown and loaded, not rebuilt, at the next start', async () => {
  const first = await withDedup(async (srv) => {
    await send(srv, 'alice@example.com', mail('hub-a'));
    await srv.settle();
  }, undefined, true);
  assert.ok(existsSync(join(first.dataDir, 'dedup-bloom.json')));
  const second = await withDedup(async (srv) => {
    for (let i = 0; i < 100 && !srv.logs.some((l) => l.msg === 'Dedup filter loaded'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(srv.logs.some((l) => l.msg === 'Dedup filter loaded'), 'loaded from the file');
    await send(srv, 'bob@example.com', mail('hub-b'));
    await srv.settle();
    assert.equal((await srv.archive.stats()).messages, 1, 'the copy merged after a restart');
  }, first.dataDir);
  assert.equal(second.dataDir, first.dataDir);
});

test('a filter file in the old format is rebuilt from the stored identities, and copies still merge', async () => {
  const first = await withDedup(async (srv) => {
    await send(srv, 'alice@example.com', mail('hub-a'));
    await srv.settle();
  }, undefined, true);
  const file = join(first.dataDir, 'dedup-bloom.json');
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { archiveMessages: number };
  // What version 1 wrote: a bloom-filters BloomFilter (xxhash seeds) whose bits mean nothing to the new hash.
  writeFileSync(file, JSON.stringify({ version: 1, expected: 1_000_000, falsePositiveRate: 0.01, archiveMessages: saved.archiveMessages, filter: { type: 'BloomFilter', _size: 64, _nbHashes: 3, _filter: { size: 64, content: 'AAAAAAAAAAA=' }, _seed: 78187493520 } }));
  await withDedup(async (srv) => {
    for (let i = 0; i < 100 && !srv.logs.some((l) => l.msg === 'Dedup filter rebuilt'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(srv.logs.some((l) => l.msg === 'Dedup filter file has an older format; rebuilding it'));
    const rebuilt = srv.logs.find((l) => l.msg === 'Dedup filter rebuilt');
    assert.equal(rebuilt?.keys, 1, 'the one stored canonical identity');
    await send(srv, 'bob@example.com', mail('hub-b'));
    await srv.settle();
    assert.equal((await srv.archive.stats()).messages, 1, 'the copy merged after the rebuild');
  }, first.dataDir, true);
  try {
    const after = JSON.parse(readFileSync(file, 'utf8')) as { version: number; filter: { hash: string } };
    assert.equal(after.version, 2, 'saved in the new format at shutdown');
    assert.equal(after.filter.hash, BLOOM_HASH);
  } finally {
    rmSync(first.dataDir, { recursive: true, force: true });
  }
});

test('the filter never forgets a key and keeps the configured false-positive rate', () => {
  const filter = BitBloom.create(20_000, 0.01);
  for (let i = 0; i < 20_000; i++) filter.add(`c1:${i.toString(16).padStart(64, '0')}`);
  for (let i = 0; i < 20_000; i++) assert.ok(filter.has(`c1:${i.toString(16).padStart(64, '0')}`), `key ${i}`);
  let falsePositives = 0;
  const probes = 200_000;
  for (let i = 0; i < probes; i++) if (filter.has(`c1:absent-${i}`)) falsePositives++;
  const rate = falsePositives / probes;
  assert.ok(rate > 0.004 && rate < 0.016, `false-positive rate ${rate} near the configured 0.01`);
  // Near-identical keys (one character apart, as canonical hashes of similar mail are not) still spread.
  const similar = BitBloom.create(1000, 0.01);
  similar.add('aaaa');
  assert.equal(['aaab', 'baaa', 'aaa', 'aaaaa', 'AAAA'].filter((k) => similar.has(k)).length, 0);
});

test('the filter is sized like the standard formula and survives a snapshot round trip', () => {
  const filter = BitBloom.create(1_000_000, 0.01);
  assert.equal(filter.bits, 9_585_059);
  assert.equal(filter.hashes, 7);
  assert.equal(filter.byteLength, Math.ceil(9_585_059 / 8));
  const small = BitBloom.create(5000, 0.02);
  for (let i = 0; i < 5000; i++) small.add(`k${i}`);
  const back = BitBloom.fromSnapshot(JSON.parse(JSON.stringify(small.snapshot())));
  assert.ok(back);
  for (let i = 0; i < 5000; i++) assert.ok(back.has(`k${i}`));
  for (let i = 0; i < 2000; i++) assert.equal(back.has(`absent${i}`), small.has(`absent${i}`));
  assert.throws(() => BitBloom.create(0, 0.01), RangeError);
  assert.throws(() => BitBloom.create(10, 1), RangeError);
});

test('a malformed or foreign snapshot is refused, never half-loaded', () => {
  const good = BitBloom.create(1000, 0.01).snapshot();
  const bad: unknown[] = [
    null, 42, 'text', [], {},
    { ...good, hash: 'xxhash64' },
    { ...good, bits: 63 }, { ...good, bits: 1.5 }, { ...good, bits: '9585' }, { ...good, bits: 2 ** 40 },
    { ...good, hashes: 0 }, { ...good, hashes: 65 }, { ...good, hashes: 2.5 },
    { ...good, data: 42 }, { ...good, data: good.data.slice(0, -8) },
    { ...good, bits: good.bits + 64 },
  ];
  for (const s of bad) assert.equal(BitBloom.fromSnapshot(s), null, JSON.stringify(s)?.slice(0, 80));
  assert.ok(BitBloom.fromSnapshot(good));
});

test('the filter file is loaded only when current: version, sizing, archive count and content are checked', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bloom-'));
  try {
    const { logger, lines } = createMemoryLogger('debug');
    const file = join(dir, 'f.json');
    const index = new BloomIndex(file, 1000, 0.01, logger);
    assert.equal(index.load(0), false, 'no file');
    assert.equal(index.mayContain('k'), true, 'not ready: every key may be a copy (exact lookups)');
    void index.rebuild((async function* () { yield 'k'; })());
    return new Promise<void>((resolve) => setImmediate(() => {
      assert.equal(index.mayContain('k'), true);
      index.save(7);
      assert.equal(new BloomIndex(file, 1000, 0.01, logger).load(7), true);
      assert.equal(new BloomIndex(file, 1000, 0.01, logger).load(8), false, 'archive count changed');
      assert.equal(new BloomIndex(file, 2000, 0.01, logger).load(7), false, 'sized for another count');
      assert.equal(new BloomIndex(file, 1000, 0.02, logger).load(7), false, 'another rate');
      const loaded = new BloomIndex(file, 1000, 0.01, logger);
      loaded.load(7);
      assert.equal(loaded.mayContain('k'), true);
      const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeFileSync(file, JSON.stringify({ ...saved, filter: { hash: BLOOM_HASH, bits: 64, hashes: 1, data: '' } }));
      assert.equal(new BloomIndex(file, 1000, 0.01, logger).load(7), false, 'malformed filter');
      assert.ok(lines.some((l) => l.msg === 'Dedup filter file is malformed; rebuilding it'));
      writeFileSync(file, '{"version": 2, "expec');
      assert.equal(new BloomIndex(file, 1000, 0.01, logger).load(7), false, 'truncated JSON');
      assert.ok(lines.some((l) => l.msg === 'Dedup filter file unreadable; rebuilding it'));
      writeFileSync(file, JSON.stringify({ ...saved, version: 1 }));
      assert.equal(new BloomIndex(file, 1000, 0.01, logger).load(7), false, 'older format');
      resolve();
    }));
  } finally {
    setImmediate(() => rmSync(dir, { recursive: true, force: true }));
  }
});

test('a failed filter rebuild leaves lookups exact and keeps no list of added keys', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bloom-fail-'));
  try {
    const index = new BloomIndex(join(dir, 'f.json'), 1000, 0.01, createMemoryLogger().logger);
    async function* failing(): AsyncGenerator<string> {
      yield 'k1';
      index.add('added-during-rebuild');
      throw new Error('storage went away');
    }
    await assert.rejects(index.rebuild(failing()), /storage went away/);
    assert.equal(index.isReady(), false);
    assert.equal(index.mayContain('never-added'), true, 'not ready: every lookup goes to the exact index');
    for (let i = 0; i < 100; i++) index.add(`later-${i}`);
    assert.equal((index as unknown as { pendingDuringRebuild: string[] }).pendingDuringRebuild.length, 0, 'keys added after the failure are not kept');
    // A later successful rebuild makes it ready, with the keys added meanwhile.
    async function* ok(): AsyncGenerator<string> {
      yield 'k1';
      index.add('added-during-second');
    }
    await index.rebuild(ok());
    assert.equal(index.isReady(), true);
    assert.equal(index.mayContain('added-during-second'), true);
    assert.equal(index.mayContain('k1'), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the configuration refuses a filter too large to save, naming expectedMessages', async () => {
  const { dedupConfig } = await import('../../../plugins/dedup/index.ts');
  const big = dedupConfig.safeParse({ expectedMessages: 2_000_000_000 });
  assert.equal(big.success, false);
  assert.deepEqual(big.error?.issues[0]?.path, ['expectedMessages']);
  assert.match(big.error?.issues[0]?.message ?? '', /needs 2286 MiB; at most 256 MiB/);
  assert.equal(dedupConfig.safeParse({ expectedMessages: 200_000_000 }).success, true);
  assert.equal(dedupConfig.safeParse({ expectedMessages: 200_000_000, falsePositiveRate: 0.0001 }).success, false);
});

test('a filter file saved before an unclean stop is rebuilt; after a clean stop it is loaded', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bloom-claim-'));
  const { logger } = createMemoryLogger();
  const file = join(dir, 'f.json');
  try {
    // Process 1: claims the file, adds keys, saves periodically, then "crashes" (no final save).
    const first = new BloomIndex(file, 1000, 0.01, logger);
    first.claim();
    assert.equal(first.load(5), false, 'no file yet');
    first.add('before-crash');
    (first as unknown as { ready: boolean }).ready = true; // as after its rebuild
    first.save(5);
    first.add('after-the-last-save'); // lost with the crash: the file lacks it
    // Process 2: same message count (deletions balanced arrivals) — the file must not be trusted.
    const second = new BloomIndex(file, 1000, 0.01, logger);
    second.claim();
    assert.equal(second.load(5), false, 'the previous process did not stop cleanly');
    (second as unknown as { ready: boolean }).ready = true;
    second.save(5, { final: true }); // a clean stop
    const third = new BloomIndex(file, 1000, 0.01, logger);
    third.claim();
    assert.equal(third.load(5), true, 'saved at a clean stop: loaded');
    assert.ok(existsSync(`${file}.in-use`), 'in use again until the next clean stop');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
