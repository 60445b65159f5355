// KvEngine on PostgreSQL (the metadata half of storage.backend: postgres-s3), shared by every node of a
// cluster. Keys map to one table per record kind (pg-schema.ts) as bytea, whose byte order is the
// embedded engine's order, so the archive's range scans and batches mean the same thing here. A batch
// is one transaction (synchronous_commit: acknowledged only once durable on the PostgreSQL server).
// `shared.serialize` holds a transaction-scoped advisory lock while the archive's read-modify-write
// step runs: one writer at a time across the cluster (PostgreSQL is the arbiter, nothing home-made).
// Each write moves the generation of the cached domains it touched in the same transaction and
// NOTIFYs the other nodes; a node taking the lock compares generations and reloads what went stale.
// Trusts: the archive to send only keys with a table. Hands out strings and Buffers; no pg types escape.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { PosternError, errorMessage } from '../errors.ts';
import { CACHE_DOMAINS, type CacheDomain, type ForeignChange, type KvEngine, type KvOp, type KvRange, type SharedKv } from './kv.ts';
import { LOCK_WRITER, migrate, tableOf } from './pg-schema.ts';

const CHANNEL = 'postern_archive';
/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_PAYLOAD = 7000;
const PAGE = 512;
const LISTEN_RETRY_MS = 1000;

export interface PgKvEngineOptions {
  /** postgres:// connection string. */
  url: string;
  /** The password, when not in the URL (read from storage.postgres.passwordFile). */
  password?: string;
  /** Connections in the pool (the writer holds one while it writes; readers share the rest). */
  poolSize?: number;
  /** This node's name (PostgreSQL's application_name, seen in pg_stat_activity). */
  node?: string;
  /** A failure to reach PostgreSQL, for logs and metrics (the operation itself throws STORAGE_IO). */
  onError?: (err: Error) => void;
}

interface StepContext {
  client: PoolClient;
  /** Whether the lock's transaction is open (a write commits it; the next operation takes it again). */
  locked: boolean;
}

interface Notice { n: string; d: CacheDomain[]; f: Array<[string, string]> }

function storageError(err: unknown, what: string): Error {
  if (err instanceof PosternError) return err;
  return new PosternError('STORAGE_IO', `PostgreSQL ${what} failed: ${errorMessage(err)}`, { cause: err });
}

const keyBuf = (k: string): Buffer => Buffer.from(k, 'utf8');

export class PgKvEngine implements KvEngine {
  readonly node: string;
  /** This process in notifications (its own are ignored); unique even when two nodes share a name. */
  private readonly instance = randomBytes(8).toString('hex');
  private pool: Pool | null = null;
  private listener: pg.Client | null = null;
  private listenTimer: NodeJS.Timeout | null = null;
  private closing = false;
  /** Set once a LISTEN connection has been up: a later reconnect may have missed notifications. */
  private listenedBefore = false;
  private readonly steps = new AsyncLocalStorage<StepContext>();
  /** Generations this node has seen (its own writes, or reloads after another node's). */
  private readonly seen = new Map<CacheDomain, bigint>();
  private readonly staleListeners: Array<(domains: CacheDomain[]) => Promise<void>> = [];
  private readonly foreignListeners: Array<(change: ForeignChange) => void> = [];
  readonly shared: SharedKv;

  constructor(private readonly options: PgKvEngineOptions) {
    this.node = options.node ?? randomBytes(6).toString('hex');
    this.shared = {
      serialize: (fn) => this.serialize(fn),
      onStale: (l) => void this.staleListeners.push(l),
      onForeignChange: (l) => void this.foreignListeners.push(l),
    };
  }

