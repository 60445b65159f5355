// Retention and legal hold inside the embedded archive (ARCHITECTURE durability rule 4): per-entry
// retainUntil/purgeAfter written in the commit batch, holds and the hold-everything switch, and the
// only code that deletes archived mail (deleteEntries, purge). Every deletion runs in the archive's
// single writer (no commit interleaves), re-checks holds and retention itself, and removes entry,
// message (when no entry is left), blob reference and, at zero, the blob's chunks in one synced batch.
// Trusts: the KvArchiveStore host (writer exclusivity, folder/stats caches); validates everything else.
// Hands on: KvOps for commits, and results/errors (HELD, NOT_FOUND, FORBIDDEN, INVALID_INPUT).
import { PosternError } from '../errors.ts';
import { objectLockOf, type KvEngine, type KvOp } from './kv.ts';
import { keys, prefixEnd, splitKey } from './kv-keys.ts';
import { chunkCount } from './kv-writer-group.ts';
import { addressKey, type ArchiveEntry, type ArchiveStats, type MessageRecord, type RetentionStore, type UserRecord } from './types.ts';
import { computeRetention, extendOnly, isoInstant, validatePolicy } from '../compliance/retention-rules.ts';
import { holdCovers, participantKeysOf, validateNewHold } from '../compliance/hold-scope.ts';
import { DEFAULT_ADDRESS_RULES, type AddressRules } from '../router/address-rules.ts';
import type {
  DeleteResult, EntryRef, EntryRetention, HoldRecord, HoldStatus, NewHold, PurgeBatch, PurgeOptions, RetentionPolicy,
} from '../compliance/types.ts';

interface FolderState { uidValidity: number; uidNext: number; messages: number }
interface BlobManifest { size: number; chunks: number; refs: number }
type Stats = Omit<ArchiveStats, 'users'>;

/** What the archive lends this module; all calls happen inside the writer when they change data. */
export interface RetentionHost {
  kv: KvEngine;
  /** Run fn in the archive's writer: no commit or other deletion runs meanwhile. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  folderState(user: string, folder: string): Promise<FolderState>;
  /** After a successful write: the folder states and counters the batch stored. */
  published(folders: Map<string, FolderState>, stats: Stats): void;
  stats(): Stats;
  getUser(name: string): Promise<UserRecord | null>;
  getMessage(id: string): Promise<MessageRecord | null>;
  /** After a hold was created or released, or hold-everything switched (WORM stores sync their legal holds). */
  holdsChanged?(): Promise<void>;
}

export interface RetentionOptions {
  /** Rules from the configuration file (read-only; the archive keeps its own beside them). */
  policies?: RetentionPolicy[];
  /** Configuration switch: when true every entry is held whatever the stored flag says. */
  holdEverything?: boolean;
  /** Entries in this folder count as direction "sent" for policy matching. */
  sentFolder?: string;
  /**
   * The router's address rules (routing.subaddressSeparator …): a hold or policy naming dave@x covers
   * mail to dave+legal@x as routing files it to dave. Default: the configuration's defaults.
   */
  addressRules?: AddressRules;
}

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const parse = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;
const refKey = (r: EntryRef): string => `${r.user}\u0000${r.folder}\u0000${r.uid}`;
const MAX_DELETE = 10000;

export class KvRetention implements RetentionStore {
  private stored: RetentionPolicy[] = [];
  private holds = new Map<string, HoldRecord>();
  private everything = false;
  private readonly configured: RetentionPolicy[];

  constructor(private readonly host: RetentionHost, private readonly options: RetentionOptions = {}) {
    this.configured = (options.policies ?? []).map((p) => validatePolicy({ ...p, source: 'config' }));
  }

  async load(): Promise<void> {
    const { kv } = this.host;
    this.stored = [];
    for await (const [, v] of kv.entries({ gte: keys.policyPrefix(), lt: prefixEnd(keys.policyPrefix()) })) this.stored.push(parse<RetentionPolicy>(v));
    this.holds.clear();
    for await (const [, v] of kv.entries({ gte: keys.legalHoldPrefix(), lt: prefixEnd(keys.legalHoldPrefix()) })) {
      const h = parse<HoldRecord>(v);
      this.holds.set(h.name, h);
    }
    const flag = await kv.get(keys.holdEverything());
    this.everything = flag ? parse<{ on: boolean }>(flag).on : false;
  }

