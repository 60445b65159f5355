// The durable intake: receivers spool here and may acknowledge only after commit() resolves.
// Small messages live inline in a synced RocksDB batch (group commit across sessions); large ones
// stream to a spool file that is fsync'd (with its directory) before the record is committed.
// Hands records to the queue manager; an entry leaves only through remove(), after the archive commit.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PosternError } from '../errors.ts';
import type { KvEngine, KvOp } from '../storage/kv.ts';
import { prefixEnd } from '../storage/kv-keys.ts';
import { newIntakeId } from './ids.ts';

/** 'held': spooled by the relay proxy while the upstream decides; the queue manager ignores it. */
export type IntakeState = 'active' | 'deferred' | 'corrupt' | 'held';

export interface IntakeRecord {
  id: string;
  listener: string;
  receivedAt: string;
  envelope: { mailFrom: string; rcptTo: string[] };
  session: { remoteAddress: string; helo: string; user: string | null };
  /** An owner known when the message was captured (POP3 login, relay AUTH user, import --user). */
  assign?: Assignment;
  size: number;
  sha256: string;
  storage: 'inline' | 'file';
  state: IntakeState;
  attempts: number;
  /** Epoch milliseconds of the next attempt (deferred entries). */
  nextAttemptAt: number;
  lastError: string | null;
  /** Problems to flag the archived message with (e.g. "relay-outcome-unknown"). */
  flags?: string[];
  /** Times an operator retried this entry after quarantine (`postern intake retry`): each retry archives under a new capture id. */
  retries?: number;
  /** Consecutive unclean stops (crashes) during which this entry was being archived. */
  crashes?: number;
  /**
   * Why the entry is to be archived raw-only (no analysis, no plugin hooks: byte-exact, routed by its
   * envelope by the built-in router, flagged) and then quarantined; set after MAX_CRASHES crashes.
   */
  rawOnly?: string;
}

/**
 * An entry in flight at this many consecutive unclean stops is archived raw-only and quarantined at the
 * next start; one that crashes the process even then is only quarantined.
 */
export const MAX_CRASHES = 2;

/**
 * A user the capturing listener already knows the message belongs to: the router files it into that
 * user's archive (folder, or the direction's folder) in addition to normal routing, or instead of it
 * when `exclusive` (a single-user import keeping its folder structure).
 */
export interface Assignment {
  user: string;
  direction: 'received' | 'sent';
  folder?: string;
  exclusive?: boolean;
  /** Why, for provenance and logs: "pop3 login alice", "smtp auth alice", "import --user alice". */
  reason: string;
}

export type IntakeMeta = Pick<IntakeRecord, 'listener' | 'envelope' | 'session' | 'assign'>;

const REC = 'r\u0000';
const DATA = 'd\u0000';
/** Entries being archived: written unsynced when archiving starts (a process crash keeps it), removed with the entry. */
const INFLIGHT = 'p\u0000';
/** The key prefixes of the intake's engine (a backup copies records and data, never in-flight marks). */
export const INTAKE_KEYS = { record: REC, data: DATA, inFlight: INFLIGHT } as const;
const EMPTY = Buffer.alloc(0);

export interface IntakeCounts {
  active: number;
  deferred: number;
  corrupt: number;
}

/** Collects one message's bytes: in memory up to the inline limit, then in a spool file. */
export class IntakeWriter {
  readonly id = newIntakeId();
  private parts: Buffer[] = [];
  private size = 0;
  private readonly hash = createHash('sha256');
  private file: FileHandle | null = null;
  private done = false;
  private digest: string | null = null;

  constructor(private readonly intake: Intake) {}

  get bytes(): number {
    return this.size;
  }

  /** Peek at the buffered start of the message (header parsing); at most what is held in memory. */
  head(): Buffer {
    return Buffer.concat(this.parts);
  }

