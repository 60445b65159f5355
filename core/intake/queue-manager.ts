// The queue manager: feeds intake entries to the archiving pipeline through a bounded active window.
// Success removes the entry; a temporary failure defers it with exponential backoff; an entry that
// cannot be processed (corrupt data, or too many attempts) is quarantined, counted and kept. A storage
// engine that cannot be reached (core/storage/unavailable.ts) is not the entry's fault: such a failure
// defers it without counting an attempt, on a backoff capped at OUTAGE_MAX_DELAY_SECONDS, so archiving
// resumes by itself soon after the engine returns and no outage, however long, quarantines mail.
import type { Logger } from '../log.ts';
import { errorMessage, isPosternError } from '../errors.ts';
import { isStorageUnavailable } from '../storage/unavailable.ts';
import type { Intake, IntakeRecord } from './intake.ts';

export interface QueueOptions {
  activeWindow: number;
  maxAttempts: number;
  retryBaseSeconds: number;
  retryMaxSeconds: number;
  /** Ids held in memory before the manager falls back to rescanning the intake. */
  maxReady?: number;
  /**
   * Archiving yields to capture: while the intake has committed a message within the last
   * `archiveQuietMs`, a new entry starts archiving only once it has waited `archiveMaxLagMs`. Clients
   * of a burst are acknowledged at intake speed and the archive catches up in the pause after it;
   * under sustained load every entry is archived at most `archiveMaxLagMs` after its commit.
   * When the oldest entry has waited that long, every entry queued at that moment goes with it (a
   * round): under sustained load the archive then works in large batches, as after a burst, instead
   * of one entry at a time as each comes due, which cost 14–22 % more CPU per message (measured:
   * group commits, intake writes and worker wake-ups per entry instead of per batch).
   * 0 (the default) archives at once.
   */
  archiveMaxLagMs?: number;
  archiveQuietMs?: number;
  /** Message bytes kept in memory for queued entries (default 32 MiB); the rest are read back from the intake. */
  maxInlineBytes?: number;
  /**
   * Bytes of inline (in-memory) entries being archived at once (default 64 MiB): a new one starts only
   * below it, or when nothing runs, so a large window of large messages cannot hold unbounded memory.
   */
  maxRunningBytes?: number;
}

const DEFAULT_MAX_INLINE_BYTES = 32 * 1024 * 1024;
const DEFAULT_MAX_RUNNING_BYTES = 64 * 1024 * 1024;
/** Intake records read per step of a rescan. */
const RESCAN_PAGE = 1000;
/** Longest wait between retries of an entry while its storage is unreachable (retryMaxSeconds may be shorter). */
export const OUTAGE_MAX_DELAY_SECONDS = 60;

/**
 * Archive one entry; `{ quarantine }` when it was archived raw-only and its entry must be kept,
 * quarantined. fresh: it was committed by this process and handed over by the receiver (enqueue), so
 * it cannot have been archived before; entries found in the intake (start, rescan, retry) may have
 * been, by an earlier run that stopped before removing them.
 */
export type ProcessFn = (record: IntakeRecord, inline: Buffer | null, fresh: boolean) => Promise<void | { quarantine: string }>;

export interface QueueEvents {
  onOutcome?(outcome: 'archived' | 'deferred' | 'corrupt', record: IntakeRecord, err?: unknown): void;
}

interface Ready {
  record: IntakeRecord;
  inline: Buffer | null;
  /** performance.now() when it was queued; 0 for entries found in the intake (start, rescan, retry). */
  queuedAt: number;
}

/** Bytes an entry holds in memory while it is archived: inline entries whole; spooled ones are streamed. */
function heldSize(record: IntakeRecord): number {
  return record.storage === 'inline' ? record.size : 0;
}

