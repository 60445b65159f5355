// The storage interface every backend implements: metadata (users, folders, entries, messages),
// blobs (original bytes by SHA-256), audit (append-only numbered records; integrity scans for verify),
// and the search role a later issue fills in.
// Callers see only these types: no engine handles, iterators or key encodings cross this line.
import type { Readable } from 'node:stream';
import type { PackedChunk } from './blob-codec.ts';
import type { JobRecord, JobResult } from '../jobs/types.ts';
import type {
  DeleteResult, EntryRef, EntryRetention, HoldRecord, HoldStatus, NewHold, PurgeBatch, PurgeOptions, RetentionPolicy,
} from '../compliance/types.ts';

export interface UserRecord {
  name: string;
  /** Addresses and aliases, as entered but with the domain lower-cased. */
  addresses: string[];
  /** Whole domains this user owns: any address there without an owner of its own is theirs. */
  domains: string[];
  /** POP3 login names that identify this user (POP3 proxy). */
  pop3Users: string[];
  createdAt: string;
  /** Archive login password (scrypt hash from core/smtp/password.ts), or null when none is set. */
  passwordHash: string | null;
  /** What the user may do beyond reading their own archive (MailStore's privilege names). */
  privileges: Privilege[];
  /** Groups the user belongs to (retention rules and IMAP provisioning match on them). */
  groups: string[];
  /** Whether the user may read their archive over IMAP. */
  imapAccess: boolean;
  /** Whether the user may sign in to the web access (plugin web); auditors and compliance officers have it by privilege. */
  webAccess: boolean;
  /** The person's display name ("" when unknown). */
  fullName: string;
  /** Where the account comes from: added here, or kept by the directory sync (core/directory). */
  source: UserSource;
  /** Distinguished name in the directory (the DN bound to for directory sign-in); null for local users. */
  dn: string | null;
  /** The directory's stable id of the account (entryUUID, objectGUID as hex); follows a renamed account. */
  directoryId: string | null;
  /** A disabled user signs in nowhere (a directory account that left the directory); the archive stays. */
  disabled: boolean;
}

export const USER_SOURCES = ['local', 'directory'] as const;
export type UserSource = (typeof USER_SOURCES)[number];

export const PRIVILEGES = ['admin', 'login', 'archive', 'export', 'delete', 'compliance', 'auditor'] as const;
export type Privilege = (typeof PRIVILEGES)[number];
export const GROUP_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export interface NewUser {
  name: string;
  addresses: string[];
  domains?: string[];
  pop3Users?: string[];
  passwordHash?: string | null;
  privileges?: Privilege[];
  groups?: string[];
  imapAccess?: boolean;
  webAccess?: boolean;
  fullName?: string;
  source?: UserSource;
  dn?: string | null;
  directoryId?: string | null;
  disabled?: boolean;
}

/** Changes to a user's identities; what is added must not belong to anyone else. */
export interface UserChange {
  addAddresses?: string[];
  removeAddresses?: string[];
  addDomains?: string[];
  removeDomains?: string[];
  addPop3Users?: string[];
  removePop3Users?: string[];
  /** A new password hash (null removes the password). */
  passwordHash?: string | null;
  addPrivileges?: Privilege[];
  removePrivileges?: Privilege[];
  addGroups?: string[];
  removeGroups?: string[];
  imapAccess?: boolean;
  webAccess?: boolean;
  fullName?: string;
  source?: UserSource;
  dn?: string | null;
  directoryId?: string | null;
  disabled?: boolean;
}

/** One capture of a message: which listener saw it, with which envelope, when. */
export interface CaptureRecord {
  /** Intake id; unique per capture and the idempotency key of the archive commit. */
  id: string;
  listener: string;
  receivedAt: string;
  mailFrom: string;
  rcptTo: string[];
  client: string;
  helo: string;
  /** The journal report this capture was unwrapped from, when it was one. */
  journal?: CaptureJournal;
}

/** A journal report's envelope as provenance (storage keeps it verbatim; the router reads it). */
export interface CaptureJournal {
  kind: string;
  style: string;
  role: string;
  sender: string | null;
  onBehalfOf: string | null;
  recipients: Array<{ address: string; field: string; expandedFrom: string | null; forwardedFrom: string | null }>;
  wrapperMessageId: string | null;
  ndrWrapped: boolean;
  problems: string[];
}

export interface MessageSummaryFields {
  date: string | null;
  from: string;
  to: string;
  cc: string;
  subject: string;
  messageIdHeader: string | null;
}

