// The chained audit log on the real embedded store: numbering, hash links, group commit, reopening, and
// verify() naming the first damaged record when records are edited, deleted, swapped, forged or
// truncated directly in the KV engine (below the storage interface, as an attacker with disk access).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { KvArchiveStore } from '../../../core/storage/kv-archive.ts';
import { keys } from '../../../core/storage/kv-keys.ts';
import { ChainedAuditLog } from '../../../core/audit/log.ts';
import { GENESIS, canonicalJson, recordHash } from '../../../core/audit/canonical.ts';
import type { AuditEvent, AuditRecord } from '../../../core/audit/types.ts';

interface Fixture {
  engine: RocksEngine;
  store: KvArchiveStore;
  log: ChainedAuditLog;
  batches: number[];
  reopen(): Promise<ChainedAuditLog>;
  done(): Promise<void>;
}

async function fixture(now?: () => Date): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-audit-'));
  const f = { batches: [] as number[] } as unknown as Fixture;
  const open = async (): Promise<void> => {
    f.engine = new RocksEngine(join(dir, 'archive'));
    f.store = new KvArchiveStore(f.engine);
    await f.store.open();
    f.log = new ChainedAuditLog(f.store.audit(), { onAppend: (n) => f.batches.push(n), ...(now ? { now } : {}) });
    await f.log.open();
  };
  await open();
  f.reopen = async () => {
    await f.log.close();
    await f.store.close();
    await open();
    return f.log;
  };
  f.done = async () => {
    await f.log.close();
    await f.store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return f;
}

const event = (n: number, extra: Partial<AuditEvent> = {}): AuditEvent => ({
  category: 'admin', action: 'user.update', actor: 'admin-token', target: `user-${n}`, outcome: 'success', details: { n }, ...extra,
});

async function all(log: ChainedAuditLog): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of log.list()) out.push(r);
  return out;
}

async function withLog(fn: (f: Fixture) => Promise<void>, records = 5): Promise<void> {
  const f = await fixture();
  try {
    for (let i = 1; i <= records; i++) await f.log.record(event(i));
    await fn(f);
  } finally {
    await f.done();
  }
}

const raw = async (f: Fixture, seq: number): Promise<Buffer> => {
  const v = await f.engine.get(keys.audit(seq));
  assert.ok(v, `record ${seq} is stored`);
  return v;
};
const put = (f: Fixture, seq: number, value: Buffer): Promise<void> => f.engine.write([{ type: 'put', key: keys.audit(seq), value }], { sync: true });
const del = (f: Fixture, seq: number): Promise<void> => f.engine.write([{ type: 'del', key: keys.audit(seq) }], { sync: true });

test('records are numbered from 1, chained by hash, and verify on an intact log', () => withLog(async (f) => {
  const records = await all(f.log);
  assert.deepEqual(records.map((r) => r.seq), [1, 2, 3, 4, 5]);
  assert.equal(records[0]?.prev, GENESIS);
  for (const [i, r] of records.entries()) {
    assert.equal(r.hash, recordHash(r));
    if (i > 0) assert.equal(r.prev, records[i - 1]?.hash);
  }
  assert.deepEqual(records[2]?.details, { n: 3 });
  assert.deepEqual(await f.log.verify(), { ok: true, records: 5, problem: null });
}));

test('the stored bytes are the canonical form: key order of the event does not change the hash', () => withLog(async (f) => {
  const a = await f.log.record({ outcome: 'success', target: 't', actor: 'a', action: 'x.y', category: 'admin', details: { b: 1, a: [2, { d: 1, c: 2 }] } });
  const stored = (await raw(f, a.seq)).toString();
  assert.equal(stored, canonicalJson(a));
  assert.ok(stored.includes('"details":{"a":[2,{"c":2,"d":1}],"b":1}'));
}, 0));

test('concurrent record() calls share synced appends and get consecutive seqs in one chain', () => withLog(async (f) => {
  const made = await Promise.all(Array.from({ length: 300 }, (_, i) => f.log.record(event(i))));
  assert.deepEqual(made.map((r) => r.seq).sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i + 1));
  assert.equal(f.batches.reduce((a, b) => a + b, 0), 300);
  assert.ok(f.batches.length < 300, `${f.batches.length} appends for 300 records`);
  assert.deepEqual(await f.log.verify(), { ok: true, records: 300, problem: null });
}, 0));

test('after a restart the chain goes on from the last record', () => withLog(async (f) => {
  const before = await all(f.log);
  const log = await f.reopen();
  const next = await log.record(event(6));
  assert.equal(next.seq, 6);
  assert.equal(next.prev, before[4]?.hash);
  assert.equal((await log.verify()).ok, true);
}));

test('verify names a record whose bytes were edited (hash-mismatch)', () => withLog(async (f) => {
  const text = (await raw(f, 3)).toString().replace('user-3', 'user-X');
  await put(f, 3, Buffer.from(text));
  const r = await f.log.verify();
  assert.equal(r.ok, false);
  assert.equal(r.records, 2);
  assert.deepEqual([r.problem?.seq, r.problem?.kind], [3, 'hash-mismatch']);
}));

test('verify names a deleted record (missing)', () => withLog(async (f) => {
  await del(f, 2);
  const r = await f.log.verify();
  assert.deepEqual([r.ok, r.problem?.seq, r.problem?.kind], [false, 2, 'missing']);
  assert.match(r.problem?.detail ?? '', /next stored record is 3/);
}));

test('verify names two swapped records (reordered)', () => withLog(async (f) => {
  const [a, b] = [await raw(f, 2), await raw(f, 4)];
  await put(f, 2, b);
  await put(f, 4, a);
  const r = await f.log.verify();
  assert.deepEqual([r.ok, r.problem?.seq, r.problem?.kind], [false, 2, 'reordered']);
  assert.match(r.problem?.detail ?? '', /Position 2 holds record 4/);
}));

