// The nodes of a shared (postgres-s3) archive, as PostgreSQL sees them: each node upserts its row in
// `nodes` every few seconds (name, host, pid, version, listeners), so `postern status` on any node lists
// them all with how recently each was seen; and scheduled job runs are claimed per slot (a job and the
// instant its schedule named) with a unique row in `job_slots`, so each slot runs on exactly one node
// however many nodes' timers fire for it. Trusts: its engine. Hands on plain records.
import { hostname } from 'node:os';
import type { PgKvEngine } from './pg-kv-engine.ts';

export interface ClusterNode {
  name: string;
  host: string;
  pid: number;
  version: string;
  startedAt: string;
  seenAt: string;
  /** Seen within three heartbeats. */
  alive: boolean;
  /** This process. */
  self: boolean;
  listeners: Record<string, number | null>;
}

const HEARTBEAT_MS = 5000;
/** Claimed slots older than this are forgotten (a schedule never fires that late). */
const SLOT_KEEP_DAYS = 30;

export class Cluster {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = new Date();
  private listeners: () => Record<string, number | null> = () => ({});

  constructor(
    private readonly engine: PgKvEngine,
    readonly name: string,
    private readonly version: string,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {}

  /** Registers this node and keeps its row fresh until stop(). */
  async start(listeners: () => Record<string, number | null>): Promise<void> {
    this.listeners = listeners;
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch((err: unknown) => this.onError(err as Error)), HEARTBEAT_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async beat(): Promise<void> {
    await this.engine.query(
      `INSERT INTO nodes (name, host, pid, version, started_at, seen_at, listeners) VALUES ($1, $2, $3, $4, $5, now(), $6)
       ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, version = EXCLUDED.version,
         started_at = EXCLUDED.started_at, seen_at = now(), listeners = EXCLUDED.listeners`,
      [this.name, hostname(), process.pid, this.version, this.startedAt.toISOString(), JSON.stringify(this.listeners())],
    );
  }

  async nodes(): Promise<ClusterNode[]> {
    const rows = await this.engine.query<{ name: string; host: string; pid: number; version: string; started_at: Date; seen_at: Date; listeners: Record<string, number | null>; alive: boolean }>(
      `SELECT name, host, pid, version, started_at, seen_at, listeners, seen_at > now() - ($1 || ' milliseconds')::interval AS alive FROM nodes ORDER BY name`,
      [String(3 * HEARTBEAT_MS)],
    );
    return rows.map((r) => ({
      name: r.name, host: r.host, pid: r.pid, version: r.version, startedAt: r.started_at.toISOString(), seenAt: r.seen_at.toISOString(),
      alive: r.alive, self: r.name === this.name, listeners: r.listeners,
    }));
  }

  /** True for the one node that claims this slot of the job's schedule; false on every other. */
  async claimSlot(job: string, slot: string): Promise<boolean> {
    const rows = await this.engine.query<{ job: string }>(
      'INSERT INTO job_slots (job, slot, node, claimed_at) VALUES ($1, $2, $3, now()) ON CONFLICT (job, slot) DO NOTHING RETURNING job',
      [job, slot, this.name],
    );
    if (rows.length > 0 && Math.random() < 0.05) {
      await this.engine.query(`DELETE FROM job_slots WHERE slot < now() - interval '${SLOT_KEEP_DAYS} days'`).catch(() => undefined);
    }
    return rows.length > 0;
  }
}
