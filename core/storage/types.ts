// The storage interface every backend implements: metadata (users, folders, entries, messages),
// blobs (original bytes by SHA-256), and the search and audit roles later issues fill in.
// Callers see only these types: no engine handles, iterators or key encodings cross this line.
import type { Readable } from 'node:stream';

export interface UserRecord {
  name: string;
  addresses: string[];
  createdAt: string;
}

export interface NewUser {
  name: string;
  addresses: string[];
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
}

export interface CommitResult {
  messageId: string;
  /** Entries created by this commit; empty when the capture was already committed. */
  entries: Array<{ user: string; folder: string; uid: number }>;
  /** True when this capture id had been committed before (a replay after a crash). */
  alreadyCommitted: boolean;
}

export interface ArchiveStats {
  users: number;
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
  /** The user owning an address (compared case-insensitively, as mail systems route in practice). */
  userByAddress(address: string): Promise<string | null>;

  /**
   * Atomically store the blob (or add a reference to it), the message (or merge the capture into an
   * existing one), and one entry per folder that does not already hold the message; durable on return.
   * Committing the same capture id again changes nothing and reports alreadyCommitted.
   */
  commit(commit: ArchiveCommit): Promise<CommitResult>;
  /** The message id a capture was committed as, or null. */
  captureCommitted(captureId: string): Promise<string | null>;

  folders(user: string): Promise<FolderStatus[]>;
  listEntries(user: string, folder: string, options?: ListOptions): Promise<ArchiveEntry[]>;
  getEntry(user: string, folder: string, uid: number): Promise<ArchiveEntry | null>;
  getMessage(id: string): Promise<MessageRecord | null>;
  /** The original bytes, streamed; null when the blob does not exist. */
  openBlob(blobId: string): Promise<Readable | null>;
  stats(): Promise<ArchiveStats>;
}

/**
 * Address normalisation shared by every backend: angle brackets and whitespace removed, lower-cased.
 * RFC 5321 allows case-sensitive local parts, but no mail system routes that way in practice.
 */
export function normalizeAddress(address: string): string {
  return address.trim().replace(/^<|>$/g, '').toLowerCase();
}

export const USER_NAME = /^[a-z0-9_][a-z0-9._-]{0,63}$/;