  /** SHA-256 (hex) of everything written; the message is complete from here on (no more writes). */
  sha256(): string {
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.done || this.digest !== null) throw new PosternError('INVALID_INPUT', 'Write after the message was complete, committed or aborted');
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.file) {
      await this.file.write(chunk);
      return;
    }
    this.parts.push(chunk);
    if (this.size > this.intake.inlineMaxBytes) {
      this.file = await open(this.intake.spoolPath(this.id), 'wx', 0o600);
      const held = Buffer.concat(this.parts);
      // Keep the first part in memory for header parsing; the file holds everything.
      this.parts = [held.subarray(0, Math.min(held.length, this.intake.inlineMaxBytes))];
      await this.file.write(held);
    }
  }

  /** Make the message durable. Resolves only after fsync; the caller may then acknowledge. */
  async commit(meta: IntakeMeta, options: { state?: 'active' | 'held' } = {}): Promise<{ record: IntakeRecord; inline: Buffer | null }> {
    if (this.done) throw new PosternError('INVALID_INPUT', 'Message was already committed or aborted');
    this.done = true;
    const record: IntakeRecord = {
      id: this.id, ...meta, receivedAt: new Date().toISOString(), size: this.size, sha256: this.sha256(),
      storage: this.file ? 'file' : 'inline', state: options.state ?? 'active', attempts: 0, nextAttemptAt: 0, lastError: null,
    };
    let inline: Buffer | null = null;
    if (this.file) {
      const file = this.file;
      this.file = null;
      try {
        await file.sync();
      } finally {
        await file.close();
      }
      this.intake.syncSpoolDir();
    } else {
      inline = Buffer.concat(this.parts, this.size);
    }
    this.parts = [];
    await this.intake.commitRecord(record, inline);
    return { record, inline };
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.parts = [];
    if (this.file) {
      await this.file.close().catch(() => undefined);
      this.file = null;
      await unlink(this.intake.spoolPath(this.id)).catch(() => undefined);
    }
  }
}

export class Intake {
  private readonly spoolDir: string;
  private counts_: IntakeCounts = { active: 0, deferred: 0, corrupt: 0 };
  private held_ = 0;
  /** Unsynced in-flight marks and removals of this turn: they share one write (see housekeep). */
  private pendingHousekeeping: KvOp[] = [];
  private housekeepingFlush: Promise<void> | null = null;
  /** performance.now() of the latest commit or release: the queue manager yields to capture while it is recent. */
  lastCommitAt = -Infinity;

  constructor(
    private readonly kv: KvEngine,
    dir: string,
    readonly inlineMaxBytes: number,
    private readonly onCommit?: (seconds: number) => void,
  ) {
    this.spoolDir = join(dir, 'spool');
  }

  /** Open and return every entry left from before, oldest first; orphan spool files are removed. */
  async open(): Promise<IntakeRecord[]> {
    mkdirSync(this.spoolDir, { recursive: true, mode: 0o700 });
    await this.kv.open();
    const records: IntakeRecord[] = [];
    for await (const [, v] of this.kv.entries({ gte: REC, lt: prefixEnd(REC) })) records.push(JSON.parse(v.toString('utf8')) as IntakeRecord);
    const fileIds = new Set(records.filter((r) => r.storage === 'file').map((r) => r.id));
    for (const name of readdirSync(this.spoolDir)) {
      // A spool file without a record was never acknowledged: the sender got no 250 for it.
      if (!fileIds.has(name.replace(/\.eml$/, ''))) rmSync(join(this.spoolDir, name), { force: true });
    }
    this.counts_ = { active: 0, deferred: 0, corrupt: 0 };
    this.held_ = 0;
    for (const r of records) this.tally(r.state, 1);
    return this.settleInFlight(records);
  }

