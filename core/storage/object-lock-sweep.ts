// Brings the legal-hold flags of a WORM blob store (S3 Object Lock) in line with the archive's holds:
// after a hold is created or released, or hold-everything switched, every blob referenced by an entry
// that a hold covers gets the flag, and every other blob loses it. Commits set the flag themselves for
// new entries under an active hold (kv-writer.ts); this sweep is what clears it, and repairs a flag a
// crash between a hold change and its sweep left behind. Reads every entry once; one flag request
// per object whose flag changes, after one read of its current state.
import type { KvEngine, ObjectLock } from './kv.ts';
import { keys, prefixEnd } from './kv-keys.ts';
import type { ArchiveEntry, MessageRecord } from './types.ts';
import { chunkCount } from './kv-writer-group.ts';

export interface LegalHoldSweep {
  blobs: number;
  set: number;
  cleared: number;
}

export async function syncLegalHolds(
  kv: KvEngine, lock: ObjectLock, heldFor: (user: string, message: MessageRecord) => boolean,
  getMessage: (id: string) => Promise<MessageRecord | null>,
  /** Only set flags, reading and touching nothing else: for objects just written without any (postern migrate). */
  options: { setOnly?: boolean } = {},
): Promise<LegalHoldSweep> {
  const blobs = new Map<string, { chunks: number; held: boolean }>();
  const messages = new Map<string, MessageRecord | null>();
  const prefix = keys.entryAll();
  for await (const [, v] of kv.entries({ gte: prefix, lt: prefixEnd(prefix) })) {
    const entry = JSON.parse(v.toString('utf8')) as ArchiveEntry;
    let message = messages.get(entry.messageId);
    if (message === undefined) {
      message = await getMessage(entry.messageId);
      messages.set(entry.messageId, message);
    }
    if (!message) continue;
    const blob = blobs.get(message.blobId) ?? { chunks: chunkCount(message.size), held: false };
    blob.held ||= heldFor(entry.user, message);
    blobs.set(message.blobId, blob);
  }
  const out: LegalHoldSweep = { blobs: blobs.size, set: 0, cleared: 0 };
  for (const [sha, b] of blobs) {
    if (options.setOnly && !b.held) continue;
    if (await lock.setLegalHold(sha, b.chunks, b.held)) {
      if (b.held) out.set += 1;
      else out.cleared += 1;
    }
  }
  return out;
}