export interface MessageRecord extends MessageSummaryFields {
  id: string;
  blobId: string;
  size: number;
  archivedAt: string;
  captures: CaptureRecord[];
  /** Problems found while archiving (e.g. "journal-malformed: no message/rfc822 part"); never cleared. */
  flags: string[];
  /**
   * Plugin data computed once at archive time (merged `index` hook results, e.g. `{ imap: … }`); JSON
   * values only. Stored with a new message; a merged capture keeps the first message's attributes.
   */
  attributes?: Record<string, unknown>;
}

export interface FolderStatus {
  user: string;
  folder: string;
  uidValidity: number;
  uidNext: number;
  messages: number;
}

export interface ArchiveEntry {
  user: string;
  folder: string;
  uid: number;
  messageId: string;
  /** When the entry was archived (IMAP INTERNALDATE). */
  internalDate: string;
  size: number;
  date: string | null;
  from: string;
  subject: string;
}

export interface FileInto {
  user: string;
  folder: string;
}

/** The original bytes of a message, readable as a stream, with their identity known up front. */
export interface BlobSource {
  sha256: string;
  size: number;
  open(): Readable;
  /** The same bytes when already in memory (the archive may use them instead of open()). */
  bytes?: Buffer;
  /** `bytes` already compressed by an analysis worker (blob-codec packChunk), for a one-chunk blob. */
  packed?: PackedChunk | undefined;
}

export interface ArchiveCommit {
  capture: CaptureRecord;
  /** Identity for a new message; must not exist yet (ignored when mergeInto names an existing one). */
  messageId: string;
  summary: MessageSummaryFields;
  blob: BlobSource;
  fileInto: FileInto[];
  /** An existing message this capture is a copy of (from the dedup hook). */
  mergeInto?: string;
  /**
   * Identity keys of this message, strongest last or first as the caller likes (e.g. blobIdentity(sha),
   * "c1:<canonical hash>"). Without mergeInto, the commit merges into the message that already owns
   * any of them (checked atomically with the write); every key not yet owned is claimed by the
   * message this commit lands in.
   */
  identities?: string[];
  /** Problems to flag the message with (merged into existing flags). */
  flags?: string[];
  /** Plugin data stored with a new message (ignored on a merge); see MessageRecord.attributes. */
  attributes?: Record<string, unknown>;
  /** Retention for the new entries, merged with the store's policies (the longest minimum wins). */
  retention?: Partial<EntryRetention>;
}

export interface CommitResult {
  messageId: string;
  /** Entries created by this commit; empty when the capture was already committed. */
  entries: Array<{ user: string; folder: string; uid: number }>;
  /** True when this capture id had been committed before (a replay after a crash). */
  alreadyCommitted: boolean;
}

export interface FlaggedMessage {
  messageId: string;
  flags: string[];
  archivedAt: string;
  subject: string;
}

export interface ArchiveStats {
  /** Users in the directory, not counting system archives (isSystemUser, e.g. "_unrouted"). */
  users: number;
  /** Messages carrying at least one flag. */
  flagged: number;
  messages: number;
  entries: number;
  blobs: number;
  blobBytes: number;
}

export interface ListOptions {
  /** Only entries with uid > afterUid. */
  afterUid?: number;
  limit?: number;
}

export interface ArchiveStore {
  /** A short name of the backend for logs and status ("rocksdb"). */
  readonly backend: string;
  open(): Promise<void>;
  close(): Promise<void>;

  addUser(user: NewUser): Promise<UserRecord>;
  getUser(name: string): Promise<UserRecord | null>;
  listUsers(): Promise<UserRecord[]>;
  /** Apply identity changes atomically; returns the updated record. */
  updateUser(name: string, change: UserChange): Promise<UserRecord>;
  /** Remove a user from the directory. Their archive stays: archived mail is never deleted by this. */
  removeUser(name: string): Promise<void>;
  /**
   * Give a user a new name, with their archive (folders, entries, UIDs and UIDVALIDITY), per-entry
   * retention, the legal holds and stored policies that name them, in one atomic synced batch: after a
   * crash the user has either the old name or the new one, never half of each. CONFLICT when the new
   * name is a user, or still has an archive of its own (a removed user's).
   */
  renameUser(from: string, to: string): Promise<UserRecord>;
  /** The user owning an address, compared case-insensitively (the router applies stricter policies). */
  userByAddress(address: string): Promise<string | null>;
  /** The user owning a whole domain. */
  userByDomain(domain: string): Promise<string | null>;
  /** The user a POP3 login name belongs to. */
  userByPop3User(login: string): Promise<string | null>;