  /**
   * Entries that were being archived when the process last stopped without a clean shutdown: each
   * counts one crash; at MAX_CRASHES the entry is archived raw-only and quarantined (kept, listed,
   * retried only by an operator), past it only quarantined, so a message that kills the process
   * cannot do so at every start.
   */
  private async settleInFlight(records: IntakeRecord[]): Promise<IntakeRecord[]> {
    const inFlight = new Set<string>();
    for await (const [k] of this.kv.entries({ gte: INFLIGHT, lt: prefixEnd(INFLIGHT) })) inFlight.add(k.slice(INFLIGHT.length));
    if (inFlight.size === 0) return records;
    const out: IntakeRecord[] = [];
    for (const r of records) {
      if (!inFlight.has(r.id) || r.state !== 'active') {
        out.push(r);
        continue;
      }
      const crashes = (r.crashes ?? 0) + 1;
      const reason = `being archived at ${crashes} consecutive unclean stops`;
      let next: IntakeRecord = { ...r, crashes };
      if (crashes === MAX_CRASHES) next = { ...next, rawOnly: reason };
      else if (crashes > MAX_CRASHES) next = { ...next, state: 'corrupt', lastError: `Quarantined: ${reason} (also when archived raw-only)` };
      await this.kv.write([{ type: 'put', key: REC + r.id, value: Buffer.from(JSON.stringify(next)) }], { sync: true });
      if (next.state === 'corrupt') {
        this.tally('active', -1);
        this.tally('corrupt', 1);
      }
      if (crashes >= MAX_CRASHES) this.quarantinedAtOpen.push(next);
      out.push(next);
    }
    await this.kv.write([...inFlight].map((id) => ({ type: 'del', key: INFLIGHT + id })), { sync: true });
    return out;
  }

  /** Entries the last open() found in flight at MAX_CRASHES (to archive raw-only) or more unclean stops. */
  readonly quarantinedAtOpen: IntakeRecord[] = [];

  /**
   * Archiving of this entry starts (unsynced: only a process crash, not a power loss, must be seen).
   * The mark is written before the turn ends, in one write with the turn's other marks and removals.
   */
  markInFlight(id: string): Promise<void> {
    return this.housekeep([{ type: 'put', key: INFLIGHT + id, value: EMPTY }]);
  }