  // ---- commit time ------------------------------------------------------------------------------

  /** Ops that record a new entry's retention, purge-index slot and reverse reference, and the retention stored. */
  async entryOps(entry: ArchiveEntry, message: MessageRecord, explicit?: Partial<EntryRetention>): Promise<{ ops: KvOp[]; retention: EntryRetention | null }> {
    const ops: KvOp[] = [{ type: 'put', key: keys.messageEntry(entry.messageId, entry.user, entry.folder), value: Buffer.from(String(entry.uid)) }];
    const r = await this.compute(entry, message, explicit);
    if (r === null) return { ops, retention: null };
    ops.push({ type: 'put', key: keys.retention(entry.user, entry.folder, entry.uid), value: json(r) });
    if (r.purgeAfter !== null) ops.push({ type: 'put', key: keys.purgeIndex(r.purgeAfter, entry.user, entry.folder, entry.uid), value: Buffer.alloc(0) });
    return { ops, retention: r };
  }

  /**
   * A later capture of a message already filed in this entry's folder: the retention it would have got
   * (current policies, its explicit values, from the entry's archive time) may only extend the entry's,
   * never shorten it; an entry never purged (no purgeAfter) stays never purged. Ops are empty when
   * nothing changes.
   */
  async mergeOps(entry: ArchiveEntry, message: MessageRecord, explicit: Partial<EntryRetention> | undefined, current: EntryRetention | null): Promise<{ ops: KvOp[]; retention: EntryRetention | null }> {
    const wanted = await this.compute(entry, message, explicit);
    if (wanted === null) return { ops: [], retention: current };
    const next = extendOnly(current, wanted);
    const { retainUntil, purgeAfter } = next;
    if (retainUntil === (current?.retainUntil ?? null) && purgeAfter === (current?.purgeAfter ?? null)) return { ops: [], retention: current };
    const { user, folder, uid } = entry;
    const ops: KvOp[] = [{ type: 'put', key: keys.retention(user, folder, uid), value: json(next) }];
    if (current?.purgeAfter !== purgeAfter) {
      if (current?.purgeAfter) ops.push({ type: 'del', key: keys.purgeIndex(current.purgeAfter, user, folder, uid) });
      if (purgeAfter !== null) ops.push({ type: 'put', key: keys.purgeIndex(purgeAfter, user, folder, uid), value: Buffer.alloc(0) });
    }
    return { ops, retention: next };
  }

  /** The retention the policies and explicit values give an entry, or null when no rule sets any. */
  private async compute(entry: ArchiveEntry, message: MessageRecord, explicit?: Partial<EntryRetention>): Promise<EntryRetention | null> {
    const policies = this.policies();
    if (policies.length === 0 && !explicit?.retainUntil && !explicit?.purgeAfter) return null;
    const clean: Partial<EntryRetention> = {};
    if (explicit?.retainUntil) clean.retainUntil = isoInstant(explicit.retainUntil, 'retainUntil');
    if (explicit?.purgeAfter) clean.purgeAfter = isoInstant(explicit.purgeAfter, 'purgeAfter');
    const user = policies.length > 0 ? await this.host.getUser(entry.user) : null;
    const r = computeRetention(policies, {
      user: entry.user, groups: user?.groups ?? [], ownAddresses: (user?.addresses ?? []).map(addressKey),
      participants: policies.length > 0 ? participantKeysOf(message, this.addressRules()) : [], folder: entry.folder,
      direction: entry.folder === (this.options.sentFolder ?? 'Sent') ? 'sent' : 'received',
    }, new Date(entry.internalDate), clean);
    return r.retainUntil === null && r.purgeAfter === null ? null : r;
  }

  /** Remembers which identity keys a message claimed, so deleting it releases them. */
  identityOp(messageId: string, identity: string): KvOp {
    return { type: 'put', key: keys.messageIdentity(messageId, identity), value: Buffer.alloc(0) };
  }

  // ---- retention --------------------------------------------------------------------------------

  private addressRules(): AddressRules {
    return this.options.addressRules ?? DEFAULT_ADDRESS_RULES;
  }