  /**
   * Atomically store the blob (or add a reference to it), the message (or merge the capture into an
   * existing one), and one entry per folder that does not already hold the message; durable on return.
   * Committing the same capture id again changes nothing and reports alreadyCommitted.
   */
  commit(commit: ArchiveCommit): Promise<CommitResult>;
  /** The message id a capture was committed as, or null. */
  captureCommitted(captureId: string): Promise<string | null>;
  /** The message owning an identity key (see ArchiveCommit.identities), or null. */
  messageByIdentity(identity: string): Promise<string | null>;
  /** Every identity key starting with prefix, in key order (rebuilding a dedup filter). */
  listIdentities(prefix: string): AsyncIterable<string>;
  /** Messages carrying flags, oldest first. */
  listFlagged(limit?: number): Promise<FlaggedMessage[]>;

  folders(user: string): Promise<FolderStatus[]>;
  listEntries(user: string, folder: string, options?: ListOptions): Promise<ArchiveEntry[]>;
  getEntry(user: string, folder: string, uid: number): Promise<ArchiveEntry | null>;
  /** The UID of the entry a message has in a folder, or null when that folder does not hold it. */
  entryUidOf(user: string, folder: string, messageId: string): Promise<number | null>;
  getMessage(id: string): Promise<MessageRecord | null>;
  /**
   * Sets attributes[name] of a stored message: derived data a plugin computes later for messages
   * archived before it stored that data (or in an older format). Touches nothing else of the message
   * (bytes, captures, flags, entries); serialised with commits, so a concurrent merge is never lost.
   * NOT_FOUND when the message does not exist; name: lower-case letters, digits, "-".
   */
  setMessageAttribute(messageId: string, name: string, value: unknown): Promise<void>;
  /** The original bytes, streamed; null when the blob does not exist. */
  openBlob(blobId: string): Promise<Readable | null>;
  stats(): Promise<ArchiveStats>;
  /** The jobs role: job definitions with status, per-job state (checkpoints) and the results history. */
  jobs(): JobStore;
  /** The audit role: an append-only, numbered record sequence (core/audit encodes and chains the records). */
  audit(): AuditStore;
  /** Full scans and raw chunk reads for integrity verification (core/verify). */
  integrity(): IntegrityReader;
  /** The retention role: policies, per-entry retention, legal holds, and the only way to delete mail. */
  retention(): RetentionStore;
  /**
   * Folders that gained entries through another node of a shared archive (postgres-s3), heard within
   * about a second; the embedded archive has one process and never calls it.
   */
  onForeignEntries?(listener: (folders: Array<{ user: string; folder: string }>) => void): void;
}

/**
 * Retention and legal hold, enforced by the backend itself (ARCHITECTURE durability rule 4): whoever
 * calls deleteEntries or purge, an entry under a hold, under hold-everything or before its retainUntil is
 * never deleted (deleteEntries refuses the whole call with HELD; purge skips and counts it). Deleting an
 * entry drops its message when no entry is left, and the blob's chunks when its reference count reaches
 * zero, in one synced batch. retainUntil is computed at commit from the policies and only ever extended
 * (also when a later capture of the same message is merged into an entry already in that folder).
 */
export interface RetentionStore {
  /** Configured (read-only) and stored policies, configured first. */
  listPolicies(): Promise<RetentionPolicy[]>;
  /** Add or replace a stored policy; applies to entries archived from now on. */
  putPolicy(policy: RetentionPolicy): Promise<void>;
  removePolicy(name: string): Promise<void>;
  /** An entry's retention ({null, null} when no rule set any), or null when the entry does not exist. */
  getRetention(ref: EntryRef): Promise<EntryRetention | null>;
  /** Move retainUntil later; an earlier instant is refused (FORBIDDEN). */
  extendRetention(ref: EntryRef, retainUntil: string): Promise<EntryRetention>;
  createHold(hold: NewHold): Promise<HoldRecord>;
  /** Release an active hold (kept, with releasedAt/releasedBy, for the record). */
  releaseHold(name: string, by: string): Promise<HoldRecord>;
  listHolds(options?: { includeReleased?: boolean }): Promise<HoldRecord[]>;
  getHold(name: string): Promise<HoldRecord | null>;
  setHoldEverything(on: boolean, by: string): Promise<void>;
  /** The stored switch and the configuration's (either one holds everything). */
  holdEverything(): Promise<{ stored: boolean; configured: boolean }>;
  /** Whether an entry may be deleted now, and what protects it. */
  holdStatus(ref: EntryRef): Promise<HoldStatus>;
  /**
   * All or nothing: HELD when any entry is protected, NOT_FOUND when one does not exist. With `purgeDue`
   * (the purge deleting a batch it listed) entries no longer past their purgeAfter are left out, not deleted.
   */
  deleteEntries(refs: EntryRef[], options?: { purgeDue?: boolean }): Promise<DeleteResult>;
  /** One bounded batch of the purge sweep over the per-date index. */
  purge(options: PurgeOptions): Promise<PurgeBatch>;
}

