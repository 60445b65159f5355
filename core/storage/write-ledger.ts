// The write ledger: an independent witness of how far a database's synced writes got. The engine puts
// a sequence number into every synced batch; this file, beside the database, records the highest
// sequence known to be durable (written about once a second, fsync'd, replaced by rename). At open, a
// database whose own sequence is behind its ledger has lost acknowledged writes (a torn write-ahead
// log, a restored older copy, a file system that lied): the loss is recorded in the database itself so
// `verify` keeps reporting it. Trusts nothing in the file (unreadable = unknown); hands on numbers.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export interface LedgerState {
  /** Highest synced sequence known durable, or null when the ledger is missing or unreadable. */
  seq: number | null;
}

export interface WriteLoss {
  detectedAt: string;
  /** Synced batches the ledger saw durable that the database no longer holds. */
  batches: number;
  ledgerSeq: number;
  databaseSeq: number;
}

export function readLedger(file: string): LedgerState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { seq: null };
  }
  const m = /^postern-ledger 1 (\d{1,15})\n$/.exec(text);
  return { seq: m ? Number(m[1]) : null };
}

/** Durably replace the ledger with `seq` (write, fsync, rename). */
export function writeLedger(file: string, seq: number): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `postern-ledger 1 ${seq}\n`, { mode: 0o600 });
  const fd = openSync(tmp, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** Sequence stored in the database (8 bytes, big-endian), or 0 when absent. */
export function decodeSeq(value: Buffer | null): number {
  return value && value.length === 8 ? Number(value.readBigUInt64BE(0)) : 0;
}

export function encodeSeq(seq: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(seq));
  return b;
}
