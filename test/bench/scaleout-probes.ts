// What bench:scaleout reads from the engines and processes it runs, between two points of a run:
// - S3 requests per kind (PutObject, PutObjectRetention, PutObjectLegalHold, GET, HEAD, other) and the
//   PutObject latency, from the RADOS Gateway's own access log (the beast frontend logs every request at
//   debug level 1) for one bucket, read from a byte offset of the log on;
// - PostgreSQL rows and bytes of the archive tables (exact count(*), pg_total_relation_size with TOAST and
//   indexes), commits of the database and WAL bytes of the cluster (the bench's private cluster);
// - the writer lock (pg_locks sampled while a pass runs: held, by a session in or out of a query, queue);
// - CPU seconds of process groups (a Postern node, the PostgreSQL server with its backends, each Ceph
//   daemon) from /proc, so a slow rate can be traced to the part that burns the time.
// Trusts: the engines are the bench's own (nothing else uses their cluster or bucket).
import { closeSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { TABLES } from '../../core/storage/pg-schema.ts';

export interface S3Counts {
  putObject: number;
  putRetention: number;
  putLegalHold: number;
  get: number;
  head: number;
  other: number;
  /** Summed latency of the PutObject requests, seconds (RGW's own figure). */
  putObjectSeconds: number;
}

const ACCESS = /beast: \S+ \S+ - \S+ \[[^\]]*\] "(\w+) \/([^/?\s]+)(\/[^?\s]*)?(\?\S*)? HTTP\/[\d.]+" (\d{3}) .* latency=([\d.]+)s/;

/** A reader of the RGW log that counts the requests on `bucket` logged since the last call. */
export class RgwRequestLog {
  private offset: number;
  constructor(private readonly file: string) {
    this.offset = statSync(file).size;
  }

  /** Requests on `bucket` logged since the previous call (or since construction). */
  since(bucket: string): S3Counts {
    const size = statSync(this.file).size;
    const length = size - this.offset;
    const buf = Buffer.alloc(Math.max(0, length));
    const fd = openSync(this.file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, this.offset);
    } finally {
      closeSync(fd);
    }
    const text = buf.toString('utf8');
    // Keep a partial last line for the next call.
    const lastNl = text.lastIndexOf('\n');
    this.offset += lastNl < 0 ? 0 : Buffer.byteLength(text.slice(0, lastNl + 1));
    const c: S3Counts = { putObject: 0, putRetention: 0, putLegalHold: 0, get: 0, head: 0, other: 0, putObjectSeconds: 0 };
    for (const line of text.slice(0, lastNl + 1).split('\n')) {
      const m = ACCESS.exec(line);
      if (!m || m[2] !== bucket) continue;
      const [method, query = '', latency] = [m[1], m[4], Number(m[6])];
      if (method === 'PUT' && m[3] && /[?&]retention(=|&|$)/.test(query)) c.putRetention++;
      else if (method === 'PUT' && m[3] && /[?&]legal-hold(=|&|$)/.test(query)) c.putLegalHold++;
      else if (method === 'PUT' && m[3]) {
        c.putObject++;
        c.putObjectSeconds += latency;
      } else if (method === 'GET') c.get++;
      else if (method === 'HEAD') c.head++;
      else c.other++;
    }
    return c;
  }
}

export function addS3(a: S3Counts, b: S3Counts): S3Counts {
  return {
    putObject: a.putObject + b.putObject, putRetention: a.putRetention + b.putRetention, putLegalHold: a.putLegalHold + b.putLegalHold,
    get: a.get + b.get, head: a.head + b.head, other: a.other + b.other, putObjectSeconds: a.putObjectSeconds + b.putObjectSeconds,
  };
}

export interface PgFootprint {
  /** Rows and bytes per archive table. */
  tables: Map<string, { rows: number; bytes: number }>;
  rows: number;
  bytes: number;
  /** Committed transactions of the database so far. */
  commits: number;
  /** The cluster's WAL position, bytes. */
  walBytes: number;
}

