// The PostgreSQL schema of the scale-out backend (storage.backend: postgres-s3): one table per kind of
// archive record, named for what it holds, each keyed by the record's archive key (bytea: byte order =
// the embedded engine's order, so range scans behave identically) with the record's bytes (JSON text
// for all but audit records). Message bytes are not here: they are objects in S3 (s3-blob-store.ts).
// Migrations are numbered and applied in order at start, under an advisory lock, each in its own
// transaction, and recorded in postern_schema; a database newer than this build is refused.
import type { PoolClient } from 'pg';
import { PosternError } from '../errors.ts';
import { CACHE_DOMAINS, type CacheDomain } from './kv.ts';

/** Key prefix (the part before the first NUL) → table, and the cached domain its writes invalidate. */
export const TABLES: ReadonlyArray<{ prefix: string; table: string; domain?: CacheDomain }> = [
  { prefix: 'u', table: 'users', domain: 'directory' },
  { prefix: 'a', table: 'user_addresses', domain: 'directory' },
  { prefix: 'o', table: 'user_domains', domain: 'directory' },
  { prefix: 'p', table: 'user_pop3_logins', domain: 'directory' },
  { prefix: 'f', table: 'folders', domain: 'archive' },
  { prefix: 'e', table: 'entries' },
  { prefix: 'h', table: 'folder_messages' },
  { prefix: 'm', table: 'messages' },
  { prefix: 'b', table: 'blobs' },
  { prefix: 'x', table: 'captures' },
  { prefix: 'i', table: 'identities' },
  { prefix: 'fl', table: 'flagged_messages' },
  { prefix: 's', table: 'counters', domain: 'archive' },
  { prefix: 'rt', table: 'entry_retention' },
  { prefix: 'rp', table: 'purge_schedule' },
  { prefix: 'me', table: 'message_entries' },
  { prefix: 'im', table: 'message_identities' },
  { prefix: 'lh', table: 'legal_holds', domain: 'retention' },
  { prefix: 'pl', table: 'retention_policies', domain: 'retention' },
  { prefix: 'au', table: 'audit_records', domain: 'audit' },
  { prefix: 'ah', table: 'audit_head', domain: 'audit' },
  { prefix: 'jd', table: 'jobs' },
  { prefix: 'jt', table: 'job_state' },
  { prefix: 'jr', table: 'job_results' },
];

const BY_PREFIX = new Map(TABLES.map((t) => [t.prefix, t]));

/** The table of a key; keys without a table are a programming error, refused before anything is written. */
export function tableOf(key: string): { table: string; domain?: CacheDomain } {
  const sep = key.indexOf('\u0000');
  const t = sep > 0 ? BY_PREFIX.get(key.slice(0, sep)) : undefined;
  if (!t) throw new PosternError('STORAGE_IO', `Archive key prefix "${key.slice(0, Math.max(0, sep)).slice(0, 8)}" has no PostgreSQL table`);
  // The hold-everything switch shares the counters table but belongs to the retention role's cache.
  if (t.prefix === 's' && key === 's\u0000hold-everything') return { table: t.table, domain: 'retention' };
  return t;
}

interface Migration { version: number; sql: string[] }

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: [
      ...TABLES.map((t) => `CREATE TABLE ${t.table} (k bytea PRIMARY KEY, v bytea NOT NULL)`),
      // Which cached parts changed: a counter per domain, moved in the same transaction as the change.
      `CREATE TABLE cache_generations (domain text PRIMARY KEY, gen bigint NOT NULL)`,
      `INSERT INTO cache_generations (domain, gen) VALUES ${CACHE_DOMAINS.map((d) => `('${d}', 0)`).join(', ')}`,
      // The nodes of the cluster, each refreshing its row while it runs (postern status lists them).
      `CREATE TABLE nodes (name text PRIMARY KEY, host text NOT NULL, pid integer NOT NULL, version text NOT NULL,
        started_at timestamptz NOT NULL, seen_at timestamptz NOT NULL, listeners jsonb NOT NULL DEFAULT '{}')`,
      // Which scheduled slot of a job a node has claimed: each slot runs once cluster-wide.
      `CREATE TABLE job_slots (job text NOT NULL, slot timestamptz NOT NULL, node text NOT NULL, claimed_at timestamptz NOT NULL,
        PRIMARY KEY (job, slot))`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
/** Advisory lock keys (any fixed 64-bit numbers unlikely to collide with another application's). */
export const LOCK_MIGRATE = 0x706f737465726e01n;
export const LOCK_WRITER = 0x706f737465726e02n;

/** Applies every migration this database lacks; returns the versions applied. */
export async function migrate(client: PoolClient): Promise<number[]> {
  await client.query('SELECT pg_advisory_lock($1)', [LOCK_MIGRATE.toString()]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS postern_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM postern_schema');
    const current = rows[0]?.v ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new PosternError('STORAGE_IO', `The PostgreSQL archive has schema version ${current}; this Postern knows up to ${SCHEMA_VERSION} (upgrade Postern)`);
    }
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      await client.query('BEGIN');
      try {
        for (const sql of m.sql) await client.query(sql);
        await client.query('INSERT INTO postern_schema (version) VALUES ($1)', [m.version]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_MIGRATE.toString()]);
  }
}
