// Shared fixtures of the ArchiveStore conformance suite: the harness contract, streamed blobs, mail bytes and commit builders.
// Trusts only the ArchiveStore interface in types.ts (no engine handles, no key encodings).
// Hands on deterministic commits (capture, summary, blob, fileInto) and the withStore/withUsers helper types to the suite modules.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type {
  ArchiveCommit, ArchiveStore, BlobSource, CaptureRecord, FileInto, MessageSummaryFields,
} from '../types.ts';

/**
 * A fresh, empty, opened store. `reopen()` is called only after the suite has closed `store`; it opens a
 * new store over the same data and returns it. `cleanup()` closes whatever is still open (closing an
 * already closed store must be harmless) and removes the data.
 */
export interface ConformanceHarness {
  store: ArchiveStore;
  reopen(): Promise<ArchiveStore>;
  cleanup(): Promise<void>;
}

/** Runs fn against a fresh harness and cleans it up afterwards. */
export type WithStore = (fn: (h: ConformanceHarness) => Promise<void>) => Promise<void>;
/** Like WithStore, with the users alice (alice@example.com) and bob (bob@example.com) already added. */
export type WithUsers = (fn: (store: ArchiveStore, h: ConformanceHarness) => Promise<void>) => Promise<void>;

/** What each suite module is given to register its describe block. */
export interface SuiteHelpers {
  withStore: WithStore;
  withUsers: WithUsers;
}

export const MiB = 1024 * 1024;

/** A blob over fixed bytes, streamed in pieces so backends see several reads per blob. */
export function blobOf(bytes: Buffer, pieceSize = 64 * 1024): BlobSource {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return {
    sha256,
    size: bytes.length,
    open: () => {
      const pieces: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += pieceSize) pieces.push(bytes.subarray(i, Math.min(i + pieceSize, bytes.length)));
      return Readable.from(pieces);
    },
  };
}

export function mailBytes(n: number | string, extra = ''): Buffer {
  return Buffer.from(`From: sender@example.org\r\nTo: alice@example.com\r\nSubject: Message ${n}\r\n\r\nBody ${n}${extra}\r\n`);
}

export async function readStream(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

interface CommitSpec {
  n: number | string;
  bytes?: Buffer;
  fileInto: FileInto[];
  captureId?: string;
  messageId?: string;
  mergeInto?: string;
  rcptTo?: string[];
}

export function capture(id: string, rcptTo: string[]): CaptureRecord {
  return {
    id, listener: 'smtp', receivedAt: '2024-05-01T10:00:00.000Z', mailFrom: 'sender@example.org', rcptTo,
    client: '192.0.2.10', helo: 'mx.example.org',
  };
}

export function summary(n: number | string): MessageSummaryFields {
  return {
    date: '2024-05-01T09:59:00.000Z', from: 'sender@example.org', to: 'alice@example.com', cc: '',
    subject: `Message ${n}`, messageIdHeader: `<m${n}@example.org>`,
  };
}

export function commitOf(spec: CommitSpec): ArchiveCommit {
  return {
    capture: capture(spec.captureId ?? `cap-${spec.n}`, spec.rcptTo ?? ['alice@example.com']),
    messageId: spec.messageId ?? `msg-${spec.n}`,
    summary: summary(spec.n),
    blob: blobOf(spec.bytes ?? mailBytes(spec.n)),
    fileInto: spec.fileInto,
    ...(spec.mergeInto !== undefined ? { mergeInto: spec.mergeInto } : {}),
  };
}

export const byPlace = (a: { user: string; folder: string }, b: { user: string; folder: string }): number =>
  a.user === b.user ? (a.folder < b.folder ? -1 : a.folder > b.folder ? 1 : 0) : a.user < b.user ? -1 : 1;

export const INBOX = (user: string): FileInto => ({ user, folder: 'Inbox' });
export const SENT = (user: string): FileInto => ({ user, folder: 'Sent' });