  /**
   * Unsynced bookkeeping writes (in-flight marks, removals): those of one turn go in one write at its
   * end, in the order they were asked for. The archiver ends entries and starts the next ones in
   * bursts; one hand-off to the database's threads per burst, not two or more.
   */
  private housekeep(ops: KvOp[]): Promise<void> {
    for (const op of ops) this.pendingHousekeeping.push(op);
    this.housekeepingFlush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const batch = this.pendingHousekeeping;
      this.pendingHousekeeping = [];
      this.housekeepingFlush = null;
      return this.kv.write(batch, { sync: false });
    });
    return this.housekeepingFlush;
  }

  /** Archiving of these entries ended without a crash (a clean stop, or an outcome already recorded). */
  async clearInFlight(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.kv.write(ids.map((id) => ({ type: 'del', key: INFLIGHT + id })), { sync: false });
  }

  close(): Promise<void> {
    return this.kv.close();
  }

  writer(): IntakeWriter {
    return new IntakeWriter(this);
  }

  spoolPath(id: string): string {
    return join(this.spoolDir, `${id}.eml`);
  }

  syncSpoolDir(): void {
    const fd = openSync(this.spoolDir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  async commitRecord(record: IntakeRecord, inline: Buffer | null): Promise<void> {
    const started = process.hrtime.bigint();
    const ops: KvOp[] = [{ type: 'put', key: REC + record.id, value: Buffer.from(JSON.stringify(record)) }];
    if (inline) ops.push({ type: 'put', key: DATA + record.id, value: inline });
    this.lastCommitAt = performance.now();
    await this.kv.write(ops, { sync: true });
    this.lastCommitAt = performance.now();
    this.tally(record.state, 1);
    this.onCommit?.(Number(process.hrtime.bigint() - started) / 1e9);
  }

  counts(): IntakeCounts {
    return { ...this.counts_ };
  }

  /** Entries held by the relay proxy while the upstream decides (not counted in counts()). */
  heldCount(): number {
    return this.held_;
  }

  private tally(state: IntakeState, delta: number): void {
    if (state === 'held') this.held_ += delta;
    else this.counts_[state] += delta;
  }

  /** A held entry becomes active (the queue manager may archive it), optionally flagged. */
  async release(record: IntakeRecord, options: { flags?: string[]; sync?: boolean } = {}): Promise<IntakeRecord> {
    this.lastCommitAt = performance.now();
    const next: IntakeRecord = { ...record, state: 'active', ...(options.flags?.length ? { flags: [...(record.flags ?? []), ...options.flags] } : {}) };
    await this.kv.write([{ type: 'put', key: REC + record.id, value: Buffer.from(JSON.stringify(next)) }], { sync: options.sync ?? true });
    this.tally(record.state, -1);
    this.tally('active', 1);
    return next;
  }

  async get(id: string): Promise<IntakeRecord | null> {
    const raw = await this.kv.get(REC + id);
    return raw ? (JSON.parse(raw.toString('utf8')) as IntakeRecord) : null;
  }

  /** Entries in id order, at most `limit`, starting after the id `after` (paging). */
  async list(limit = 1000, after?: string): Promise<IntakeRecord[]> {
    const out: IntakeRecord[] = [];
    const from = after === undefined ? { gte: REC } : { gt: REC + after };
    for await (const [, v] of this.kv.entries({ ...from, lt: prefixEnd(REC), limit })) out.push(JSON.parse(v.toString('utf8')) as IntakeRecord);
    return out;
  }

  /**
   * When the oldest entry waiting to be archived (active or deferred) was received, in epoch ms; null
   * when none waits. Ids sort by arrival, so this is the first such record; at most `scan` are read.
   */
  async oldestWaiting(scan = 10_000): Promise<number | null> {
    for await (const [, v] of this.kv.entries({ gte: REC, lt: prefixEnd(REC), limit: scan })) {
      const r = JSON.parse(v.toString('utf8')) as IntakeRecord;
      if (r.state === 'active' || r.state === 'deferred') return Date.parse(r.receivedAt);
    }
    return null;
  }

  /** The inline bytes of a small message (null for spooled ones). */
  async inlineData(record: IntakeRecord): Promise<Buffer | null> {
    if (record.storage === 'file') return null;
    const data = await this.kv.get(DATA + record.id);
    if (!data) throw new PosternError('INTAKE_CORRUPT', `Intake entry "${record.id}" has no data`);
    return data;
  }

  /** Change an entry's state; `rawOnly: null` clears that mark. */
  async setState(
    record: IntakeRecord, state: IntakeState,
    update: Partial<Pick<IntakeRecord, 'attempts' | 'nextAttemptAt' | 'lastError' | 'retries' | 'crashes'>> & { rawOnly?: string | null },
  ): Promise<IntakeRecord> {
    const { rawOnly, ...rest } = update;
    const next: IntakeRecord = { ...record, ...rest, state };
    if (rawOnly === null) delete next.rawOnly;
    else if (rawOnly !== undefined) next.rawOnly = rawOnly;
    await this.kv.write([
      { type: 'put', key: REC + record.id, value: Buffer.from(JSON.stringify(next)) },
      { type: 'del', key: INFLIGHT + record.id },
    ], { sync: true });
    this.tally(record.state, -1);
    this.tally(state, 1);
    return next;
  }

  /** Remove an entry whose archive commit is durable. Removals and marks of the same turn share one write. */
  async remove(record: IntakeRecord): Promise<void> {
    // Not synced: if the removal is lost in a crash, the entry is replayed and the archive sees its
    // capture id as already committed.
    await this.housekeep([{ type: 'del', key: REC + record.id }, { type: 'del', key: DATA + record.id }, { type: 'del', key: INFLIGHT + record.id }]);
    this.tally(record.state, -1);
    if (record.storage === 'file') await unlink(this.spoolPath(record.id)).catch(() => undefined);
  }
}
