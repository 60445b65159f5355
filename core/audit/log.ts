// The tamper-evident audit log over the storage interface's audit role. record() queues an event; one
// writer task takes everything queued, numbers it (seq), chains it (prev = hash of the record before,
// hash = SHA-256 of the canonical form) and appends the batch in one synced write: concurrent callers
// share the fsync (group commit) and never wait for each other's hashing. verify() walks the chain from
// seq 1 and names the first missing, reordered, altered or unlinked record. Trusts the store to keep what
// it appended; trusts nothing it reads back. Hands on AuditRecords (list) and verification results.
import { createHash } from 'node:crypto';
import { PosternError, isPosternError } from '../errors.ts';
import type { AuditStore } from '../storage/types.ts';
import { GENESIS, decodeRecord, encodeRecord, recordHash, validEvent } from './canonical.ts';
import type { AuditEvent, AuditLog, AuditRecord, AuditVerifyResult } from './types.ts';

/** Appends tried per batch when another node of a shared archive appended first (CONFLICT). */
const MAX_APPEND_ATTEMPTS = 5;

export interface AuditLogOptions {
  /** Events waiting for the writer beyond which record() fails fast (UNAVAILABLE). */
  maxPending?: number;
  /** Records per synced append. */
  maxBatch?: number;
  /** Called after each durable append with its size and duration (metrics). */
  onAppend?: (records: number, seconds: number) => void;
  /** Called when an append fails (every record of the batch is rejected to its caller). */
  onFailure?: (records: number, err: Error) => void;
  now?: () => Date;
}

interface Pending {
  event: AuditEvent;
  resolve: (r: AuditRecord) => void;
  reject: (e: Error) => void;
}

type Problem = NonNullable<AuditVerifyResult['problem']>;

export class ChainedAuditLog implements AuditLog {
  private lastSeq = 0;
  private lastHash = GENESIS;
  private state: 'new' | 'open' | 'closed' = 'new';
  private readonly queue: Pending[] = [];
  private writing: Promise<void> | null = null;
  private readonly maxPending: number;
  private readonly maxBatch: number;
  private readonly now: () => Date;

  constructor(private readonly store: AuditStore, private readonly options: AuditLogOptions = {}) {
    this.maxPending = options.maxPending ?? 10_000;
    this.maxBatch = options.maxBatch ?? 1_000;
    this.now = options.now ?? (() => new Date());
  }

  /** Picks up the chain where the store left it: the head marker, or the last stored record. */
  async open(): Promise<void> {
    if (this.state !== 'new') return;
    await this.resume();
    this.state = 'open';
  }

  private async resume(): Promise<void> {
    const head = await this.store.head();
    let last: { seq: number; data: Buffer } | null = null;
    for await (const r of this.store.read({ reverse: true, limit: 1 })) last = r;
    if (head && head.seq >= (last?.seq ?? 0)) {
      this.lastSeq = head.seq;
      this.lastHash = head.hash;
    } else if (last) {
      const decoded = decodeRecord(last.data);
      this.lastSeq = last.seq;
      // An unreadable last record still anchors the chain (verify reports it); its bytes stand in for the hash.
      this.lastHash = typeof decoded === 'string' ? createHash('sha256').update(last.data).digest('hex') : decoded.hash;
    }
  }

  /** The seq of the last durable record (0 for an empty log). */
  get head(): { seq: number; hash: string } {
    return { seq: this.lastSeq, hash: this.lastHash };
  }

