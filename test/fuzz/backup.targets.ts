// Fuzz targets for reading a backup repository (core/backup), which restore and `backup verify` take
// from disk as untrusted input:
//   backup.records  any bytes as a record file: read to the end or fail with BACKUP_CORRUPT, never
//                   another error, never an allocation beyond the value bound.
//   backup.verify   a real repository (built once in the worker) with one of its files replaced by the
//                   input: verification never throws; a snapshot whose record, index or pack file was
//                   changed is reported damaged, and an unchanged repository verifies.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackup } from '../../core/backup/create.ts';
import { readRecords } from '../../core/backup/record-file.ts';
import { verifyBackup } from '../../core/backup/verify.ts';
import { isPosternError } from '../../core/errors.ts';
import { RocksEngine } from '../../core/storage/rocksdb-engine.ts';
import { check, type FuzzGroup } from './target.ts';

const work = mkdtempSync(join(tmpdir(), 'postern-fuzz-backup-'));
let repo = '';
/** Repository files by relative path, as written. */
const originals = new Map<string, Buffer>();
let fileNames: string[] = [];

async function buildRepository(): Promise<void> {
  if (repo !== '') return;
  const archive = new RocksEngine(join(work, 'data', 'archive'));
  const intake = new RocksEngine(join(work, 'data', 'intake'));
  await archive.open();
  await intake.open();
  const blob = (sha: string, chunks: number) => [
    { type: 'put' as const, key: `b\u0000${sha}`, value: Buffer.from(JSON.stringify({ size: chunks * 10, chunks, refs: 1 })) },
    ...Array.from({ length: chunks }, (_, n) => ({ type: 'put' as const, key: `c\u0000${sha}\u0000${n.toString(16).padStart(6, '0')}`, value: Buffer.from(`chunk ${n} of ${sha}`) })),
  ];
  await archive.write([
    ...blob('a'.repeat(64), 2), ...blob('b'.repeat(64), 1),
    { type: 'put', key: 'u\u0000alice', value: Buffer.from('{"name":"alice"}') },
    { type: 'put', key: 'm\u0000m1', value: Buffer.from('{}') },
    { type: 'put', key: 'e\u0000alice\u0000Inbox\u000000000001', value: Buffer.from('{}') },
    { type: 'put', key: 'au\u0000000000000001', value: Buffer.from('{}') },
    { type: 'put', key: 'ah\u0000head', value: Buffer.from('{"seq":1,"hash":"x"}') },
  ], { sync: true });
  await intake.write([
    { type: 'put', key: 'r\u0000i1', value: Buffer.from('{"id":"i1","storage":"inline"}') },
    { type: 'put', key: 'd\u0000i1', value: Buffer.from('Subject: hi\r\n\r\nbody\r\n') },
  ], { sync: true });
  const dir = join(work, 'repo');
  const source = { archive, intake, spoolPath: (id: string) => join(work, 'data', 'intake', 'spool', `${id}.eml`), dataDir: join(work, 'data'), encryptionKeyFile: null, version: 'fuzz' };
  await createBackup(source, dir);
  await archive.write(blob('c'.repeat(64), 1), { sync: true });
  await createBackup(source, dir);
  await archive.close();
  await intake.close();
  const walk = (rel: string): string[] => readdirSync(join(dir, rel), { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? walk(join(rel, d.name)) : [join(rel, d.name)]));
  fileNames = walk('').filter((f) => f !== 'REPOSITORY' && f !== 'lock').sort();
  for (const f of fileNames) originals.set(f, readFileSync(join(dir, f)));
  repo = dir;
}

export const group: FuzzGroup = {
  group: 'backup',
  targets: [
    {
      name: 'backup.records',
      prepare: buildRepository,
      seeds: () => fileNames.filter((f) => f.endsWith('.rec') || f.endsWith('.pack')).map((f) => originals.get(f) as Buffer),
      dictionary: ['POSTERN-RECORDS 1\n', '\u0000\u0000\u0000\u0000', '\u00ff\u00ff\u00ff\u00ff', '\u0000\u0000\u0000\u0005', 'c\u0000', 'r\u0000', 's\u0000'],
      maxLength: 8192,
      async run(input) {
        const file = join(work, 'input.rec');
        writeFileSync(file, input);
        try {
          for await (const r of readRecords(file, 64 * 1024)) check(r.value.length <= 64 * 1024, 'a value within the bound', r.value.length);
        } catch (err) {
          check(isPosternError(err, 'BACKUP_CORRUPT'), 'a damaged record file fails with BACKUP_CORRUPT', err instanceof Error ? `${err.name}: ${err.message}` : String(err));
        }
      },
    },
    {
      name: 'backup.verify',
      prepare: buildRepository,
      // The first byte picks the file the rest replaces.
      seeds: () => fileNames.map((f, i) => Buffer.concat([Buffer.from([i]), originals.get(f) as Buffer])),
      dictionary: ['\n', ' ', '0', 'packs/', '.pack', '"size": 0', '"chunks": 9', 'POSTERN-RECORDS 1\n', '\u0000'],
      maxLength: 8192,
      async run(input) {
        if (input.length === 0) return;
        const name = fileNames[(input[0] as number) % fileNames.length] as string;
        const original = originals.get(name) as Buffer;
        const replaced = input.subarray(1);
        writeFileSync(join(repo, name), replaced);
        try {
          const report = await verifyBackup(repo);
          const changed = !replaced.equals(original);
          if (!changed) check(report.ok, 'an unchanged repository verifies', report.snapshots.flatMap((s) => s.problems));
          else if (!name.endsWith('manifest.json')) check(!report.ok, `a changed "${name}" is reported damaged`);
        } catch (err) {
          // Only a manifest too broken to name its snapshot may fail the listing; verification itself reports.
          check(false, 'verification reports damage instead of throwing', err instanceof Error ? `${err.name}: ${err.message}` : String(err));
        } finally {
          writeFileSync(join(repo, name), original);
        }
      },
    },
  ],
};