  private policies(): RetentionPolicy[] {
    return [...this.configured, ...this.stored];
  }

  async listPolicies(): Promise<RetentionPolicy[]> {
    return this.policies();
  }

  async putPolicy(p: RetentionPolicy): Promise<void> {
    const policy = validatePolicy({ ...p, source: 'archive' });
    if (this.configured.some((c) => c.name === policy.name)) throw new PosternError('FORBIDDEN', `Policy "${policy.name}" comes from the configuration file; change it there`);
    await this.host.exclusive(async () => {
      await this.host.kv.write([{ type: 'put', key: keys.policy(policy.name), value: json(policy) }], { sync: true });
      this.stored = [...this.stored.filter((s) => s.name !== policy.name), policy];
    });
  }

  async removePolicy(name: string): Promise<void> {
    if (this.configured.some((c) => c.name === name)) throw new PosternError('FORBIDDEN', `Policy "${name}" comes from the configuration file; remove it there`);
    await this.host.exclusive(async () => {
      if (!this.stored.some((s) => s.name === name)) throw new PosternError('NOT_FOUND', `Policy "${name}" does not exist`);
      await this.host.kv.write([{ type: 'del', key: keys.policy(name) }], { sync: true });
      this.stored = this.stored.filter((s) => s.name !== name);
    });
  }

  async getRetention(ref: EntryRef): Promise<EntryRetention | null> {
    if (!(await this.host.kv.get(keys.entry(ref.user, ref.folder, ref.uid)))) return null;
    const raw = await this.host.kv.get(keys.retention(ref.user, ref.folder, ref.uid));
    return raw ? parse<EntryRetention>(raw) : { retainUntil: null, purgeAfter: null };
  }

  /** Moves retainUntil later (never earlier); purgeAfter follows when it would fall before it. */
  async extendRetention(ref: EntryRef, until: string): Promise<EntryRetention> {
    const retainUntil = isoInstant(until, 'retainUntil');
    return this.host.exclusive(async () => {
      const current = await this.getRetention(ref);
      if (!current) throw new PosternError('NOT_FOUND', `No entry ${ref.user}/${ref.folder}/${ref.uid}`);
      if (current.retainUntil !== null && retainUntil < current.retainUntil) {
        throw new PosternError('FORBIDDEN', `Retention of ${ref.user}/${ref.folder}/${ref.uid} can only be extended: "${retainUntil}" is before "${current.retainUntil}"`);
      }
      const next: EntryRetention = { retainUntil, purgeAfter: current.purgeAfter !== null && current.purgeAfter < retainUntil ? retainUntil : current.purgeAfter };
      const ops: KvOp[] = [{ type: 'put', key: keys.retention(ref.user, ref.folder, ref.uid), value: json(next) }];
      if (current.purgeAfter !== next.purgeAfter) {
        if (current.purgeAfter !== null) ops.push({ type: 'del', key: keys.purgeIndex(current.purgeAfter, ref.user, ref.folder, ref.uid) });
        if (next.purgeAfter !== null) ops.push({ type: 'put', key: keys.purgeIndex(next.purgeAfter, ref.user, ref.folder, ref.uid), value: Buffer.alloc(0) });
      }
      const lock = objectLockOf(this.host.kv);
      const message = lock ? await this.messageOf(ref) : null;
      if (lock && message) {
        await lock.writeProtected(ops, { sync: true }, [{ sha256: message.blobId, chunks: chunkCount(message.size), retainUntil, legalHold: false }]);
      } else {
        await this.host.kv.write(ops, { sync: true });
      }
      return next;
    });
  }

  private async messageOf(ref: EntryRef): Promise<MessageRecord | null> {
    const raw = await this.host.kv.get(keys.entry(ref.user, ref.folder, ref.uid));
    return raw ? this.host.getMessage(parse<ArchiveEntry>(raw).messageId) : null;
  }

  /** Whether hold-everything or an active legal hold covers an entry of this user holding this message. */
  legallyHeld(user: string, message: MessageRecord): boolean {
    if (this.everything || this.options.holdEverything) return true;
    for (const h of this.holds.values()) if (h.releasedAt === null && holdCovers(h.scope, user, message, this.addressRules())) return true;
    return false;
  }

  // ---- holds ------------------------------------------------------------------------------------

