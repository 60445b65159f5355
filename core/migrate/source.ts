// The source of `postern migrate`: the embedded archive in <dataDir>/archive. It is opened for writing,
// which takes RocksDB's LOCK file, so a server cannot run on the data directory while the migration reads
// it (and a running server makes the open fail); nothing is ever written to it (RocksEngine's
// exclusiveReader refuses writes and leaves the write ledger alone). Its identity is RocksDB's IDENTITY
// file (a random id made when the database was created) and the sequence of its last synced batch,
// which moves with every commit: a resumed migration can tell whether the source changed meanwhile.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PosternError, errorMessage } from '../errors.ts';
import { RocksEngine } from '../storage/rocksdb-engine.ts';

export interface MigrationSource {
  engine: RocksEngine;
  /** The archive directory. */
  path: string;
  /** RocksDB's database id. */
  id: string;
  /** Sequence of the last synced batch (changes whenever a server commits anything). */
  sequence: number;
  close(): Promise<void>;
}

export async function openSource(dataDir: string): Promise<MigrationSource> {
  const path = join(resolve(dataDir), 'archive');
  if (!existsSync(join(path, 'CURRENT'))) {
    throw new PosternError('NOT_FOUND', `No embedded archive in "${path}" (dataDir "${resolve(dataDir)}"): nothing to migrate`);
  }
  const engine = new RocksEngine(path, { exclusiveReader: true, compression: false });
  try {
    await engine.open();
  } catch (err) {
    if (/\block\b/i.test(`${errorMessage(err)} ${errorMessage((err as Error).cause)}`)) {
      throw new PosternError('CONFLICT', `The embedded archive "${path}" is in use (is a Postern server running on "${resolve(dataDir)}"?); stop it first: migrate reads the archive while nothing may change it`, { cause: err });
    }
    throw err;
  }
  let id: string;
  try {
    id = readFileSync(join(path, 'IDENTITY'), 'utf8').trim();
  } catch {
    id = '';
  }
  // A database without an IDENTITY file (very old RocksDB) is named by its path.
  if (!/^[\x21-\x7e]{1,200}$/.test(id)) id = `path:${path}`;
  return { engine, path, id, sequence: engine.syncedSequence(), close: () => engine.close() };
}
