// The pure parts of the archive writer's commit groups (core/storage/kv-writer.ts): the group's state,
// its single lookup of captures/identities/blob manifests, and the ops each commit adds (message,
// blob reference, entries, folder states, counters). No I/O here: the writer reads and writes.
// Trusts: the writer's validated commits. Hands on: KvOps for the writer's one synced batch.
import type { KvOp } from './kv.ts';
import { keys } from './kv-keys.ts';
import type { KvRetention } from './kv-retention.ts';
import type { ArchiveCommit, ArchiveEntry, ArchiveStats, CommitResult, MessageRecord } from './types.ts';
import type { EntryRetention } from '../compliance/types.ts';

export const CHUNK_SIZE = 1024 * 1024;

/** How many chunks a blob of this size is stored in (an empty blob still has one). */
export function chunkCount(size: number): number {
  return Math.max(1, Math.ceil(size / CHUNK_SIZE));
}

export interface FolderState { uidValidity: number; uidNext: number; messages: number }
export interface BlobManifest { size: number; chunks: number; refs: number }
/** Counters kept in the same batch as the data they count (users are counted on demand). */
export type StoredStats = Omit<ArchiveStats, 'users'>;

/** An entry a message already has in a folder (null: its index points at no entry), with its retention. */
export type Filed = { entry: ArchiveEntry; retention: EntryRetention | null } | null;

export interface QueuedCommit {
  commit: ArchiveCommit;
  /** The blob's single chunk, encoded (compressed), when it fits one; large blobs are pre-written. */
  inline: Buffer | null;
  resolve: (r: CommitResult) => void;
  reject: (e: Error) => void;
}

export const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
export const parse = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;

/** What a group being built holds: its lookups, the state its commits change, and the ops so far. */
export interface Group {
  folders: Map<string, FolderState>; blobs: Map<string, BlobManifest>; manifests: Map<string, Buffer | null>;
  messages: Map<string, MessageRecord>; captures: Map<string, string>; replayed: Set<string>;
  byIdentity: Map<string, string>; filed: Map<string, Filed>; stats: StoredStats; ops: KvOp[];
}

export function newGroup(stats: StoredStats): Group {
  return {
    folders: new Map(), blobs: new Map(), manifests: new Map(), messages: new Map(), captures: new Map(), replayed: new Set(),
    byIdentity: new Map(), filed: new Map(), stats: { ...stats }, ops: [],
  };
}

/**
 * The keys of the group's single lookup: was each capture committed before, which message (if any)
 * already owns each identity key the commits bring, and the manifest of each blob a new message may
 * reference (nothing else writes these keys while the group is built).
 */
export function groupLookup(group: QueuedCommit[]): { keys: string[]; identities: string[]; shas: string[] } {
  const identities = [...new Set(group.flatMap((q) => q.commit.identities ?? []))];
  const shas = [...new Set(group.filter((q) => !q.commit.mergeInto).map((q) => q.commit.blob.sha256))];
  return { keys: [...group.map((q) => keys.capture(q.commit.capture.id)), ...identities.map(keys.identity), ...shas.map(keys.blob)], identities, shas };
}

export function applyLookup(g: Group, group: QueuedCommit[], lookup: { identities: string[]; shas: string[] }, known: Array<Buffer | null>): void {
  group.forEach((q, i) => {
    const cap = known[i];
    if (cap) g.captures.set(q.commit.capture.id, cap.toString('utf8'));
  });
  lookup.identities.forEach((id, i) => {
    const owner = known[group.length + i];
    if (owner) g.byIdentity.set(id, owner.toString('utf8'));
  });
  lookup.shas.forEach((sha, i) => {
    g.manifests.set(sha, known[group.length + lookup.identities.length + i] ?? null);
  });
  for (const id of g.captures.keys()) g.replayed.add(id);
}

/** Every op of the group: the commits' own, then messages, blob manifests, folder states, counters. */
export function groupOps(g: Group): KvOp[] {
  const { ops } = g;
  for (const [id, m] of g.messages) ops.push({ type: 'put', key: keys.message(id), value: json(m) });
  for (const [sha, b] of g.blobs) ops.push({ type: 'put', key: keys.blob(sha), value: json(b) });
  for (const [k, f] of g.folders) {
    const [user, folder] = k.split('\u0000') as [string, string];
    ops.push({ type: 'put', key: keys.folder(user, folder), value: json(f) });
  }
  ops.push({ type: 'put', key: keys.stats(), value: json(g.stats) });
  return ops;
}

