// Integrity verification of the archive (MailStore's VerifyStore): re-reads every blob chunk by chunk,
// decodes it (codec, CRC-32 or AEAD tag), recomputes the SHA-256 of the whole and compares it with the
// blob's address and size; checks that every message's blob exists and that each blob's stored reference
// count equals the number of messages using it; checks that every archive entry's message exists. Each
// problem names its root cause once and the entries it affects, and problems are totalled per user and
// folder. Read-only; safe while the server runs (a finding is re-read before it is reported, so a write
// between two scans is not mistaken for damage). Memory: one map entry per blob (~150 bytes).
// Trusts the IntegrityReader to hand out what is stored; hands on a bounded VerifyReport.
import { createHash } from 'node:crypto';
import { errorMessage } from '../errors.ts';
import type { ArchiveStore, MessageRecord } from '../storage/types.ts';

export const VERIFY_PROBLEM_KINDS = [
  'blob-corrupt', 'blob-hash-mismatch', 'blob-size-mismatch', 'chunk-missing', 'blob-missing', 'refcount-mismatch', 'message-missing', 'unreadable',
  'lost-writes',
] as const;
export type VerifyProblemKind = (typeof VERIFY_PROBLEM_KINDS)[number];

export interface EntryRef {
  user: string;
  folder: string;
  uid: number;
}

export interface VerifyProblem {
  kind: VerifyProblemKind;
  detail: string;
  blobId?: string;
  messageId?: string;
  /** Archive entries this problem affects (at most MAX_AFFECTED listed; `affected` counts them all). */
  entries: EntryRef[];
  affected: number;
}

export interface FolderProblems {
  user: string;
  folder: string;
  /** Entries of this folder affected by at least one problem. */
  entries: number;
  kinds: Partial<Record<VerifyProblemKind, number>>;
}

export interface VerifyReport {
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  cancelled: boolean;
  checked: { blobs: number; blobBytes: number; messages: number; entries: number };
  /** Problems by kind (root causes; a corrupt blob counts once however many entries use it). */
  problems: Record<VerifyProblemKind, number>;
  total: number;
  byFolder: FolderProblems[];
  /** The first MAX_DETAILS problems in full. */
  details: VerifyProblem[];
  truncated: boolean;
}

export interface VerifyOptions {
  signal?: AbortSignal;
  /** Acknowledged writes the databases' write ledgers found lost (storage-health.ts). */
  writeLosses?: Array<{ store: string; batches: number; detectedAt: string; ledgerSeq: number; databaseSeq: number }>;
  progress?: (phase: string, detail: string) => void;
}

const MAX_DETAILS = 1000;
const MAX_AFFECTED = 20;
const MAX_FOLDERS = 10_000;
const LOOKUP_BATCH = 64;