export class QueueManager {
  private readonly ready: Ready[] = [];
  private readonly deferred = new Map<string, IntakeRecord>();
  /** Ids ready or running, so a rescan never hands the same entry out twice. */
  private readonly tracked = new Set<string>();
  /**
   * Ids whose run ended while a rescan was reading the intake: the listing may show them as they were
   * before (still active), and handing them out again would archive a removed entry a second time.
   */
  private readonly endedDuringScan = new Set<string>();
  private running = 0;
  /** Entries in flight at the last unclean stop, not yet archived again: archived one at a time. */
  private readonly suspects = new Set<string>();
  /** Ids being archived now (their in-flight marks are cleared at a clean stop). */
  private readonly runningIds = new Set<string>();
  /** Bytes of inline message data held by queued (not yet running) entries. */
  private inlineBytes = 0;
  /** Sizes of the inline entries being archived (held in memory while they run). */
  private runningBytes = 0;
  private overflow = false;
  private scanning = false;
  private stopped = true;
  private timer: NodeJS.Timeout | null = null;
  private yieldTimer: NodeJS.Timeout | null = null;
  /** queuedAt of the newest fresh entry queued so far. */
  private lastQueuedAt = -Infinity;
  /** queuedAt of the newest entry of the latest round (see archiveMaxLagMs): entries up to it go without yielding. */
  private roundUntil = -Infinity;
  private idleWaiters: Array<() => void> = [];
  private readonly maxReady: number;
  /** Consecutive storage-unavailable failures per entry (in memory: a restart begins the backoff anew). */
  private readonly outages = new Map<string, number>();

  constructor(
    private readonly intake: Intake,
    private readonly process: ProcessFn,
    private readonly options: QueueOptions,
    private readonly log: Logger,
    private readonly events: QueueEvents = {},
  ) {
    this.maxReady = options.maxReady ?? 50000;
  }

  /**
   * Start with what the intake held at open (active first, deferred on their schedule; 'held' relay
   * entries are never taken). Entries that were being archived at an unclean stop (crashes > 0) go
   * first and one at a time: should one of them crash the process again, it is the only one in flight
   * and the only one counted, so a crash does not push innocent neighbours towards quarantine.
   */
  start(existing: IntakeRecord[]): void {
    this.stopped = false;
    const active = existing.filter((r) => r.state === 'active');
    for (const r of [...active.filter((a) => (a.crashes ?? 0) > 0), ...active.filter((a) => !((a.crashes ?? 0) > 0))]) {
      if (this.push({ record: r, inline: null, queuedAt: 0 }) && (r.crashes ?? 0) > 0) this.suspects.add(r.id);
    }
    for (const r of existing) if (r.state === 'deferred') this.deferred.set(r.id, r);
    if (existing.length > 0) this.log.info('Resuming intake entries left from before', { active: this.ready.length, deferred: this.deferred.size });
    this.timer = setInterval(() => this.releaseDue(), 500);
    this.timer.unref();
    this.pump();
  }

  /**
   * A freshly committed entry. Its bytes stay in memory while the queued bytes stay under
   * maxInlineBytes (a burst waiting for the archive need not be read back from the intake).
   */
  enqueue(record: IntakeRecord, inline: Buffer | null): void {
    if (this.stopped) return; // picked up from the intake at next start
    const keep = inline !== null && this.inlineBytes + inline.length <= (this.options.maxInlineBytes ?? DEFAULT_MAX_INLINE_BYTES);
    if (keep) this.inlineBytes += inline.length;
    const queuedAt = performance.now();
    if (this.push({ record, inline: keep ? inline : null, queuedAt })) this.lastQueuedAt = queuedAt;
    else if (keep) this.inlineBytes -= inline.length;
    this.pump();
  }

  get active(): number {
    return this.running;
  }

  get pending(): number {
    return this.ready.length;
  }