/** The message an identity key of this commit already belongs to (in storage or earlier in the group). */
export function ownerOf(commit: ArchiveCommit, g: Group): string | undefined {
  for (const id of commit.identities ?? []) {
    const owner = g.byIdentity.get(id);
    if (owner !== undefined) return owner;
  }
  return undefined;
}

export function newMessage(commit: ArchiveCommit, id: string): MessageRecord {
  return {
    id, blobId: commit.blob.sha256, size: commit.blob.size, archivedAt: new Date().toISOString(), ...commit.summary, captures: [], flags: [],
    ...(commit.attributes && Object.keys(commit.attributes).length > 0 ? { attributes: commit.attributes } : {}),
  };
}

/** The message with this capture added and its flags merged (a flag list that grew is written). */
export function withCapture(message: MessageRecord, targetId: string, commit: ArchiveCommit, g: Group, local: KvOp[]): MessageRecord {
  const flags = [...new Set([...message.flags, ...(commit.flags ?? [])])];
  if (flags.length > message.flags.length) {
    if (message.flags.length === 0) g.stats.flagged += 1;
    local.push({ type: 'put', key: keys.flagged(targetId), value: json({ flags, archivedAt: message.archivedAt, subject: message.subject }) });
  }
  return { ...message, flags, captures: [...message.captures, commit.capture] };
}

/** A new message's blob: one more reference to a stored blob, or a new blob (its chunk written now when inline). */
export function blobChange(manifest: BlobManifest | null, q: QueuedCommit, g: Group, local: KvOp[]): BlobManifest {
  if (manifest) return { ...manifest, refs: manifest.refs + 1 };
  const { sha256, size } = q.commit.blob;
  if (q.inline) local.push({ type: 'put', key: keys.chunk(sha256, 0), value: q.inline }); // already encoded
  g.stats.blobs += 1;
  g.stats.blobBytes += size;
  return { size, chunks: chunkCount(size), refs: 1 };
}

/** A new entry in a folder: the next UID of `state` (advanced here), its entry and hold-index keys. */
export function newEntry(f: ArchiveCommit['fileInto'][number], state: FolderState, messageId: string, archivedAt: string, message: MessageRecord, local: KvOp[]): ArchiveEntry {
  const uid = state.uidNext;
  state.uidNext += 1;
  state.messages += 1;
  const entry: ArchiveEntry = {
    user: f.user, folder: f.folder, uid, messageId, internalDate: archivedAt,
    size: message.size, date: message.date, from: message.from, subject: message.subject,
  };
  local.push({ type: 'put', key: keys.entry(f.user, f.folder, uid), value: json(entry) });
  local.push({ type: 'put', key: keys.holds(f.user, f.folder, messageId), value: Buffer.from(String(uid)) });
  return entry;
}

/** Everything for this commit is decided: its ops and state changes join the group. */
export function publish(
  g: Group, commit: ArchiveCommit, targetId: string, message: MessageRecord, isNew: boolean, blobDelta: BlobManifest | null,
  local: KvOp[], folderUpdates: Map<string, FolderState>, newFiled: Map<string, Filed>, retention: KvRetention,
): void {
  local.push({ type: 'put', key: keys.capture(commit.capture.id), value: Buffer.from(targetId) });
  // Identity keys nobody owns yet now point at this message; later copies merge into it.
  const claimed = (commit.identities ?? []).filter((id) => !g.byIdentity.has(id));
  for (const id of claimed) local.push({ type: 'put', key: keys.identity(id), value: Buffer.from(targetId) }, retention.identityOp(targetId, id));
  pushAll(g.ops, local);
  for (const [k, s] of folderUpdates) g.folders.set(k, s);
  if (blobDelta) g.blobs.set(commit.blob.sha256, blobDelta);
  g.messages.set(targetId, message);
  g.captures.set(commit.capture.id, targetId);
  for (const id of claimed) g.byIdentity.set(id, targetId);
  for (const [k, v] of newFiled) g.filed.set(k, v);
  if (isNew) g.stats.messages += 1;
}

export function pushAll(to: KvOp[], from: KvOp[]): void {
  for (const op of from) to.push(op);
}

export function dedupeTargets(targets: ArchiveCommit['fileInto']): ArchiveCommit['fileInto'] {
  const seen = new Set<string>();
  return targets.filter((t) => {
    const k = `${t.user}\u0000${t.folder}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
