// The compliance service: what the admin API, CLI and purge job call to change retention, holds,
// privileges and to delete mail. It adds the actor, the `beforeDelete` veto hook, the audit record
// (category "compliance" for changes, "delete" for deletions and purges), logs and metrics around the
// store's retention role, which enforces holds and retention itself whatever this layer does.
// Trusts callers to have checked privileges (core/compliance/routes.ts); validates inputs via the store.
import { randomBytes } from 'node:crypto';
import { PosternError, errorMessage, isPosternError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { AuditEvent, AuditLog } from '../audit/types.ts';
import { hashPassword } from '../smtp/password.ts';
import type { ArchiveStore, Privilege, UserRecord } from '../storage/types.ts';
import type { DeleteResult, EntryRef, HoldRecord, NewHold, RetentionPolicy } from './types.ts';

export interface ComplianceDeps {
  archive: ArchiveStore;
  hooks: HookRegistry;
  log: Logger;
  metrics: Metrics;
  /** The audit log, looked up when needed (it may be set up after this service). */
  audit: () => AuditLog | null;
}

export interface PurgeRun {
  dryRun: boolean;
  scanned: number;
  deleted: number;
  skippedHeld: number;
  skippedVetoed: number;
  messagesRemoved: number;
  blobsRemoved: number;
  batches: number;
  /** Up to 100 of the entries deleted (or, in a dry run, that would be). */
  sample: EntryRef[];
}

export interface PurgeRunOptions {
  dryRun?: boolean;
  /** Candidates per batch (bounded by the store: 1–10000). */
  batchSize?: number;
  signal?: AbortSignal;
  onBatch?: (run: PurgeRun) => void;
}

const refText = (r: EntryRef): string => `${r.user}/${r.folder}/${r.uid}`;

export class ComplianceService {
  constructor(private readonly deps: ComplianceDeps) {}

  private get store() {
    return this.deps.archive.retention();
  }

  /** Compliance changes are always recorded; a failure to record fails the call (after the change). */
  private async audit(event: AuditEvent): Promise<void> {
    const log = this.deps.audit();
    if (!log) return;
    try {
      await log.record(event);
    } catch (err) {
      this.deps.log.error('Audit record failed', { action: event.action, err: errorMessage(err) });
      throw err;
    }
  }

  async addPolicy(actor: string, policy: Omit<RetentionPolicy, 'source' | 'createdAt' | 'createdBy'>): Promise<RetentionPolicy> {
    const full: RetentionPolicy = { ...policy, source: 'archive', createdAt: new Date().toISOString(), createdBy: actor };
    try {
      await this.store.putPolicy(full);
    } catch (err) {
      await this.audit({ category: 'compliance', action: 'policy.add', actor, target: policy.name, outcome: outcomeOf(err), details: { error: errorMessage(err) } });
      throw err;
    }
    await this.audit({ category: 'compliance', action: 'policy.add', actor, target: policy.name, outcome: 'success', details: { match: policy.match, minimum: policy.minimum, maximum: policy.maximum ?? null } });
    this.deps.log.info('Retention policy added', { policy: policy.name, actor });
    return full;
  }

  async removePolicy(actor: string, name: string): Promise<void> {
    try {
      await this.store.removePolicy(name);
    } catch (err) {
      await this.audit({ category: 'compliance', action: 'policy.remove', actor, target: name, outcome: outcomeOf(err), details: { error: errorMessage(err) } });
      throw err;
    }
    await this.audit({ category: 'compliance', action: 'policy.remove', actor, target: name, outcome: 'success' });
    this.deps.log.info('Retention policy removed', { policy: name, actor });
  }

  async createHold(actor: string, hold: Omit<NewHold, 'createdBy'>): Promise<HoldRecord> {
    let record: HoldRecord;
    try {
      record = await this.store.createHold({ ...hold, createdBy: actor });
    } catch (err) {
      await this.audit({ category: 'compliance', action: 'hold.create', actor, target: hold.name, outcome: outcomeOf(err), details: { error: errorMessage(err) } });
      throw err;
    }
    await this.audit({ category: 'compliance', action: 'hold.create', actor, target: hold.name, outcome: 'success', details: { scope: record.scope } });
    this.deps.log.info('Legal hold created', { hold: hold.name, actor });
    return record;
  }

  async releaseHold(actor: string, name: string): Promise<HoldRecord> {
    let record: HoldRecord;
    try {
      record = await this.store.releaseHold(name, actor);
    } catch (err) {
      await this.audit({ category: 'compliance', action: 'hold.release', actor, target: name, outcome: outcomeOf(err), details: { error: errorMessage(err) } });
      throw err;
    }
    await this.audit({ category: 'compliance', action: 'hold.release', actor, target: name, outcome: 'success' });
    this.deps.log.info('Legal hold released', { hold: name, actor });
    return record;
  }

  async setHoldEverything(actor: string, on: boolean): Promise<void> {
    await this.store.setHoldEverything(on, actor);
    await this.audit({ category: 'compliance', action: on ? 'hold-everything.on' : 'hold-everything.off', actor, target: '', outcome: 'success' });
    this.deps.log.info(on ? 'Hold everything switched on' : 'Hold everything switched off', { actor });
  }

  async extendRetention(actor: string, ref: EntryRef, retainUntil: string): Promise<void> {
    try {
      await this.store.extendRetention(ref, retainUntil);
    } catch (err) {
      await this.audit({ category: 'compliance', action: 'retention.extend', actor, target: refText(ref), outcome: outcomeOf(err), details: { retainUntil, error: errorMessage(err) } });
      throw err;
    }
    await this.audit({ category: 'compliance', action: 'retention.extend', actor, target: refText(ref), outcome: 'success', details: { retainUntil } });
  }

  /** Manual deletion: the beforeDelete veto, then the store (which refuses held entries with HELD). */
  async deleteEntries(actor: string, refs: EntryRef[], remote?: string): Promise<DeleteResult> {
    const target = refs.slice(0, 20).map(refText).join(', ');
    const base = { category: 'delete' as const, action: 'message.delete', actor, target, ...(remote ? { remote } : {}) };
    const veto = await this.deps.hooks.gate('beforeDelete', { entries: refs, actor, reason: 'manual' });
    if (veto && (veto.kind === 'reject' || veto.kind === 'tempfail' || veto.kind === 'disconnect')) {
      this.deps.metrics.deletionsRefused.inc({ reason: 'veto' });
      await this.audit({ ...base, outcome: 'denied', details: { entries: refs.length, veto: veto.text } });
      throw new PosternError('HELD', `Deletion vetoed by a beforeDelete hook: ${veto.text}`);
    }
    let result: DeleteResult;
    try {
      result = await this.store.deleteEntries(refs);
    } catch (err) {
      if (isPosternError(err, 'HELD')) this.deps.metrics.deletionsRefused.inc({ reason: 'held' });
      await this.audit({ ...base, outcome: outcomeOf(err), details: { entries: refs.length, error: errorMessage(err) } });
      throw err;
    }
    this.deps.metrics.entriesDeleted.inc(result.deleted);
    this.deps.metrics.purgeBlobsRemoved.inc(result.blobsRemoved);
    await this.audit({ ...base, outcome: 'success', details: { ...result } });
    this.deps.log.info('Archive entries deleted', { actor, ...result });
    return result;
  }

  /**
   * The purge sweep: bounded batches over the per-date index. Each batch is listed first (dry run), shown
   * to beforeDelete, and then exactly those entries are deleted; the store re-checks holds on each.
   */
  async purge(actor: string, options: PurgeRunOptions = {}): Promise<PurgeRun> {
    const dryRun = options.dryRun === true;
    const limit = options.batchSize ?? 500;
    const run: PurgeRun = { dryRun, scanned: 0, deleted: 0, skippedHeld: 0, skippedVetoed: 0, messagesRemoved: 0, blobsRemoved: 0, batches: 0, sample: [] };
    let after: string | null = null;
    do {
      if (options.signal?.aborted) break;
      const batch = await this.store.purge({ limit, after, dryRun: true });
      run.batches += 1;
      run.scanned += batch.scanned;
      run.skippedHeld += batch.skippedHeld;
      after = batch.next;
      if (batch.entries.length > 0) {
        if (dryRun) this.count(run, batch.entries, { deleted: batch.entries.length, messagesRemoved: 0, blobsRemoved: 0 });
        else await this.purgeBatch(actor, run, batch.entries);
      }
      options.onBatch?.(run);
    } while (after !== null);
    if (!dryRun) {
      this.deps.metrics.purgeDeleted.inc(run.deleted);
      this.deps.metrics.purgeBlobsRemoved.inc(run.blobsRemoved);
    }
    this.deps.metrics.purgeSkippedHeld.inc(run.skippedHeld);
    const { sample: _sample, ...counts } = run;
    await this.audit({ category: 'delete', action: dryRun ? 'purge.dry-run' : 'purge', actor, target: '', outcome: 'success', details: counts });
    this.deps.log.info(dryRun ? 'Purge dry run finished' : 'Purge finished', { actor, ...counts });
    return run;
  }

  private count(run: PurgeRun, entries: EntryRef[], r: DeleteResult): void {
    run.deleted += r.deleted;
    run.messagesRemoved += r.messagesRemoved;
    run.blobsRemoved += r.blobsRemoved;
    for (const e of entries) if (run.sample.length < 100) run.sample.push(e);
  }

  private async purgeBatch(actor: string, run: PurgeRun, entries: EntryRef[]): Promise<void> {
    const veto = await this.deps.hooks.gate('beforeDelete', { entries, actor, reason: 'purge' });
    if (veto && veto.kind !== 'accept' && veto.kind !== 'skip') {
      run.skippedVetoed += entries.length;
      return;
    }
    try {
      this.count(run, entries, await this.store.deleteEntries(entries, { purgeDue: true }));
    } catch (err) {
      if (!isPosternError(err, 'HELD') && !isPosternError(err, 'NOT_FOUND')) throw err;
      // Something changed since the listing (a new hold): go one by one, skipping what is now held.
      for (const e of entries) {
        try {
          this.count(run, [e], await this.store.deleteEntries([e], { purgeDue: true }));
        } catch (one) {
          if (isPosternError(one, 'HELD')) run.skippedHeld += 1;
          else if (!isPosternError(one, 'NOT_FOUND')) throw one;
        }
      }
    }
  }

  /** `postern auditor create`: auditor-YYYYMMDD-HHMMSS with a generated password, returned once. */
  async createAuditor(actor: string, now = new Date()): Promise<{ user: UserRecord; password: string }> {
    const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15).toLowerCase();
    const name = `auditor-${stamp}`;
    const password = randomBytes(18).toString('base64url');
    const user = await this.deps.archive.addUser({ name, addresses: [], passwordHash: await hashPassword(password), privileges: ['auditor', 'login'] });
    await this.audit({ category: 'compliance', action: 'auditor.create', actor, target: name, outcome: 'success' });
    this.deps.log.info('Auditor created', { auditor: name, actor });
    return { user, password };
  }

  async changePrivileges(actor: string, name: string, add: Privilege[], remove: Privilege[]): Promise<UserRecord> {
    const user = await this.deps.archive.updateUser(name, { addPrivileges: add, removePrivileges: remove });
    await this.audit({ category: 'compliance', action: 'privileges.change', actor, target: name, outcome: 'success', details: { add, remove } });
    return user;
  }

  /** Sets a user's archive password (admin) or one's own (the user; auditors cannot). */
  async setPassword(actor: string, name: string, password: string): Promise<void> {
    if (password.length < 8 || password.length > 1024) throw new PosternError('INVALID_INPUT', 'A password must be 8 to 1024 characters');
    await this.deps.archive.updateUser(name, { passwordHash: await hashPassword(password) });
    await this.audit({ category: 'compliance', action: 'password.set', actor, target: name, outcome: 'success' });
  }
}

function outcomeOf(err: unknown): AuditEvent['outcome'] {
  return isPosternError(err, 'HELD') || isPosternError(err, 'FORBIDDEN') ? 'denied' : 'failure';
}