export async function pgFootprint(url: string): Promise<PgFootprint> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = new Map<string, { rows: number; bytes: number }>();
    let rows = 0;
    let bytes = 0;
    for (const { table } of TABLES) {
      const r = await client.query<{ rows: number; bytes: string }>(`SELECT (SELECT count(*)::int FROM ${table}) AS rows, pg_total_relation_size('${table}') AS bytes`);
      const row = r.rows[0];
      if (!row) continue;
      tables.set(table, { rows: row.rows, bytes: Number(row.bytes) });
      rows += row.rows;
      bytes += Number(row.bytes);
    }
    // pg_stat_database is updated when a backend reports (at most ~1 s after its commit): ask for a fresh view.
    await client.query('SELECT pg_stat_clear_snapshot()');
    const s = await client.query<{ commits: string; wal: string }>(
      "SELECT xact_commit AS commits, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS wal FROM pg_stat_database WHERE datname = current_database()");
    return { tables, rows, bytes, commits: Number(s.rows[0]?.commits ?? 0), walBytes: Number(s.rows[0]?.wal ?? 0) };
  } finally {
    await client.end();
  }
}

const TICK = 100; // USER_HZ on Linux

/** utime+stime (+ waited-for children's) of one process, seconds; 0 when it is gone. */
function cpuOf(pid: number, withChildren: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after the name start at field 3 (state): utime is 14, stime 15, cutime 16, cstime 17
    const at = (n: number): number => Number(f[n - 3] ?? 0);
    return (at(14) + at(15) + (withChildren ? at(16) + at(17) : 0)) / TICK;
  } catch {
    return 0;
  }
}

function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === ppid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU seconds of a process and (for a server that forks, as PostgreSQL does) all its children, live and ended. */
export function treeCpu(pid: number): number {
  return cpuOf(pid, true) + childrenOf(pid).reduce((s, c) => s + cpuOf(c, false), 0);
}

export function pidFromFile(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').split('\n')[0]?.trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The engines' processes by role: the postmaster (first line of postmaster.pid) and Ceph's pid files. */
export function enginePids(pgDataDir: string, cephDir: string): Map<string, number> {
  const out = new Map<string, number>();
  const pm = pidFromFile(join(pgDataDir, 'postmaster.pid'));
  if (pm !== undefined) out.set('postgres', pm);
  for (const [role, file] of [['radosgw', 'client.rgw.postern.pid'], ['ceph-osd', 'osd.0.pid'], ['ceph-mon', 'mon.a.pid']] as const) {
    const pid = pidFromFile(join(cephDir, 'run', file));
    if (pid !== undefined) out.set(role, pid);
  }
  return out;
}

export interface LockProfile {
  samples: number;
  /** Share of samples in which a node held the cluster-wide writer lock. */
  held: number;
  /** Of those, the share in which the holder's session was waiting for its client (state "idle in transaction"): the node computing, or waiting for S3, with the lock held. */
  heldIdle: number;
  /** Mean number of sessions queued for the lock. */
  waiters: number;
}

/**
 * Samples pg_locks every `everyMs` while running: who holds the writer lock (core/storage/pg-schema.ts
 * LOCK_WRITER, an advisory lock on one bigint: classid = high 32 bits, objid = low 32 bits) and how many
 * sessions wait for it. stop() returns the shares.
 */
export function sampleWriterLock(url: string, writerLock: bigint, everyMs = 50): { stop(): Promise<LockProfile> } {
  const classid = Number(writerLock >> 32n);
  const objid = Number(writerLock & 0xffffffffn);
  const client = new pg.Client({ connectionString: url });
  const p: LockProfile = { samples: 0, held: 0, heldIdle: 0, waiters: 0 };
  let running = true;
  const loop = (async (): Promise<void> => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ granted: boolean; state: string | null }>(
        `SELECT l.granted, a.state FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [classid, objid]);
      p.samples++;
      const holder = rows.find((r) => r.granted);
      if (holder) {
        p.held++;
        if (holder.state === 'idle in transaction') p.heldIdle++;
      }
      p.waiters += rows.filter((r) => !r.granted).length;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await client.end();
      return { samples: p.samples, held: p.held / Math.max(1, p.samples), heldIdle: p.heldIdle / Math.max(1, p.held), waiters: p.waiters / Math.max(1, p.samples) };
    },
  };
}