  async createHold(input: NewHold): Promise<HoldRecord> {
    const h = validateNewHold(input);
    return this.afterHoldChange(this.host.exclusive(async () => {
      const existing = this.holds.get(h.name);
      if (existing && existing.releasedAt === null) throw new PosternError('CONFLICT', `Hold "${h.name}" already exists`);
      const record: HoldRecord = {
        name: h.name, description: h.description ?? '', scope: h.scope, createdAt: new Date().toISOString(), createdBy: h.createdBy,
        releasedAt: null, releasedBy: null,
      };
      await this.host.kv.write([{ type: 'put', key: keys.legalHold(h.name), value: json(record) }], { sync: true });
      this.holds.set(h.name, record);
      return record;
    }));
  }

  private async afterHoldChange<T>(change: Promise<T>): Promise<T> {
    const result = await change;
    await this.host.holdsChanged?.();
    return result;
  }

  async releaseHold(name: string, by: string): Promise<HoldRecord> {
    return this.afterHoldChange(this.host.exclusive(async () => {
      const h = this.holds.get(name);
      if (!h || h.releasedAt !== null) throw new PosternError('NOT_FOUND', `No active hold "${name}"`);
      const record: HoldRecord = { ...h, releasedAt: new Date().toISOString(), releasedBy: by };
      await this.host.kv.write([{ type: 'put', key: keys.legalHold(name), value: json(record) }], { sync: true });
      this.holds.set(name, record);
      return record;
    }));
  }

