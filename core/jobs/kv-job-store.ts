// The jobs role of the embedded archive: job records, per-job state and the results history as JSON
// values in the same ordered KvEngine (keys in core/storage/KEYS.md). Every write is synced, so a
// checkpoint saved after a capture commit survives a crash. Trusts its callers' records (the
// scheduler validates them); hands back parsed JSON.
import type { KvEngine } from '../storage/kv.ts';
import { keys, prefixEnd } from '../storage/kv-keys.ts';
import type { JobStore } from '../storage/types.ts';
import type { JobRecord, JobResult } from './types.ts';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const parse = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;
const MAX_RESULTS = 10_000;
/** The history keeps this many newest results; older ones are dropped (checked every PRUNE_EVERY adds). */
export const HISTORY_LIMIT = 50_000;
const PRUNE_EVERY = 100;

export class KvJobStore implements JobStore {
  private adds = 0;

  constructor(private readonly kv: KvEngine, private readonly historyLimit = HISTORY_LIMIT) {}

  async getJob(name: string): Promise<JobRecord | null> {
    const raw = await this.kv.get(keys.job(name));
    return raw ? parse<JobRecord>(raw) : null;
  }

  async listJobs(): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    const prefix = keys.jobPrefix();
    for await (const [, v] of this.kv.entries({ gte: prefix, lt: prefixEnd(prefix) })) out.push(parse<JobRecord>(v));
    return out;
  }

  putJob(record: JobRecord): Promise<void> {
    return this.kv.write([{ type: 'put', key: keys.job(record.name), value: json(record) }], { sync: true });
  }

  deleteJob(name: string): Promise<void> {
    return this.kv.write([{ type: 'del', key: keys.job(name) }, { type: 'del', key: keys.jobState(name) }], { sync: true });
  }

  async getState(name: string): Promise<unknown> {
    const raw = await this.kv.get(keys.jobState(name));
    return raw ? parse<unknown>(raw) : null;
  }

  putState(name: string, state: unknown): Promise<void> {
    return this.kv.write([{ type: 'put', key: keys.jobState(name), value: json(state) }], { sync: true });
  }

  async addResult(result: JobResult): Promise<void> {
    await this.kv.write([{ type: 'put', key: keys.jobResult(result.startedAt, result.id), value: json(result) }], { sync: true });
    if (++this.adds % PRUNE_EVERY === 0) await this.prune();
  }

  /** Drop the oldest results beyond the history limit. */
  async prune(): Promise<number> {
    const prefix = keys.jobResultPrefix();
    let total = 0;
    for await (const _ of this.kv.entries({ gte: prefix, lt: prefixEnd(prefix) })) total++;
    const excess = total - this.historyLimit;
    if (excess <= 0) return 0;
    const ops: Array<{ type: 'del'; key: string }> = [];
    for await (const [k] of this.kv.entries({ gte: prefix, lt: prefixEnd(prefix), limit: excess })) ops.push({ type: 'del', key: k });
    await this.kv.write(ops, { sync: true });
    return ops.length;
  }

  async listResults(query: { from?: string; to?: string; job?: string; limit?: number }): Promise<JobResult[]> {
    const prefix = keys.jobResultPrefix();
    const limit = Math.min(query.limit ?? 1000, MAX_RESULTS);
    const out: JobResult[] = [];
    const range = {
      gte: query.from !== undefined ? prefix + query.from : prefix,
      lt: query.to !== undefined ? prefix + query.to : prefixEnd(prefix),
    };
    for await (const [, v] of this.kv.entries(range)) {
      const r = parse<JobResult>(v);
      if (query.job !== undefined && r.job !== query.job) continue;
      out.push(r);
      if (out.length >= limit) break;
    }
    return out;
  }
}
