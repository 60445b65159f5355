// The audit role of the embedded archive: records under `au\0<seq:12 hex>` (byte order = seq order) and a
// head marker `ah\0head` written in the same synced batch (KEYS.md). Append-only by construction: the
// only write is append, which refuses any seq that exists or does not follow the last one, so no caller
// can overwrite or remove a record through this interface. Trusts the audit log to encode records;
// hands back the stored bytes untouched (verification happens in core/audit/log.ts).
import { PosternError } from '../errors.ts';
import { isShared, type KvEngine } from '../storage/kv.ts';
import { keys, prefixEnd } from '../storage/kv-keys.ts';
import type { AuditStore, AuditStoreRecord } from '../storage/types.ts';

const MAX_SEQ = 0xffff_ffff_ffff;
const MAX_BATCH = 10_000;

export class KvAuditStore implements AuditStore {
  /** The next seq to append, once known (forgotten when another node of a shared archive appended). */
  private next: number | null = null;
  private chain: Promise<void> = Promise.resolve();

  /** An append runs as one step of a shared engine's cluster-wide writer (else as is). */
  private readonly step: <T>(fn: () => Promise<T>) => Promise<T>;

  constructor(private readonly kv: KvEngine) {
    this.step = isShared(kv) ? (fn) => kv.shared.serialize(fn) : (fn) => fn();
  }

  /** Another node appended: the next seq is read again before the next append. */
  forget(): void {
    this.next = null;
  }

  append(records: AuditStoreRecord[], head: { seq: number; hash: string }): Promise<void> {
    const run = this.chain.then(() => this.step(() => this.appendNow(records, head)));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async appendNow(records: AuditStoreRecord[], head: { seq: number; hash: string }): Promise<void> {
    if (records.length === 0) return;
    if (records.length > MAX_BATCH) throw new PosternError('INVALID_INPUT', `Audit append of ${records.length} records exceeds ${MAX_BATCH}`);
    const expected = this.next ?? (await this.nextSeq());
    records.forEach((r, i) => {
      if (!Number.isSafeInteger(r.seq) || r.seq < 1 || r.seq > MAX_SEQ) throw new PosternError('INVALID_INPUT', `Audit seq "${r.seq}" is out of range`);
      if (r.seq !== expected + i) throw new PosternError('CONFLICT', `Audit record ${r.seq} does not follow the log's last record ${expected - 1 + i}`);
    });
    const last = records[records.length - 1] as AuditStoreRecord;
    if (head.seq !== last.seq || !/^[0-9a-f]{64}$/.test(head.hash)) throw new PosternError('INVALID_INPUT', `Audit head "${head.seq}" must name the last appended record ${last.seq} and a SHA-256`);
    const existing = await this.kv.getMany(records.map((r) => keys.audit(r.seq)));
    const taken = existing.findIndex((v) => v !== null);
    if (taken >= 0) throw new PosternError('CONFLICT', `Audit record ${(records[taken] as AuditStoreRecord).seq} exists; records are never overwritten`);
    try {
      await this.kv.write([
        ...records.map((r) => ({ type: 'put' as const, key: keys.audit(r.seq), value: r.data })),
        { type: 'put', key: keys.auditHead(), value: Buffer.from(JSON.stringify(head)) },
      ], { sync: true });
    } catch (err) {
      this.next = null;
      throw err;
    }
    this.next = last.seq + 1;
  }

  /** One past the larger of the head marker and the last stored key (a truncated tail is not reused). */
  private async nextSeq(): Promise<number> {
    const head = await this.head();
    let lastKey = 0;
    for await (const r of this.read({ reverse: true, limit: 1 })) lastKey = r.seq;
    return Math.max(head?.seq ?? 0, lastKey) + 1;
  }

  async *read(range: { fromSeq?: number; limit?: number; reverse?: boolean } = {}): AsyncIterable<AuditStoreRecord> {
    const prefix = keys.auditPrefix();
    const from = Math.max(1, Math.min(MAX_SEQ, Math.floor(range.fromSeq ?? 1)));
    const bounds = range.reverse ? { gte: prefix, lt: prefixEnd(prefix), reverse: true } : { gte: keys.audit(from), lt: prefixEnd(prefix) };
    for await (const [k, v] of this.kv.entries({ ...bounds, ...(range.limit !== undefined ? { limit: range.limit } : {}) })) {
      yield { seq: parseInt(k.slice(prefix.length), 16), data: v };
    }
  }

  async head(): Promise<{ seq: number; hash: string } | null> {
    const raw = await this.kv.get(keys.auditHead());
    if (!raw) return null;
    try {
      const h = JSON.parse(raw.toString('utf8')) as { seq?: unknown; hash?: unknown };
      if (typeof h.seq === 'number' && typeof h.hash === 'string') return { seq: h.seq, hash: h.hash };
    } catch {
      // An unreadable head marker is reported by verify (head vs. last record); appends go on from the keys.
    }
    return null;
  }
}
