import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RocksEngine, type RocksEngineOptions } from '../../../core/storage/rocksdb-engine.ts';
import type { KvRange } from '../../../core/storage/kv.ts';

let dir = '';
const engines: RocksEngine[] = [];

async function openEngine(options: RocksEngineOptions = {}, name = 'db'): Promise<RocksEngine> {
  const engine = new RocksEngine(join(dir, name), options);
  await engine.open();
  engines.push(engine);
  return engine;
}

async function keysIn(engine: RocksEngine, range: KvRange): Promise<string[]> {
  const out: string[] = [];
  for await (const [k] of engine.entries(range)) out.push(k);
  return out;
}

const put = (key: string, value: string | Buffer) => ({ type: 'put' as const, key, value: Buffer.isBuffer(value) ? value : Buffer.from(value) });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-rocks-'));
});

afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('RocksEngine', () => {
  it('puts, gets and deletes, synced and unsynced; a missing key is null', async () => {
    const db = await openEngine();
    assert.equal(await db.get('missing'), null);
    await db.write([put('a', 'one')], { sync: true });
    await db.write([put('b', Buffer.from([0, 1, 2, 255]))], { sync: false });
    assert.deepEqual(await db.get('a'), Buffer.from('one'));
    assert.deepEqual(await db.get('b'), Buffer.from([0, 1, 2, 255]));
    await db.write([put('a', 'two')], { sync: true });
    assert.deepEqual(await db.get('a'), Buffer.from('two'));
    await db.write([{ type: 'del', key: 'a' }], { sync: true });
    assert.equal(await db.get('a'), null);
    await db.write([{ type: 'del', key: 'b' }], { sync: false });
    assert.equal(await db.get('b'), null);
    await db.write([], { sync: true });
  });

  it('keeps an empty value distinct from a missing key', async () => {
    const db = await openEngine();
    await db.write([put('empty', Buffer.alloc(0))], { sync: true });
    const v = await db.get('empty');
    assert.ok(v !== null, 'an empty value exists');
    assert.equal(v.length, 0);
  });

  it('keeps data across close and reopen', async () => {
    const db = await openEngine();
    await db.write([put('k', 'v')], { sync: true });
    await db.close();
    const again = await openEngine();
    assert.deepEqual(await again.get('k'), Buffer.from('v'));
  });

  it('iterates in byte (UTF-8) order with gte/gt/lt/lte/limit/reverse', async () => {
    const db = await openEngine();
    // JavaScript string order would put U+FFFF after the emoji (UTF-16 surrogates); UTF-8 bytes do not.
    const keys = ['b', 'a', 'a\u0000x', 'aa', 'B', '\u00e9', '\uffff', '😀', 'a\u0001', 'ab'];
    await db.write(keys.map((k, i) => put(k, String(i))), { sync: true });
    const byteOrder = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    assert.deepEqual(byteOrder, ['B', 'a', 'a\u0000x', 'a\u0001', 'aa', 'ab', 'b', '\u00e9', '\uffff', '😀']);
    assert.deepEqual(await keysIn(db, {}), byteOrder);
    assert.deepEqual(await keysIn(db, { gte: 'a', lt: 'b' }), ['a', 'a\u0000x', 'a\u0001', 'aa', 'ab']);
    assert.deepEqual(await keysIn(db, { gt: 'a', lte: 'aa' }), ['a\u0000x', 'a\u0001', 'aa']);
    assert.deepEqual(await keysIn(db, { gte: 'a\u0000', lt: 'a\u0001' }), ['a\u0000x']);
    assert.deepEqual(await keysIn(db, { gte: 'a', limit: 3 }), ['a', 'a\u0000x', 'a\u0001']);
    assert.deepEqual(await keysIn(db, { gte: 'a', lt: 'b', reverse: true }), ['ab', 'aa', 'a\u0001', 'a\u0000x', 'a']);
    assert.deepEqual(await keysIn(db, { gte: 'a', lt: 'b', reverse: true, limit: 2 }), ['ab', 'aa']);
    assert.deepEqual(await keysIn(db, { gte: '\u00e9' }), ['\u00e9', '\uffff', '😀']);
    assert.deepEqual(await keysIn(db, { gt: 'zzz', lt: '\uffff' }), ['\u00e9']);
    assert.deepEqual(await keysIn(db, { gte: 'c', lt: 'd' }), []);
    const values: string[] = [];
    for await (const [, v] of db.entries({ gte: 'aa', lte: 'ab' })) values.push(v.toString());
    assert.deepEqual(values, [String(keys.indexOf('aa')), String(keys.indexOf('ab'))]);
  });

  it('stops early when the consumer breaks out of the iteration', async () => {
    const db = await openEngine();
    await db.write(['k1', 'k2', 'k3'].map((k) => put(k, k)), { sync: true });
    for await (const [k] of db.entries({})) {
      assert.equal(k, 'k1');
      break;
    }
    // The iterator was ended: close would fail or hang otherwise.
    await db.close();
  });

  it('applies a batch atomically: all ops, or none when one op is invalid', async () => {
    const db = await openEngine();
    await db.write([put('keep', 'x'), put('gone', 'y')], { sync: true });
    await db.write([put('p1', '1'), put('p2', '2'), { type: 'del', key: 'gone' }], { sync: true });
    assert.deepEqual(await keysIn(db, {}), ['keep', 'p1', 'p2']);
    for (const sync of [true, false]) {
      await assert.rejects(
        db.write([put('q1', '1'), { type: 'del', key: 'keep' }, put('', 'empty key is invalid')], { sync }),
        { name: 'PosternError', code: 'STORAGE_IO' },
      );
      assert.equal(await db.get('q1'), null);
      assert.deepEqual(await db.get('keep'), Buffer.from('x'));
    }
    // The engine still works after a failed batch.
    await db.write([put('q2', '2')], { sync: true });
    assert.deepEqual(await db.get('q2'), Buffer.from('2'));
  });

  it('group-commits 100 concurrent synced writes: all resolve, all readable, fewer batches than writes', async () => {
    const groups: number[] = [];
    const db = await openEngine({ onGroupCommit: (callers, seconds) => {
      assert.ok(seconds >= 0);
      groups.push(callers);
    } });
    await Promise.all(Array.from({ length: 100 }, (_, i) => db.write([put(`w${String(i).padStart(3, '0')}`, `v${i}`), put(`x${i}`, 'x')], { sync: true })));
    assert.equal(groups.reduce((a, b) => a + b, 0), 100);
    assert.ok(groups.length < 100, `expected fewer than 100 batches, got ${groups.length}`);
    for (let i = 0; i < 100; i++) assert.deepEqual(await db.get(`w${String(i).padStart(3, '0')}`), Buffer.from(`v${i}`));
    assert.equal((await keysIn(db, { gte: 'w', lt: 'x' })).length, 100);
  });

  it('an unsynced write made while a synced group is written joins the next group, in order', async () => {
    const groups: number[] = [];
    const db = await openEngine({ onGroupCommit: (callers) => groups.push(callers) });
    const first = db.write([put('a', '1'), put('b', '1')], { sync: true });
    // The first group is being written now: these wait for the next one, in the order made.
    const riders = [
      db.write([{ type: 'del', key: 'a' }], { sync: false }),
      db.write([put('b', '2'), put('c', '2')], { sync: false }),
      db.write([put('d', '3')], { sync: true }),
    ];
    await first;
    await Promise.all(riders);
    assert.equal(await db.get('a'), null);
    assert.deepEqual(await db.get('b'), Buffer.from('2'));
    assert.deepEqual(await db.get('c'), Buffer.from('2'));
    assert.deepEqual(await db.get('d'), Buffer.from('3'));
    assert.deepEqual(groups, [1, 1], 'two synced batches, each counting only its synced caller');
    // With nothing being written, an unsynced write goes at once, alone.
    await db.write([put('e', '4')], { sync: false });
    assert.deepEqual(groups, [1, 1]);
    await db.close();
    const again = await openEngine();
    assert.deepEqual(await keysIn(again, { gte: 'a', lt: 'e' }), ['b', 'c', 'd']);
  });

  it('bounds a group by maxGroupOps', async () => {
    const groups: number[] = [];
    const db = await openEngine({ maxGroupOps: 10, onGroupCommit: (callers) => groups.push(callers) });
    await Promise.all(Array.from({ length: 60 }, (_, i) => db.write([put(`k${i}`, 'v')], { sync: true })));
    assert.equal(groups.reduce((a, b) => a + b, 0), 60);
    assert.ok(groups.every((n) => n >= 1 && n <= 10), `groups ${JSON.stringify(groups)}`);
    assert.equal((await keysIn(db, { gte: 'k', lt: 'l' })).length, 60);
  });

  it('fails only the callers of a group whose batch fails; later writes go on', async () => {
    const db = await openEngine();
    const results = await Promise.allSettled([
      db.write([put('first', '1')], { sync: true }),
      db.write([put('bad', 'x'), put('', 'invalid')], { sync: true }),
    ]);
    assert.equal(results[0]?.status, 'fulfilled');
    assert.equal(results[1]?.status, 'rejected');
    assert.equal(await db.get('bad'), null);
    await db.write([put('later', '1')], { sync: true });
    assert.deepEqual(await db.get('later'), Buffer.from('1'));
  });

  it('waits for queued synced writes before closing', async () => {
    const db = await openEngine();
    const writes = Array.from({ length: 20 }, (_, i) => db.write([put(`c${i}`, 'v')], { sync: true }));
    await db.close();
    await Promise.all(writes);
    const again = await openEngine();
    assert.equal((await keysIn(again, { gte: 'c', lt: 'd' })).length, 20);
  });

  it('rejects (never throws) with STORAGE_CLOSED when not open, and works again after reopening', { timeout: 20000 }, async () => {
    const db = await openEngine();
    await db.close();
    await assert.rejects(() => db.get('a'), { name: 'PosternError', code: 'STORAGE_CLOSED' });
    await assert.rejects(() => db.write([put('a', '1')], { sync: false }), { name: 'PosternError', code: 'STORAGE_CLOSED' });
    await assert.rejects(() => db.write([put('a', '1')], { sync: true }), { name: 'PosternError', code: 'STORAGE_CLOSED' });
    await assert.rejects(async () => {
      for await (const _ of db.entries({})) break;
    }, { name: 'PosternError', code: 'STORAGE_CLOSED' });
    await db.open();
    // A synced write refused while closed must not leave the group-commit writer stuck.
    await db.write([put('a', '1')], { sync: true });
    assert.deepEqual(await db.get('a'), Buffer.from('1'));
  });
});
