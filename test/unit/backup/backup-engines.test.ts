// Backup and restore at the engine level: what the snapshot copies (every archive key, intake records
// with inline data and spool files) and what it leaves behind (in-flight marks, records whose spool file
// is gone because the entry was archived meanwhile, the engines' own bookkeeping), and that a restore
// gives back exactly those keys and files; a second backup reuses the first one's chunks and segments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackup } from '../../../core/backup/create.ts';
import { restoreBackup } from '../../../core/backup/restore.ts';
import { verifyBackup } from '../../../core/backup/verify.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import type { KvEngine } from '../../../core/storage/kv.ts';

async function dump(engine: KvEngine): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [k, v] of engine.entries({})) out.set(k, v.toString('base64'));
  return out;
}

test('a snapshot restores every archive key and the intake (inline and spooled), without in-flight marks or archived entries', async () => {
  const root = mkdtempSync(join(tmpdir(), 'postern-backup-unit-'));
  try {
    const data = join(root, 'data');
    const archive = new RocksEngine(join(data, 'archive'));
    const intake = new RocksEngine(join(data, 'intake'));
    await archive.open();
    await intake.open();
    const spool = join(data, 'intake', 'spool');
    mkdirSync(spool, { recursive: true });
    const sha = 'a'.repeat(64);
    const archiveOps = [
      { type: 'put' as const, key: `b\u0000${sha}`, value: Buffer.from('{"size":4,"chunks":2,"refs":1}') },
      { type: 'put' as const, key: `c\u0000${sha}\u0000000000`, value: Buffer.from('ab') },
      { type: 'put' as const, key: `c\u0000${sha}\u0000000001`, value: Buffer.from('cd') },
      ...Array.from({ length: 2000 }, (_, i) => ({ type: 'put' as const, key: `m\u0000msg${String(i).padStart(5, '0')}`, value: Buffer.from(`{"n":${i}}`) })),
      { type: 'put' as const, key: 'e\u0000alice\u0000Inbox\u000000000001', value: Buffer.from('{}') },
      { type: 'put' as const, key: 'u\u0000😀', value: Buffer.from('{}') },
    ];
    await archive.write(archiveOps, { sync: true });
    const big = Buffer.alloc(300_000, 0x41);
    writeFileSync(join(spool, 'big1.eml'), big);
    await intake.write([
      { type: 'put', key: 'r\u0000small1', value: Buffer.from('{"id":"small1","storage":"inline"}') },
      { type: 'put', key: 'd\u0000small1', value: Buffer.from('Subject: s\r\n\r\nx\r\n') },
      { type: 'put', key: 'r\u0000big1', value: Buffer.from('{"id":"big1","storage":"file"}') },
      { type: 'put', key: 'r\u0000gone1', value: Buffer.from('{"id":"gone1","storage":"file"}') },
      { type: 'put', key: 'p\u0000small1', value: Buffer.alloc(0) },
    ], { sync: true });
    const source = { archive, intake, spoolPath: (id: string) => join(spool, `${id}.eml`), dataDir: data, encryptionKeyFile: null, version: 'test' };
    const repo = join(root, 'repo');
    const first = await createBackup(source, repo);
    assert.equal(first.counts.intakeEntries, 2, 'the record whose spool file is gone (archived meanwhile) is left out');
    assert.equal(first.counts.chunksCopied, 2);
    const second = await createBackup(source, repo);
    assert.equal(second.parent, first.id);
    assert.equal(second.counts.chunksCopied, 0);
    assert.equal(second.counts.chunksReused, 2);
    const firstSegments = first.files.filter((f) => f.path.startsWith('segments/')).length;
    assert.ok(firstSegments > 1, `the metadata is cut into several segments (${firstSegments})`);
    assert.equal(readdirSync(join(repo, 'segments')).length, firstSegments, 'an unchanged archive reuses every metadata segment');
    assert.deepEqual(second.files.filter((f) => f.path.startsWith('segments/')), first.files.filter((f) => f.path.startsWith('segments/')));
    assert.ok((await verifyBackup(repo)).ok);

    const wantArchive = await dump(archive);
    await archive.close();
    await intake.close();
    const restored = join(root, 'restored');
    await restoreBackup(repo, { dataDir: restored });
    const ra = new RocksEngine(join(restored, 'archive'));
    const ri = new RocksEngine(join(restored, 'intake'));
    await ra.open();
    await ri.open();
    try {
      assert.deepEqual(await dump(ra), wantArchive);
      assert.deepEqual([...(await dump(ri)).keys()].sort(), ['d\u0000small1', 'r\u0000big1', 'r\u0000small1']);
      assert.deepEqual(readdirSync(join(restored, 'intake', 'spool')), ['big1.eml']);
      assert.ok(readFileSync(join(restored, 'intake', 'spool', 'big1.eml')).equals(big));
    } finally {
      await ra.close();
      await ri.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