export async function verifyArchive(store: ArchiveStore, options: VerifyOptions = {}): Promise<VerifyReport> {
  const reader = store.integrity();
  const startedAt = new Date().toISOString();
  const problems: VerifyProblem[] = [];
  let total = 0;
  const counts = Object.fromEntries(VERIFY_PROBLEM_KINDS.map((k) => [k, 0])) as Record<VerifyProblemKind, number>;
  const checked = { blobs: 0, blobBytes: 0, messages: 0, entries: 0 };
  const folders = new Map<string, FolderProblems>();
  const add = (p: Omit<VerifyProblem, 'entries' | 'affected'>): VerifyProblem => {
    const full: VerifyProblem = { ...p, entries: [], affected: 0 };
    counts[p.kind] += 1;
    total += 1;
    if (problems.length < MAX_DETAILS) problems.push(full);
    return full;
  };
  const affect = (p: VerifyProblem, e: EntryRef): void => {
    p.affected += 1;
    if (p.entries.length < MAX_AFFECTED) p.entries.push(e);
    const k = `${e.user}\u0000${e.folder}`;
    let f = folders.get(k);
    if (!f && folders.size < MAX_FOLDERS) folders.set(k, (f = { user: e.user, folder: e.folder, entries: 0, kinds: {} }));
    if (!f) return;
    f.entries += 1;
    f.kinds[p.kind] = (f.kinds[p.kind] ?? 0) + 1;
  };
  const cancelled = (): boolean => options.signal?.aborted === true;
  const tick = (phase: string, n: number): void => {
    if (n % 1000 === 0) options.progress?.(phase, `${n} checked`);
  };

  // 1. Blobs: every chunk decoded, the whole re-hashed.
  const refs = new Map<string, number>();
  const badBlobs = new Map<string, VerifyProblem>();
  options.progress?.('blobs', 'reading every blob');
  for await (const s of reader.blobs()) {
    if (cancelled()) break;
    if (!s.ok) {
      add({ kind: 'unreadable', detail: `${s.where}: ${s.error}` });
      continue;
    }
    const blob = s.value;
    refs.set(blob.sha256, blob.refs);
    const hash = createHash('sha256');
    let size = 0;
    let problem: Omit<VerifyProblem, 'entries' | 'affected'> | null = null;
    for (let n = 0; n < blob.chunks && !problem; n++) {
      try {
        const chunk = await reader.chunk(blob.sha256, n);
        if (!chunk) problem = { kind: 'chunk-missing', blobId: blob.sha256, detail: `Blob "${blob.sha256}" is missing chunk ${n} of ${blob.chunks}` };
        else {
          hash.update(chunk);
          size += chunk.length;
        }
      } catch (err) {
        problem = { kind: 'blob-corrupt', blobId: blob.sha256, detail: `Blob "${blob.sha256}" chunk ${n} does not decode: ${errorMessage(err)}` };
      }
    }
    if (!problem) {
      const actual = hash.digest('hex');
      if (actual !== blob.sha256) problem = { kind: 'blob-hash-mismatch', blobId: blob.sha256, detail: `Blob "${blob.sha256}" has SHA-256 "${actual}"` };
      else if (size !== blob.size) problem = { kind: 'blob-size-mismatch', blobId: blob.sha256, detail: `Blob "${blob.sha256}" has ${size} bytes, its manifest says ${blob.size}` };
    }
    if (problem) badBlobs.set(blob.sha256, add(problem));
    checked.blobs += 1;
    checked.blobBytes += size;
    tick('blobs', checked.blobs);
  }

  // 2. Messages: their blob exists; reference counts are exact.
  const used = new Map<string, number>();
  const badMessages = new Map<string, VerifyProblem>();
  options.progress?.('messages', 'checking blob references');
  for await (const s of reader.messages()) {
    if (cancelled()) break;
    if (!s.ok) {
      add({ kind: 'unreadable', detail: `${s.where}: ${s.error}` });
      continue;
    }
    const m = s.value;
    used.set(m.blobId, (used.get(m.blobId) ?? 0) + 1);
    const blobProblem = badBlobs.get(m.blobId);
    if (blobProblem) badMessages.set(m.id, blobProblem);
    else if (!refs.has(m.blobId) && !(await reader.blob(m.blobId))) {
      badMessages.set(m.id, add({ kind: 'blob-missing', blobId: m.blobId, messageId: m.id, detail: `Message "${m.id}" points to blob "${m.blobId}", which does not exist` }));
    }
    checked.messages += 1;
    tick('messages', checked.messages);
  }
  if (!cancelled()) {
    for (const [sha, stored] of refs) {
      const counted = used.get(sha) ?? 0;
      if (counted === stored) continue;
      const now = await reader.blob(sha);  // re-read: a commit or purge may have run since the scan
      if (!now || now.refs === counted) continue;
      const p = badBlobs.get(sha) ?? null;
      const found = add({ kind: 'refcount-mismatch', blobId: sha, detail: `Blob "${sha}" counts ${now.refs} references, ${counted} messages use it` });
      if (!p) badBlobs.set(sha, found);
    }
  }

  // 3. Entries: their message exists; entries whose message or blob is damaged are attributed to it.
  options.progress?.('entries', 'checking every archive entry');
  let batch: EntryRef[] = [];
  let batchIds: string[] = [];
  const flush = async (): Promise<void> => {
    const found = await Promise.all(batchIds.map((id) => store.getMessage(id).catch(() => null as MessageRecord | null)));
    for (const [i, e] of batch.entries()) {
      const id = batchIds[i] as string;
      const m = found[i];
      if (!m) {
        if (!(await store.getEntry(e.user, e.folder, e.uid))) continue;  // removed since the scan
        affect(add({ kind: 'message-missing', messageId: id, detail: `Entry ${e.user}/${e.folder}/${e.uid} points to message "${id}", which does not exist` }), e);
        continue;
      }
      const p = badMessages.get(id) ?? badBlobs.get(m.blobId);
      if (p) affect(p, e);
    }
    batch = [];
    batchIds = [];
  };
  for await (const s of reader.entries()) {
    if (cancelled()) break;
    if (!s.ok) {
      add({ kind: 'unreadable', detail: `${s.where}: ${s.error}` });
      continue;
    }
    batch.push({ user: s.value.user, folder: s.value.folder, uid: s.value.uid });
    batchIds.push(s.value.messageId);
    if (batch.length >= LOOKUP_BATCH) await flush();
    checked.entries += 1;
    tick('entries', checked.entries);
  }
  await flush();
  for (const l of options.writeLosses ?? []) {
    add({
      kind: 'lost-writes',
      detail: `Database "${l.store}" lost ${l.batches} acknowledged synced write batch${l.batches === 1 ? '' : 'es'} (its write ledger was at ${l.ledgerSeq}, the database at ${l.databaseSeq}; found ${l.detectedAt}): mail acknowledged in that span may be missing`,
    });
  }

  return {
    ok: total === 0 && !cancelled(),
    startedAt,
    finishedAt: new Date().toISOString(),
    cancelled: cancelled(),
    checked,
    problems: counts,
    total,
    byFolder: [...folders.values()].sort((a, b) => a.user.localeCompare(b.user) || a.folder.localeCompare(b.folder)),
    details: problems,
    truncated: total > MAX_DETAILS,
  };
}
