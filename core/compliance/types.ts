// Data types of retention and legal hold, shared by the storage interface (which stores and enforces
// them), core/compliance (which computes and validates them) and the admin API. Plain JSON shapes only.
// Trusts nothing: every value from outside is validated by core/compliance before it reaches a store.

export type Direction = 'received' | 'sent';

/** What a retention rule applies to: every listed criterion must match (a list matches any member). */
export interface PolicyMatch {
  users?: string[];
  groups?: string[];
  /** The entry's owner has one of these addresses, or the message names one as a participant. */
  addresses?: string[];
  /** Same as addresses, for whole domains. */
  domains?: string[];
  folders?: string[];
  /** "sent" for entries in the configured sent folder, "received" for every other folder. */
  direction?: Direction;
}

/** A retention rule: minimum = earliest deletion, maximum = when automatic purge may delete. */
export interface RetentionPolicy {
  name: string;
  match: PolicyMatch;
  /** A duration ("30d", "6w", "18m", "7y") or "forever", counted from the entry's archive time. */
  minimum: string;
  /** Optional duration after which the entry becomes eligible for purge; never shorter than minimum. */
  maximum?: string;
  /** Where the rule lives: the configuration file (read-only here) or the archive (API/CLI). */
  source: 'config' | 'archive';
  createdAt?: string;
  createdBy?: string;
}

/** Per-entry retention as stored: ISO instants, null when no rule set one. */
export interface EntryRetention {
  /** Earliest deletion: before this, no path may delete the entry. Only ever extended. */
  retainUntil: string | null;
  /** From this instant the purge job may delete the entry (never before retainUntil); null = never. */
  purgeAfter: string | null;
}

export interface EntryRef {
  user: string;
  folder: string;
  uid: number;
}

export type HoldDateField = 'date' | 'archivedAt';

/** What a legal hold covers. Every given criterion must match (lists match any member). */
export interface HoldScope {
  users?: string[];
  /** Any participant: summary From/To/Cc and every capture's envelope sender and recipients. */
  addresses?: string[];
  /** Inclusive ISO bounds on the message Date header ("date") or the archive time ("archivedAt"). */
  dateRange?: { from?: string; to?: string; field: HoldDateField };
  /** Header search: `field:substring` terms ANDed (see core/compliance/hold-query.ts). */
  query?: string;
}

export interface HoldRecord {
  name: string;
  description: string;
  scope: HoldScope;
  createdAt: string;
  createdBy: string;
  releasedAt: string | null;
  releasedBy: string | null;
}

export interface NewHold {
  name: string;
  description?: string;
  scope: HoldScope;
  createdBy: string;
}

/** Why an entry cannot be deleted now (empty reasons: it can). */
export interface HoldStatus {
  held: boolean;
  /** "hold-everything", "hold:<name>", "retention:<retainUntil>". */
  reasons: string[];
  retention: EntryRetention | null;
}

export interface DeleteResult {
  deleted: number;
  messagesRemoved: number;
  blobsRemoved: number;
}

export interface PurgeOptions {
  /** Candidates examined in this batch (bounded: 1–10000). */
  limit: number;
  /** Cursor from the previous batch's `next`, or null/absent to start. */
  after?: string | null;
  /** Report what would be deleted without deleting. */
  dryRun?: boolean;
}

export interface PurgeBatch extends DeleteResult {
  scanned: number;
  /** Entries past purgeAfter that a hold (or an extended retainUntil) kept. */
  skippedHeld: number;
  /** Entries deleted (or, in a dry run, that would be). */
  entries: EntryRef[];
  /** Cursor for the next batch; null when the sweep reached entries not yet due. */
  next: string | null;
}

export const HOLD_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const POLICY_NAME = HOLD_NAME;
