// The source side of `postern migrate`: the embedded archive is opened so that nothing else can hold it
// (a running server's handle makes it fail with CONFLICT, and while it is open a server cannot open it),
// nothing is written to it (writes refused, the write ledger untouched), and its identity and last
// commit sequence tell a resumed migration whether it changed.
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPosternError } from '../../../core/errors.ts';
import { openSource } from '../../../core/migrate/source.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';

let dataDir = '';
const put = (key: string, value: string) => ({ type: 'put' as const, key, value: Buffer.from(value) });

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'postern-migrate-source-'));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

async function serverWrites(ops: Array<ReturnType<typeof put>>): Promise<void> {
  const server = new RocksEngine(join(dataDir, 'archive'));
  await server.open();
  await server.write(ops, { sync: true });
  await server.close();
}

test('a data directory without an archive is NOT_FOUND (and none is created)', async () => {
  await assert.rejects(openSource(dataDir), (err) => isPosternError(err, 'NOT_FOUND'));
  assert.throws(() => readFileSync(join(dataDir, 'archive', 'CURRENT')));
});

test('an archive a server holds is refused with CONFLICT; while migrate holds it, a server cannot open it', async () => {
  await serverWrites([put('u\u0000alice', '{}')]);
  const server = new RocksEngine(join(dataDir, 'archive'));
  await server.open();
  await assert.rejects(openSource(dataDir), (err) => isPosternError(err, 'CONFLICT') && /is in use/.test((err as Error).message));
  await server.close();

  const source = await openSource(dataDir);
  try {
    await assert.rejects(new RocksEngine(join(dataDir, 'archive')).open(), /lock/i);
  } finally {
    await source.close();
  }
});

test('nothing is written: writes are refused and the ledger stays as the server left it', async () => {
  await serverWrites([put('u\u0000alice', '{}')]);
  const ledger = join(dataDir, 'archive.ledger');
  const before = readFileSync(ledger);
  const source = await openSource(dataDir);
  try {
    await assert.rejects(source.engine.write([put('u\u0000bob', '{}')], { sync: true }), /read-only/);
    const keys: string[] = [];
    for await (const [k] of source.engine.entries({})) keys.push(k);
    assert.deepEqual(keys, ['u\u0000alice']);
  } finally {
    await source.close();
  }
  assert.ok(readFileSync(ledger).equals(before));
});

test('identity is stable and the sequence moves with each commit of a server', async () => {
  await serverWrites([put('u\u0000alice', '{}')]);
  const a = await openSource(dataDir);
  await a.close();
  await serverWrites([put('u\u0000bob', '{}')]);
  const b = await openSource(dataDir);
  await b.close();
  assert.match(a.id, /^[0-9a-f-]{36}$/);
  assert.equal(a.id, b.id);
  assert.ok(b.sequence > a.sequence, `${b.sequence} after ${a.sequence}`);
});