  async open(): Promise<void> {
    this.closing = false;
    const pool = new pg.Pool({ ...this.connection(), max: this.options.poolSize ?? 8, connectionTimeoutMillis: 10_000 });
    // An idle client losing its server (PostgreSQL restarted) must not crash the process.
    pool.on('error', (err) => this.options.onError?.(err));
    this.pool = pool;
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      await pool.end().catch(() => undefined);
      this.pool = null;
      throw storageError(err, 'connect');
    }
    try {
      await migrate(client);
      for (const [d, g] of await this.generations(client)) this.seen.set(d, g);
    } catch (err) {
      throw storageError(err, 'schema migration');
    } finally {
      client.release();
    }
    await this.listen();
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.listenTimer) clearTimeout(this.listenTimer);
    this.listenTimer = null;
    const l = this.listener;
    this.listener = null;
    if (l) await l.end().catch(() => undefined);
    const p = this.pool;
    this.pool = null;
    if (p) await p.end().catch(() => undefined);
  }

  private connection(): { connectionString: string; password?: string; application_name: string } {
    return { connectionString: this.options.url, ...(this.options.password ? { password: this.options.password } : {}), application_name: `postern ${this.node}` };
  }

  private db(): Pool {
    if (!this.pool) throw new PosternError('STORAGE_CLOSED', 'The PostgreSQL archive is not open');
    return this.pool;
  }

  /** A raw query for the cluster's own tables (nodes, job slots); not for archive keys. */
  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      return (await this.db().query<R>(sql, params)).rows;
    } catch (err) {
      throw storageError(err, 'query');
    }
  }

  // ---- reads --------------------------------------------------------------------------------------

  async get(key: string): Promise<Buffer | null> {
    return (await this.getMany([key]))[0] ?? null;
  }

  async getMany(keys: string[]): Promise<Array<Buffer | null>> {
    const byTable = new Map<string, string[]>();
    for (const k of keys) {
      const { table } = tableOf(k);
      const list = byTable.get(table) ?? [];
      list.push(k);
      byTable.set(table, list);
    }
    const found = new Map<string, Buffer>();
    try {
      await Promise.all([...byTable].map(async ([table, list]) => {
        const { rows } = await this.db().query<{ k: Buffer; v: Buffer }>(`SELECT k, v FROM ${table} WHERE k = ANY($1::bytea[])`, [list.map(keyBuf)]);
        for (const r of rows) found.set(r.k.toString('utf8'), r.v);
      }));
    } catch (err) {
      throw storageError(err, 'read');
    }
    return keys.map((k) => found.get(k) ?? null);
  }

  async *entries(range: KvRange): AsyncIterable<[string, Buffer]> {
    const lower = range.gte ?? range.gt;
    if (lower === undefined) throw new PosternError('STORAGE_IO', 'A PostgreSQL range scan needs a lower bound');
    const { table } = tableOf(lower);
    let remaining = range.limit ?? Infinity;
    // Keyset paging: each page continues strictly after (or before) the last key seen.
    let after: { key: string; inclusive: boolean } | undefined = range.gte !== undefined ? { key: range.gte, inclusive: true } : range.gt !== undefined ? { key: range.gt, inclusive: false } : undefined;
    let before: { key: string; inclusive: boolean } | undefined = range.lte !== undefined ? { key: range.lte, inclusive: true } : range.lt !== undefined ? { key: range.lt, inclusive: false } : undefined;
    while (remaining > 0) {
      const params: unknown[] = [];
      const where: string[] = [];
      if (after) {
        params.push(keyBuf(after.key));
        where.push(`k ${after.inclusive ? '>=' : '>'} $${params.length}`);
      }
      if (before) {
        params.push(keyBuf(before.key));
        where.push(`k ${before.inclusive ? '<=' : '<'} $${params.length}`);
      }
      const page = Math.min(PAGE, remaining);
      params.push(page);
      const sql = `SELECT k, v FROM ${table} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY k ${range.reverse ? 'DESC' : 'ASC'} LIMIT $${params.length}`;
      let rows: Array<{ k: Buffer; v: Buffer }>;
      try {
        rows = (await this.db().query<{ k: Buffer; v: Buffer }>(sql, params)).rows;
      } catch (err) {
        throw storageError(err, 'range read');
      }
      for (const r of rows) yield [r.k.toString('utf8'), r.v];
      remaining -= rows.length;
      if (rows.length < page) return;
      const last = (rows[rows.length - 1] as { k: Buffer }).k.toString('utf8');
      if (range.reverse) before = { key: last, inclusive: false };
      else after = { key: last, inclusive: false };
    }
  }

  // ---- writes -------------------------------------------------------------------------------------

  async write(ops: KvOp[], options: { sync: boolean }): Promise<void> {
    if (ops.length === 0) return;
    // The last op on a key wins, as in an ordered batch.
    const last = new Map<string, KvOp>();
    for (const op of ops) last.set(op.key, op);
    const puts = new Map<string, { k: Buffer[]; v: Buffer[] }>();
    const dels = new Map<string, Buffer[]>();
    const domains = new Set<CacheDomain>();
    const folders: Array<[string, string]> = [];
    for (const op of last.values()) {
      const { table, domain } = tableOf(op.key);
      if (domain) domains.add(domain);
      if (op.type === 'put') {
        const p = puts.get(table) ?? { k: [], v: [] };
        p.k.push(keyBuf(op.key));
        p.v.push(op.value);
        puts.set(table, p);
        if (table === 'folders') {
          const [, user, folder] = op.key.split('\u0000');
          if (user !== undefined && folder !== undefined) folders.push([user, folder]);
        }
      } else {
        const d = dels.get(table) ?? [];
        d.push(keyBuf(op.key));
        dels.set(table, d);
      }
    }
    const ctx = this.steps.getStore();
    const own = ctx ? null : await this.connect();
    const client = ctx ? ctx.client : (own as PoolClient);
    try {
      if (ctx && !ctx.locked) await this.lockIn(ctx);
      if (!ctx) await client.query('BEGIN');
      if (!options.sync) await client.query('SET LOCAL synchronous_commit TO off');
      for (const [table, p] of puts) {
        await client.query(`INSERT INTO ${table} (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, [p.k, p.v]);
      }
      for (const [table, d] of dels) await client.query(`DELETE FROM ${table} WHERE k = ANY($1::bytea[])`, [d]);
      let gens: Array<{ domain: CacheDomain; gen: string }> = [];
      if (domains.size > 0) {
        gens = (await client.query<{ domain: CacheDomain; gen: string }>('UPDATE cache_generations SET gen = gen + 1 WHERE domain = ANY($1::text[]) RETURNING domain, gen', [[...domains]])).rows;
        for (const payload of this.notices([...domains], folders)) await client.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]);
      }
      await client.query('COMMIT');
      if (ctx) ctx.locked = false;
      // Under the lock no other node wrote in between: these generations are this node's own.
      if (ctx) for (const g of gens) this.seen.set(g.domain, BigInt(g.gen));
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (ctx) ctx.locked = false;
      this.options.onError?.(err as Error);
      throw storageError(err, 'write');
    } finally {
      own?.release();
    }
  }

  private notices(domains: CacheDomain[], folders: Array<[string, string]>): string[] {
    const out: string[] = [];
    let batch: Array<[string, string]> = [];
    const encode = (f: Array<[string, string]>): string => JSON.stringify({ n: this.instance, d: domains, f } satisfies Notice);
    for (const f of folders) {
      if (encode([...batch, f]).length > MAX_PAYLOAD && batch.length > 0) {
        out.push(encode(batch));
        batch = [];
      }
      if (encode([f]).length <= MAX_PAYLOAD) batch.push(f);
    }
    out.push(encode(batch));
    return out;
  }

  private async connect(): Promise<PoolClient> {
    try {
      return await this.db().connect();
    } catch (err) {
      this.options.onError?.(err as Error);
      throw storageError(err, 'connect');
    }
  }

  // ---- the cluster-wide writer lock ---------------------------------------------------------------

  private async serialize<T>(fn: () => Promise<T>): Promise<T> {
    if (this.steps.getStore()) return fn(); // nested step (a rename inside the writer): already serialized
    const ctx: StepContext = { client: await this.connect(), locked: false };
    let failed = false;
    try {
      await this.lockIn(ctx);
      return await this.steps.run(ctx, fn);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      if (ctx.locked) await ctx.client.query(failed ? 'ROLLBACK' : 'COMMIT').catch(() => undefined);
      // A client whose connection broke mid-step is dropped rather than returned to the pool.
      ctx.client.release(failed ? true : undefined);
    }
  }

  /** Opens the step's transaction, takes the writer lock, and reloads what other nodes changed. */
  private async lockIn(ctx: StepContext): Promise<void> {
    try {
      await ctx.client.query('BEGIN');
      await ctx.client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_WRITER.toString()]);
      ctx.locked = true;
      const gens = await this.generations(ctx.client);
      const stale = gens.filter(([d, g]) => this.seen.get(d) !== g).map(([d]) => d);
      if (stale.length > 0) for (const l of this.staleListeners) await l(stale);
      // Only once the caches are reloaded: a reload that failed is tried again by the next step.
      for (const [d, g] of gens) this.seen.set(d, g);
    } catch (err) {
      if (ctx.locked) await ctx.client.query('ROLLBACK').catch(() => undefined);
      ctx.locked = false;
      this.options.onError?.(err as Error);
      throw storageError(err, 'lock');
    }
  }

  private async generations(client: PoolClient): Promise<Array<[CacheDomain, bigint]>> {
    const { rows } = await client.query<{ domain: string; gen: string }>('SELECT domain, gen FROM cache_generations');
    return rows.filter((r) => (CACHE_DOMAINS as readonly string[]).includes(r.domain)).map((r) => [r.domain as CacheDomain, BigInt(r.gen)]);
  }

  // ---- notifications from the other nodes ---------------------------------------------------------

  private async listen(): Promise<void> {
    if (this.closing) return;
    const client = new pg.Client(this.connection());
    const retry = (): void => {
      if (this.closing || this.listenTimer) return;
      this.listener = null;
      this.listenTimer = setTimeout(() => {
        this.listenTimer = null;
        void this.listen();
      }, LISTEN_RETRY_MS);
      this.listenTimer.unref();
    };
    client.on('error', (err) => {
      this.options.onError?.(err);
      client.end().catch(() => undefined);
      retry();
    });
    client.on('notification', (msg) => {
      if (msg.channel !== CHANNEL || !msg.payload) return;
      let notice: Notice;
      try {
        notice = JSON.parse(msg.payload) as Notice;
      } catch {
        return;
      }
      if (notice.n === this.instance) return;
      this.emitForeign({ domains: notice.d.filter((d) => (CACHE_DOMAINS as readonly string[]).includes(d)), folders: notice.f.map(([user, folder]) => ({ user, folder })) });
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (this.closing) {
        await client.end();
        return;
      }
      const reconnected = this.listenedBefore;
      this.listenedBefore = true;
      this.listener = client;
      // Notifications sent while no listener was connected are lost: assume everything changed.
      if (reconnected) this.emitForeign({ domains: [...CACHE_DOMAINS], folders: [] });
    } catch (err) {
      this.options.onError?.(err as Error);
      await client.end().catch(() => undefined);
      retry();
    }
  }

  private emitForeign(change: ForeignChange): void {
    for (const l of this.foreignListeners) {
      try {
        l(change);
      } catch (err) {
        this.options.onError?.(err as Error);
      }
    }
  }
}
