// Which Object Lock retention each blob of the source needs in S3: the longest retainUntil (`rt\0` keys)
// of the entries referencing it, as the archive gives a blob at commit (pg-s3-engine.ts). Read from the
// source before any chunk is copied, so each object is PUT with its retention already on it. Legal holds
// are not computed here: the archive's own sweep (KvArchiveStore.syncLegalHolds) sets them on the target
// once the records are there. Holds in memory one string per retained entry, then one per blob.
import type { KvEngine } from '../storage/kv.ts';
import { keys, prefixEnd } from '../storage/kv-keys.ts';
import type { ArchiveEntry, MessageRecord } from '../storage/types.ts';

const parse = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;

/** Blob sha256 → retain-until (ISO), for blobs referenced by an entry with a retainUntil. */
export async function retentionByBlob(kv: KvEngine): Promise<Map<string, string>> {
  const rtPrefix = 'rt\u0000';
  const byEntry = new Map<string, string>();
  for await (const [k, v] of kv.entries({ gte: rtPrefix, lt: prefixEnd(rtPrefix) })) {
    const r = parse<{ retainUntil?: string | null }>(v);
    if (typeof r.retainUntil === 'string') byEntry.set(k.slice(rtPrefix.length), r.retainUntil);
  }
  const byMessage = new Map<string, string>();
  if (byEntry.size > 0) {
    const ePrefix = keys.entryAll();
    for await (const [k, v] of kv.entries({ gte: ePrefix, lt: prefixEnd(ePrefix) })) {
      const until = byEntry.get(k.slice(ePrefix.length));
      if (until === undefined) continue;
      const { messageId } = parse<ArchiveEntry>(v);
      const prev = byMessage.get(messageId);
      if (prev === undefined || until > prev) byMessage.set(messageId, until);
    }
  }
  const byBlob = new Map<string, string>();
  const ids = [...byMessage.keys()];
  for (let i = 0; i < ids.length; i += 500) {
    const slice = ids.slice(i, i + 500);
    const found = await kv.getMany(slice.map((id) => keys.message(id)));
    found.forEach((raw, j) => {
      if (!raw) return;
      const { blobId } = parse<MessageRecord>(raw);
      const until = byMessage.get(slice[j] as string) as string;
      const prev = byBlob.get(blobId);
      if (prev === undefined || until > prev) byBlob.set(blobId, until);
    });
  }
  return byBlob;
}