  async listHolds(options: { includeReleased?: boolean } = {}): Promise<HoldRecord[]> {
    return [...this.holds.values()].filter((h) => options.includeReleased === true || h.releasedAt === null).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async getHold(name: string): Promise<HoldRecord | null> {
    return this.holds.get(name) ?? null;
  }

  async setHoldEverything(on: boolean, by: string): Promise<void> {
    return this.afterHoldChange(this.host.exclusive(async () => {
      await this.host.kv.write([{ type: 'put', key: keys.holdEverything(), value: json({ on, by, at: new Date().toISOString() }) }], { sync: true });
      this.everything = on;
    }));
  }

  async holdEverything(): Promise<{ stored: boolean; configured: boolean }> {
    return { stored: this.everything, configured: this.options.holdEverything === true };
  }

  private evaluate(user: string, message: MessageRecord | null, retention: EntryRetention | null, now: string): HoldStatus {
    const reasons: string[] = [];
    if (this.everything || this.options.holdEverything) reasons.push('hold-everything');
    for (const h of this.holds.values()) {
      // Without its message record, an entry is held by every hold: a hold errs on the side of keeping.
      if (h.releasedAt === null && (message === null || holdCovers(h.scope, user, message, this.addressRules()))) reasons.push(`hold:${h.name}`);
    }
    if (retention?.retainUntil && retention.retainUntil > now) reasons.push(`retention:${retention.retainUntil}`);
    return { held: reasons.length > 0, reasons, retention };
  }

  async holdStatus(ref: EntryRef): Promise<HoldStatus> {
    const now = new Date().toISOString();
    const raw = await this.host.kv.get(keys.entry(ref.user, ref.folder, ref.uid));
    if (!raw) throw new PosternError('NOT_FOUND', `No entry ${ref.user}/${ref.folder}/${ref.uid}`);
    const entry = parse<ArchiveEntry>(raw);
    return this.evaluate(ref.user, await this.host.getMessage(entry.messageId), await this.getRetention(ref), now);
  }

  // ---- deletion ---------------------------------------------------------------------------------

  /** Deletes entries, all or none: any held entry (hold or retention) refuses the whole call with HELD. */
  async deleteEntries(refs: EntryRef[], options: { purgeDue?: boolean } = {}): Promise<DeleteResult> {
    if (refs.length === 0) return { deleted: 0, messagesRemoved: 0, blobsRemoved: 0 };
    if (refs.length > MAX_DELETE) throw new PosternError('INVALID_INPUT', `At most ${MAX_DELETE} entries per deletion`);
    return this.host.exclusive(async () => {
      const now = new Date().toISOString();
      const unique = [...new Map(refs.map((r) => [refKey(r), r])).values()];
      const loaded = await this.loadEntries(unique);
      for (const [i, l] of loaded.entries()) {
        const ref = unique[i] as EntryRef;
        if (!l) throw new PosternError('NOT_FOUND', `No entry ${ref.user}/${ref.folder}/${ref.uid}`);
        const status = this.evaluate(ref.user, l.message, l.retention, now);
        if (status.held) throw new PosternError('HELD', `Entry ${ref.user}/${ref.folder}/${ref.uid} cannot be deleted: ${status.reasons.join(', ')}`);
      }
      const due = (l: Loaded): boolean => !options.purgeDue || (l.retention?.purgeAfter != null && l.retention.purgeAfter <= now);
      return this.remove(loaded.filter((l): l is Loaded => l !== null && due(l)));
    });
  }

  /** One bounded purge batch over the per-date index: entries past purgeAfter and not held are deleted. */
  async purge(o: PurgeOptions): Promise<PurgeBatch> {
    if (!Number.isInteger(o.limit) || o.limit < 1 || o.limit > MAX_DELETE) throw new PosternError('INVALID_INPUT', `Purge batch limit must be 1 to ${MAX_DELETE}`);
    const start = keys.purgeIndexPrefix();
    if (o.after && !o.after.startsWith(start)) throw new PosternError('INVALID_INPUT', 'Purge cursor is not valid');
    return this.host.exclusive(async () => {
      const now = new Date().toISOString();
      const candidates: Array<{ key: string; ref: EntryRef }> = [];
      for await (const [k] of this.host.kv.entries({ ...(o.after ? { gt: o.after } : { gte: start }), lt: `${start}${now}\u0001`, limit: o.limit })) {
        const [, , user, folder, uid] = splitKey(k);
        candidates.push({ key: k, ref: { user: user ?? '', folder: folder ?? '', uid: parseInt(uid ?? '', 16) } });
      }
      const loaded = await this.loadEntries(candidates.map((c) => c.ref));
      const due: Loaded[] = [];
      let skippedHeld = 0;
      const stale: KvOp[] = [];
      loaded.forEach((l, i) => {
        const c = candidates[i] as { key: string; ref: EntryRef };
        if (!l || !l.retention || l.retention.purgeAfter === null || l.retention.purgeAfter > now) {
          stale.push({ type: 'del', key: c.key }); // the index slot outlived its entry or was moved
          return;
        }
        if (this.evaluate(c.ref.user, l.message, l.retention, now).held) skippedHeld += 1;
        else due.push(l);
      });
      const next = candidates.length === o.limit ? (candidates[candidates.length - 1] as { key: string }).key : null;
      const entries = due.map((l) => l.ref);
      if (o.dryRun) return { scanned: candidates.length, skippedHeld, deleted: due.length, messagesRemoved: 0, blobsRemoved: 0, entries, next };
      const result = await this.remove(due, stale);
      return { scanned: candidates.length, skippedHeld, ...result, entries, next };
    });
  }

  private async loadEntries(refs: EntryRef[]): Promise<Array<Loaded | null>> {
    const { kv } = this.host;
    const raws = await kv.getMany(refs.flatMap((r) => [keys.entry(r.user, r.folder, r.uid), keys.retention(r.user, r.folder, r.uid)]));
    const messages = new Map<string, MessageRecord | null>();
    const out: Array<Loaded | null> = [];
    for (const [i, ref] of refs.entries()) {
      const raw = raws[2 * i];
      if (!raw) {
        out.push(null);
        continue;
      }
      const entry = parse<ArchiveEntry>(raw);
      if (!messages.has(entry.messageId)) messages.set(entry.messageId, await this.host.getMessage(entry.messageId));
      const r = raws[2 * i + 1];
      out.push({ ref, entry, message: messages.get(entry.messageId) ?? null, retention: r ? parse<EntryRetention>(r) : null });
    }
    return out;
  }

  /** The one synced batch that deletes entries and whatever they alone kept alive. */
  private async remove(items: Loaded[], extra: KvOp[] = []): Promise<DeleteResult> {
    const { kv } = this.host;
    const ops: KvOp[] = [...extra];
    const stats = { ...this.host.stats() };
    const folders = new Map<string, FolderState>();
    const goneByMessage = new Map<string, Set<string>>();
    const legacy = new Set<string>();
    const known = new Map(items.map((l) => [l.entry.messageId, l.message]));
    const indexed = await kv.getMany(items.map((l) => keys.messageEntry(l.entry.messageId, l.ref.user, l.ref.folder)));
    for (const [i, { ref, entry, retention }] of items.entries()) {
      const { user, folder, uid } = ref;
      ops.push({ type: 'del', key: keys.entry(user, folder, uid) }, { type: 'del', key: keys.holds(user, folder, entry.messageId) });
      if (retention) {
        ops.push({ type: 'del', key: keys.retention(user, folder, uid) });
        if (retention.purgeAfter !== null) ops.push({ type: 'del', key: keys.purgeIndex(retention.purgeAfter, user, folder, uid) });
      }
      const mk = keys.messageEntry(entry.messageId, user, folder);
      if (!indexed[i]) legacy.add(entry.messageId); // written before the reverse index existed
      ops.push({ type: 'del', key: mk });
      const fk = `${user}\u0000${folder}`;
      const state = folders.get(fk) ?? { ...(await this.host.folderState(user, folder)) };
      state.messages = Math.max(0, state.messages - 1);
      folders.set(fk, state);
      stats.entries = Math.max(0, stats.entries - 1);
      const gone = goneByMessage.get(entry.messageId) ?? new Set<string>();
      gone.add(mk);
      goneByMessage.set(entry.messageId, gone);
    }
    let messagesRemoved = 0;
    let blobsRemoved = 0;
    const manifests = new Map<string, BlobManifest>();
    for (const [messageId, gone] of goneByMessage) {
      if (legacy.has(messageId)) continue; // cannot prove no entry is left: keep the message and blob
      const prefix = keys.messageEntryPrefix(messageId);
      let left = false;
      for await (const [k] of kv.entries({ gte: prefix, lt: prefixEnd(prefix) })) if (!gone.has(k)) left = true;
      if (left) continue;
      const message = known.get(messageId) ?? null;
      if (!message) continue;
      messagesRemoved += 1;
      stats.messages = Math.max(0, stats.messages - 1);
      ops.push({ type: 'del', key: keys.message(messageId) });
      if (message.flags.length > 0) {
        ops.push({ type: 'del', key: keys.flagged(messageId) });
        stats.flagged = Math.max(0, stats.flagged - 1);
      }
      const idPrefix = keys.messageIdentityPrefix(messageId);
      for await (const [k] of kv.entries({ gte: idPrefix, lt: prefixEnd(idPrefix) })) {
        const identity = k.slice(idPrefix.length);
        const owner = await kv.get(keys.identity(identity));
        if (owner?.toString('utf8') === messageId) ops.push({ type: 'del', key: keys.identity(identity) });
        ops.push({ type: 'del', key: k });
      }
      const sha = message.blobId;
      let manifest = manifests.get(sha);
      if (!manifest) {
        const raw = await kv.get(keys.blob(sha));
        if (!raw) continue;
        manifest = parse<BlobManifest>(raw);
      }
      manifest = { ...manifest, refs: manifest.refs - 1 };
      manifests.set(sha, manifest);
    }
    for (const [sha, m] of manifests) {
      if (m.refs > 0) {
        ops.push({ type: 'put', key: keys.blob(sha), value: json(m) });
        continue;
      }
      blobsRemoved += 1;
      stats.blobs = Math.max(0, stats.blobs - 1);
      stats.blobBytes = Math.max(0, stats.blobBytes - m.size);
      ops.push({ type: 'del', key: keys.blob(sha) });
      for (let n = 0; n < m.chunks; n++) ops.push({ type: 'del', key: keys.chunk(sha, n) });
    }
    for (const [k, f] of folders) {
      const [user, folder] = k.split('\u0000') as [string, string];
      ops.push({ type: 'put', key: keys.folder(user, folder), value: json(f) });
    }
    ops.push({ type: 'put', key: keys.stats(), value: json(stats) });
    await kv.write(ops, { sync: true });
    this.host.published(folders, stats);
    return { deleted: items.length, messagesRemoved, blobsRemoved };
  }
}

interface Loaded {
  ref: EntryRef;
  entry: ArchiveEntry;
  message: MessageRecord | null;
  retention: EntryRetention | null;
}