  record(event: AuditEvent): Promise<AuditRecord> {
    if (this.state !== 'open') return Promise.reject(new PosternError('STORAGE_CLOSED', 'The audit log is not open'));
    let valid: AuditEvent;
    try {
      valid = validEvent(event);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (this.queue.length >= this.maxPending) {
      return Promise.reject(new PosternError('UNAVAILABLE', `The audit log has ${this.queue.length} records waiting to be written`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ event: valid, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.writing || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.writing = this.writeBatch(batch).finally(() => {
      this.writing = null;
      this.pump();
    });
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    const started = process.hrtime.bigint();
    const at = this.now().toISOString();
    let seq = 0;
    let prev = '';
    let records: AuditRecord[] = [];
    for (let attempt = 1; ; attempt++) {
      seq = this.lastSeq;
      prev = this.lastHash;
      records = batch.map((p) => {
        seq += 1;
        const body = { ...p.event, seq, at, prev };
        prev = recordHash(body);
        return { ...body, hash: prev } as AuditRecord;
      });
      try {
        await this.store.append(records.map((r) => ({ seq: r.seq, data: encodeRecord(r) })), { seq, hash: prev });
        break;
      } catch (err) {
        // Another node of a shared archive appended first: chain on from its head and try again.
        if (isPosternError(err, 'CONFLICT') && attempt < MAX_APPEND_ATTEMPTS) {
          try {
            await this.resume();
            continue;
          } catch {
            // fall through: the batch fails with the conflict
          }
        }
        this.options.onFailure?.(batch.length, err as Error);
        for (const p of batch) p.reject(err as Error);
        return;
      }
    }
    this.lastSeq = seq;
    this.lastHash = prev;
    this.options.onAppend?.(records.length, Number(process.hrtime.bigint() - started) / 1e9);
    batch.forEach((p, i) => p.resolve(records[i] as AuditRecord));
  }

  async *list(options: { fromSeq?: number; since?: string; limit?: number } = {}): AsyncIterable<AuditRecord> {
    let since: string | null = null;
    if (options.since !== undefined) {
      const t = new Date(options.since);
      if (Number.isNaN(t.getTime())) throw new PosternError('INVALID_INPUT', `Time "${options.since}" is not an ISO date`);
      since = t.toISOString();
    }
    const limit = options.limit ?? Infinity;
    let n = 0;
    if (limit <= 0) return;
    for await (const { data } of this.store.read({ fromSeq: options.fromSeq ?? 1 })) {
      const r = decodeRecord(data);
      if (typeof r === 'string') continue;  // verify reports it; an export carries only readable records
      if (since !== null && r.at < since) continue;
      yield r;
      if (++n >= limit) return;
    }
  }

  async verify(): Promise<AuditVerifyResult> {
    // What is known to be written before the scan starts must be seen by it (appends after are not).
    const headBefore = await this.store.head();
    const known = Math.max(this.lastSeq, headBefore?.seq ?? 0);
    let expected = 1;
    let prev = GENESIS;
    const fail = (problem: Problem): AuditVerifyResult => ({ ok: false, records: expected - 1, problem });
    for await (const { seq, data } of this.store.read()) {
      if (seq !== expected) {
        return fail({ seq: expected, kind: 'missing', detail: `Record ${expected} is missing; the next stored record is ${seq}` });
      }
      const r = decodeRecord(data);
      if (typeof r === 'string') return fail({ seq, kind: 'unreadable', detail: `Record ${seq} cannot be read: ${r}` });
      if (r.seq !== seq) return fail({ seq, kind: 'reordered', detail: `Position ${seq} holds record ${r.seq}` });
      let hash: string;
      try {
        hash = recordHash(r);
      } catch (err) {
        return fail({ seq, kind: 'unreadable', detail: `Record ${seq} cannot be hashed: ${(err as Error).message}` });
      }
      if (hash !== r.hash) return fail({ seq, kind: 'hash-mismatch', detail: `Record ${seq} does not match its hash: its content was altered` });
      if (r.prev !== prev) return fail({ seq, kind: 'broken-link', detail: `Record ${seq} does not link to record ${seq - 1} (prev hash differs)` });
      if (headBefore && seq === headBefore.seq && headBefore.hash !== r.hash) {
        return fail({ seq, kind: 'hash-mismatch', detail: `Record ${seq} differs from the log's head marker` });
      }
      prev = r.hash;
      expected += 1;
    }
    const last = expected - 1;
    if (known > last) return fail({ seq: last + 1, kind: 'missing', detail: `Records ${last + 1}–${known} are missing from the end of the log` });
    return { ok: true, records: last, problem: null };
  }

  /** Writes what is queued, then refuses further records. */
  async close(): Promise<void> {
    while (this.writing || this.queue.length > 0) await (this.writing ?? Promise.resolve());
    this.state = 'closed';
  }
}
