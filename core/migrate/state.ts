// The checkpoint of `postern migrate`, kept in the target PostgreSQL (table migrate_state, one row): which
// source is being copied (RocksDB id and the sequence of its last commit when the copy began), the phase,
// and the last source key whose copy is durable in the target. A killed migration continues after that
// key; everything before it is there (re-copying a key is harmless: puts are idempotent). The table is the
// migration's own, beside the archive schema of pg-schema.ts; a server never reads it.
import { z } from 'zod';
import { PosternError } from '../errors.ts';
import type { PgKvEngine } from '../storage/pg-kv-engine.ts';
import { TABLES } from '../storage/pg-schema.ts';

export const PHASES = ['chunks', 'records', 'holds', 'done'] as const;
export type Phase = (typeof PHASES)[number];

export interface Checkpoint {
  source: string;
  sequence: number;
  phase: Phase;
  /** Last source key copied in this phase (null: the phase has not copied anything yet). */
  lastKey: string | null;
  startedAt: string;
  finishedAt: string | null;
}

const Row = z.object({
  source: z.string(),
  sequence: z.coerce.number().int().min(0),
  phase: z.enum(PHASES),
  last_key: z.instanceof(Buffer).nullable(),
  started_at: z.date(),
  finished_at: z.date().nullable(),
});

export class MigrationState {
  constructor(private readonly meta: PgKvEngine) {}

  async ensureTable(): Promise<void> {
    await this.meta.query(`CREATE TABLE IF NOT EXISTS migrate_state (
      id integer PRIMARY KEY CHECK (id = 1), source text NOT NULL, sequence bigint NOT NULL, phase text NOT NULL,
      last_key bytea, started_at timestamptz NOT NULL, finished_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now())`);
  }

  async read(): Promise<Checkpoint | null> {
    const rows = await this.meta.query('SELECT source, sequence, phase, last_key, started_at, finished_at FROM migrate_state WHERE id = 1');
    if (rows.length === 0) return null;
    const parsed = Row.safeParse(rows[0]);
    if (!parsed.success) throw new PosternError('STORAGE_IO', `The target's migrate_state row is not one this Postern wrote: ${parsed.error.issues[0]?.message ?? ''}`);
    const r = parsed.data;
    return {
      source: r.source, sequence: r.sequence, phase: r.phase, lastKey: r.last_key ? r.last_key.toString('utf8') : null,
      startedAt: r.started_at.toISOString(), finishedAt: r.finished_at ? r.finished_at.toISOString() : null,
    };
  }

  async save(c: Checkpoint): Promise<void> {
    await this.meta.query(
      `INSERT INTO migrate_state (id, source, sequence, phase, last_key, started_at, finished_at, updated_at) VALUES (1, $1, $2, $3, $4, $5, $6, now())
       ON CONFLICT (id) DO UPDATE SET source = $1, sequence = $2, phase = $3, last_key = $4, started_at = $5, finished_at = $6, updated_at = now()`,
      [c.source, c.sequence, c.phase, c.lastKey === null ? null : Buffer.from(c.lastKey, 'utf8'), c.startedAt, c.finishedAt],
    );
  }

  /** Whether any archive table of the target holds a row. */
  async archiveEmpty(): Promise<boolean> {
    const rows = await this.meta.query<{ any: boolean }>(`SELECT (${TABLES.map((t) => `EXISTS (SELECT 1 FROM ${t.table})`).join(' OR ')}) AS any`);
    return rows[0]?.any === false;
  }

  /** Empties every archive table: only for the target of an unfinished migration whose source changed since. */
  async clearArchive(): Promise<void> {
    await this.meta.query(`TRUNCATE ${TABLES.map((t) => t.table).join(', ')}`);
  }
}