test('verify names the record after a forged one whose hash was recomputed (broken-link)', () => withLog(async (f) => {
  const forged = JSON.parse((await raw(f, 3)).toString()) as AuditRecord;
  forged.actor = 'someone-else';
  forged.hash = recordHash(forged);
  await put(f, 3, Buffer.from(canonicalJson(forged)));
  const r = await f.log.verify();
  assert.deepEqual([r.ok, r.problem?.seq, r.problem?.kind], [false, 4, 'broken-link']);
}));

test('verify names records cut from the end of the log (missing, from the head marker)', () => withLog(async (f) => {
  await del(f, 5);
  await del(f, 4);
  const r = await f.log.verify();
  assert.deepEqual([r.ok, r.problem?.seq, r.problem?.kind], [false, 4, 'missing']);
  // Even after a restart (no memory of what was written), the head marker still says 5.
  const log = await f.reopen();
  assert.deepEqual((await log.verify()).problem?.seq, 4);
  // New records do not fill the gap: they follow the head, so the gap stays visible.
  assert.equal((await log.record(event(9))).seq, 6);
  assert.deepEqual((await log.verify()).problem?.kind, 'missing');
}));

test('verify names a record whose bytes are not a record (unreadable)', () => withLog(async (f) => {
  await put(f, 1, Buffer.from('{not json'));
  assert.deepEqual((await f.log.verify()).problem, { seq: 1, kind: 'unreadable', detail: 'Record 1 cannot be read: the stored bytes are not valid JSON' });
  await put(f, 1, Buffer.from('{"seq":1}'));
  assert.equal((await f.log.verify()).problem?.kind, 'unreadable');

}));

test('list filters by seq, time and limit; a bad time is refused', async () => {
  let t = Date.parse('2026-01-01T00:00:00Z');
  const f = await fixture(() => new Date(t));
  try {
    await f.log.record(event(1));
    t = Date.parse('2026-02-01T00:00:00Z');
    await f.log.record(event(2));
    await f.log.record(event(3));
    const since = [];
    for await (const r of f.log.list({ since: '2026-01-15' })) since.push(r.seq);
    assert.deepEqual(since, [2, 3]);
    const from = [];
    for await (const r of f.log.list({ fromSeq: 2, limit: 1 })) from.push(r.seq);
    assert.deepEqual(from, [2]);
    await assert.rejects(async () => {
      for await (const _ of f.log.list({ since: 'yesterday-ish' })) assert.fail('no records for a bad time');
    }, { code: 'INVALID_INPUT' });
  } finally {
    await f.done();
  }
});

test('bad events are refused with INVALID_INPUT and nothing is written', () => withLog(async (f) => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 12; i++) deep = { deep };
  const bad: Array<[string, unknown]> = [
    ['category', event(1, { category: 'other' as AuditEvent['category'] })],
    ['outcome', event(1, { outcome: 'maybe' as AuditEvent['outcome'] })],
    ['empty action', event(1, { action: '' })],
    ['action with spaces', event(1, { action: 'drop table' })],
    ['empty actor', event(1, { actor: '' })],
    ['actor not a string', event(1, { actor: 42 as unknown as string })],
    ['long target', event(1, { target: 'x'.repeat(2000) })],
    ['details array', event(1, { details: [1] as unknown as Record<string, unknown> })],
    ['details function', event(1, { details: { f: () => 1 } })],
    ['details bigint', event(1, { details: { n: 1n } })],
    ['details NaN', event(1, { details: { n: Number.NaN } })],
    ['details Date', event(1, { details: { d: new Date() } })],
    ['details circular', event(1, { details: circular })],
    ['details too deep', event(1, { details: deep })],
    ['details too large', event(1, { details: { s: 'x'.repeat(20000) } })],
    ['not an object', null],
  ];
  for (const [what, e] of bad) await assert.rejects(f.log.record(e as AuditEvent), { code: 'INVALID_INPUT' }, what);
  assert.equal((await f.log.verify()).records, 0);
}, 0));

test('record before open and after close is refused', async () => {
  const f = await fixture();
  try {
    const unopened = new ChainedAuditLog(f.store.audit());
    await assert.rejects(unopened.record(event(1)), { code: 'STORAGE_CLOSED' });
    await f.log.record(event(1));
    await f.log.close();
    await assert.rejects(f.log.record(event(2)), { code: 'STORAGE_CLOSED' });
  } finally {
    await f.done();
  }
});

test('verify while records are being written sees a consistent prefix of the chain', () => withLog(async (f) => {
  const writing = Promise.all(Array.from({ length: 500 }, (_, i) => f.log.record(event(i))));
  const during = await Promise.all([f.log.verify(), f.log.verify()]);
  await writing;
  for (const r of during) assert.deepEqual([r.ok, r.problem], [true, null]);
  assert.deepEqual(await f.log.verify(), { ok: true, records: 505, problem: null });
}));

test('verify reports a record whose content cannot even be hashed (unreadable), naming its seq', () => withLog(async (f) => {
  const stored = JSON.parse((await raw(f, 2)).toString()) as AuditRecord;
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 20; i++) deep = { deep };
  await put(f, 2, Buffer.from(JSON.stringify({ ...stored, details: deep })));
  const r = await f.log.verify();
  assert.deepEqual([r.ok, r.records, r.problem?.seq, r.problem?.kind], [false, 1, 2, 'unreadable']);
  assert.match(r.problem?.detail ?? '', /cannot be hashed/);
}));