  /** Stop taking entries; resolves when the ones in flight have finished or the timeout passed. */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.yieldTimer) clearTimeout(this.yieldTimer);
    this.yieldTimer = null;
    if (this.running === 0) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        // A clean stop, not a crash: entries still running must not count towards quarantine.
        this.intake.clearInFlight([...this.runningIds]).catch(() => undefined).finally(() => resolve(false));
      }, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** Resolves when nothing is ready or running (tests and `drain`). */
  async idle(): Promise<void> {
    while (this.running > 0 || this.ready.length > 0 || this.scanning) await new Promise((r) => setTimeout(r, 10));
  }

  /** False when the entry was not queued (already tracked, or the ready list is full). */
  private push(item: Ready): boolean {
    if (this.tracked.has(item.record.id)) return false;
    if (this.ready.length >= this.maxReady) {
      this.overflow = true; // stays in the intake; a rescan finds it
      return false;
    }
    this.tracked.add(item.record.id);
    this.ready.push(item);
    return true;
  }

  /** Milliseconds until the head of the queue may start archiving (0: now); see archiveMaxLagMs. */
  private yieldFor(head: Ready): number {
    const maxLag = this.options.archiveMaxLagMs ?? 0;
    if (maxLag <= 0 || head.queuedAt === 0 || head.queuedAt <= this.roundUntil) return 0;
    const now = performance.now();
    const quietIn = this.intake.lastCommitAt + (this.options.archiveQuietMs ?? 20) - now;
    const lagIn = head.queuedAt + maxLag - now;
    if (lagIn <= 0 && quietIn > 0) {
      // The head has waited the maximum lag while capture goes on: a round takes everything queued now.
      this.roundUntil = this.lastQueuedAt;
      return 0;
    }
    return Math.max(0, Math.min(quietIn, lagIn));
  }

  private pump(): void {
    while (!this.stopped && this.running < (this.suspects.size > 0 ? 1 : this.options.activeWindow) && this.ready.length > 0) {
      const head = this.ready[0] as Ready;
      const bytes = heldSize(head.record);
      if (this.running > 0 && this.runningBytes + bytes > (this.options.maxRunningBytes ?? DEFAULT_MAX_RUNNING_BYTES)) break;
      const wait = this.yieldFor(head);
      if (wait > 0) {
        this.yieldTimer ??= setTimeout(() => {
          this.yieldTimer = null;
          this.pump();
        }, Math.ceil(wait));
        break;
      }
      const item = this.ready.shift() as Ready;
      if (item.inline) this.inlineBytes -= item.inline.length;
      this.running += 1;
      this.runningBytes += bytes;
      this.run(item).finally(() => {
        this.running -= 1;
        this.runningBytes -= bytes;
        this.suspects.delete(item.record.id);
        this.tracked.delete(item.record.id);
        if (this.scanning) this.endedDuringScan.add(item.record.id);
        if (this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
        this.pump();
      }).catch((err: unknown) => this.log.error('Archiving an intake entry failed unexpectedly', { intakeId: item.record.id, err: errorMessage(err) }));
    }
    if (!this.stopped && this.overflow && this.ready.length === 0 && !this.scanning) void this.rescan();
  }

  private async rescan(): Promise<void> {
    this.scanning = true;
    this.overflow = false;
    try {
      // Page through the whole intake (held, corrupt and running entries are listed too) until the
      // ready list is full again (push sets overflow: the next rescan goes on) or the end is reached.
      let after: string | undefined;
      scan: for (;;) {
        const page = await this.intake.list(RESCAN_PAGE, after);
        for (const r of page) {
          if (r.state !== 'active' || this.tracked.has(r.id) || this.deferred.has(r.id) || this.endedDuringScan.has(r.id)) continue;
          if (!this.push({ record: r, inline: null, queuedAt: 0 })) break scan;
        }
        if (page.length < RESCAN_PAGE) break;
        after = (page[page.length - 1] as IntakeRecord).id;
      }
    } catch (err) {
      this.log.error('Rescanning the intake failed', { err: errorMessage(err) });
      this.overflow = true;
    } finally {
      this.scanning = false;
      this.endedDuringScan.clear();
      this.pump();
    }
  }

  private releaseDue(): void {
    const now = Date.now();
    for (const [id, r] of this.deferred) {
      if (r.nextAttemptAt <= now) {
        this.deferred.delete(id);
        this.push({ record: r, inline: null, queuedAt: 0 });
      }
    }
    this.pump();
  }

  private async run({ record, inline, queuedAt }: Ready): Promise<void> {
    this.runningIds.add(record.id);
    // The in-flight mark is not awaited before process() starts: entries must reach the archiver in
    // the order they were dispatched (it keeps commits in that order); the mark is in the log long
    // before any analysis could crash the process.
    const marked = this.intake.markInFlight(record.id).catch((err: unknown) => {
      this.log.warn('Marking an intake entry in flight failed', { intakeId: record.id, err: errorMessage(err) });
    });
    try {
      const outcome = await this.process(record, inline, queuedAt > 0);
      await marked;
      if (outcome) {
        await this.intake.setState(record, 'corrupt', { attempts: record.attempts + 1, lastError: `Quarantined: ${outcome.quarantine}` });
        this.log.error('Intake entry quarantined; its message was archived raw-only and flagged, its bytes are kept (postern intake retry)', { intakeId: record.id, reason: outcome.quarantine });
        this.events.onOutcome?.('corrupt', record);
        return;
      }
      await this.intake.remove(record);
      this.outages.delete(record.id);
      this.events.onOutcome?.('archived', record);
    } catch (err) {
      await marked;
      await this.fail(record, err);
    } finally {
      this.runningIds.delete(record.id);
    }
  }

  private async fail(record: IntakeRecord, err: unknown): Promise<void> {
    if (isStorageUnavailable(err)) return this.waitForStorage(record, err);
    this.outages.delete(record.id);
    const attempts = record.attempts + 1;
    const permanent = isPosternError(err, 'INTAKE_CORRUPT');
    try {
      if (permanent || attempts >= this.options.maxAttempts) {
        await this.intake.setState(record, 'corrupt', { attempts, lastError: errorMessage(err) });
        this.log.error('Intake entry quarantined as corrupt; it is kept for inspection', { intakeId: record.id, attempts, err: errorMessage(err) });
        this.events.onOutcome?.('corrupt', record, err);
        return;
      }
      const delay = Math.min(this.options.retryMaxSeconds, this.options.retryBaseSeconds * 2 ** (attempts - 1));
      const jittered = delay * (0.8 + Math.random() * 0.4);
      const next = await this.intake.setState(record, 'deferred', { attempts, lastError: errorMessage(err), nextAttemptAt: Date.now() + jittered * 1000 });
      this.deferred.set(next.id, next);
      this.log.warn('Archiving failed; entry deferred', { intakeId: record.id, attempts, retryInSeconds: Math.round(jittered * 10) / 10, err: errorMessage(err) });
      this.events.onOutcome?.('deferred', record, err);
    } catch (stateErr) {
      // The new state could not be written (the intake database refuses writes, e.g. on a full disk):
      // the entry keeps its old state there and is retried from memory on the same backoff, so it
      // resumes once the database accepts writes again, without waiting for a restart.
      const delay = Math.min(this.options.retryMaxSeconds, this.options.retryBaseSeconds * 2 ** Math.min(attempts - 1, 20));
      this.deferred.set(record.id, { ...record, attempts, nextAttemptAt: Date.now() + delay * 1000 });
      this.log.error('Recording an intake failure failed; the entry is retried from memory', { intakeId: record.id, attempts, retryInSeconds: delay, err: errorMessage(stateErr) });
      this.events.onOutcome?.('deferred', record, err);
    }
  }

  /** The archive could not be reached: defer without counting an attempt (the entry is not at fault). */
  private async waitForStorage(record: IntakeRecord, err: unknown): Promise<void> {
    const streak = (this.outages.get(record.id) ?? 0) + 1;
    this.outages.set(record.id, streak);
    const delay = Math.min(this.options.retryMaxSeconds, OUTAGE_MAX_DELAY_SECONDS, this.options.retryBaseSeconds * 2 ** Math.min(streak - 1, 20));
    const nextAttemptAt = Date.now() + delay * (0.8 + Math.random() * 0.4) * 1000;
    try {
      const next = await this.intake.setState(record, 'deferred', { attempts: record.attempts, lastError: errorMessage(err), nextAttemptAt });
      this.deferred.set(next.id, next);
    } catch (stateErr) {
      this.deferred.set(record.id, { ...record, nextAttemptAt });
      this.log.error('Recording an intake failure failed; the entry is retried from memory', { intakeId: record.id, err: errorMessage(stateErr) });
    }
    if (streak === 1) this.log.warn('The archive storage is unreachable; entry deferred until it returns (not counted as an attempt)', { intakeId: record.id, err: errorMessage(err) });
    this.events.onOutcome?.('deferred', record, err);
  }
}