/** One stored audit record: its sequence number (its position) and its encoded bytes, opaque to the backend. */
export interface AuditStoreRecord {
  seq: number;
  data: Buffer;
}

/**
 * Append-only storage of the audit log. There is no update or delete: append refuses a seq that exists or
 * does not follow the head (CONFLICT). Each append is atomic and synced, and moves the head marker with it.
 */
export interface AuditStore {
  append(records: AuditStoreRecord[], head: { seq: number; hash: string }): Promise<void>;
  /** Records in seq order from fromSeq (default 1), or descending from the end with reverse. */
  read(range?: { fromSeq?: number; limit?: number; reverse?: boolean }): AsyncIterable<AuditStoreRecord>;
  /** The head marker written with the last append (seq and hash of the last record), or null. */
  head(): Promise<{ seq: number; hash: string } | null>;
}

/** A blob manifest as stored: size, number of chunks and reference count (messages using it). */
export interface BlobInfo {
  sha256: string;
  size: number;
  chunks: number;
  refs: number;
}

/** One item of an integrity scan: the parsed record, or the stored item that could not be read. */
export type Scanned<T> = { ok: true; value: T } | { ok: false; where: string; error: string };

/** What integrity verification reads: every blob, message and entry, and single chunks decoded. */
export interface IntegrityReader {
  blobs(): AsyncIterable<Scanned<BlobInfo>>;
  blob(sha256: string): Promise<BlobInfo | null>;
  /** Decoded bytes of chunk n of a blob; null when the chunk is absent; STORAGE_IO when it does not decode. */
  chunk(sha256: string, n: number): Promise<Buffer | null>;
  messages(): AsyncIterable<Scanned<MessageRecord>>;
  /** Every archive entry of every user (including users removed from the directory). */
  entries(): AsyncIterable<Scanned<ArchiveEntry>>;
}

/** Durable (synced) storage for the job scheduler; records are opaque JSON to the backend. */
export interface JobStore {
  getJob(name: string): Promise<JobRecord | null>;
  listJobs(): Promise<JobRecord[]>;
  putJob(record: JobRecord): Promise<void>;
  /** Remove the job and its state; its results stay in the history. */
  deleteJob(name: string): Promise<void>;
  getState(name: string): Promise<unknown>;
  putState(name: string, state: unknown): Promise<void>;
  addResult(result: JobResult): Promise<void>;
  /** Results whose start lies in [from, to), oldest first, optionally of one job. */
  listResults(query: { from?: string; to?: string; job?: string; limit?: number }): Promise<JobResult[]>;
}

/** An address as stored: angle brackets and whitespace removed, domain lower-cased (RFC 5321 2.4). */
export function normalizeAddress(address: string): string {
  const a = address.trim().replace(/^<|>$/g, '');
  const at = a.lastIndexOf('@');
  return at < 0 ? a : a.slice(0, at) + '@' + a.slice(at + 1).toLowerCase();
}

/** The key under which an address is looked up: fully case-folded. */
export function addressKey(address: string): string {
  return normalizeAddress(address).toLowerCase();
}

export const DOMAIN = /^(?=.{1,253}$)[^\s@<>.]+(\.[^\s@<>.]+)*$/u;
export const ADDRESS = /^[^\s@<>]+@[^\s@<>]+$/u;

/** The identity key of byte-identical content: identical bytes are the same message. */
export function blobIdentity(sha256: string): string {
  return `blob:${sha256}`;
}

export const USER_NAME = /^[a-z0-9_][a-z0-9._-]{0,63}$/;

/**
 * A system archive rather than a person (routing.unmatchedUser, "_unrouted" by default): a name starting
 * with "_", which neither the admin API nor the configuration's users accept. Kept out of user counts
 * and the CLI's user list; its archive is read like any other.
 */
export function isSystemUser(name: string): boolean {
  return name.startsWith('_');
}
