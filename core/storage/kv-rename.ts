// Renaming a user in the embedded archive: the archive is keyed by user name (KEYS.md), so every key
// that names the user (folder states, entries, "already filed" markers, per-entry retention, purge-index
// slots, message → entry references) moves to the new name, entries are rewritten with it, and legal
// holds and stored policies that list the old name list the new one. Everything goes into ONE synced
// batch with the directory change, built and written inside the single writer (no commit interleaves),
// so a crash leaves the user wholly under the old name or wholly under the new one. Cost: one scan of
// the user's keys and a batch proportional to their archive (about 5 keys per archived entry).
// Trusts its caller to hold the writer; hands back the ops to write.
import { PosternError } from '../errors.ts';
import type { HoldRecord, RetentionPolicy } from '../compliance/types.ts';
import type { KvEngine, KvOp } from './kv.ts';
import { keys, prefixEnd, splitKey } from './kv-keys.ts';
import type { ArchiveEntry } from './types.ts';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const parse = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;

/** A prefix "<tag>\0<user>\0" of the per-user key families. */
const userPrefix = (tag: string, user: string): string => `${tag}\u0000${user}\u0000`;

async function hasAny(kv: KvEngine, prefix: string): Promise<boolean> {
  for await (const _ of kv.entries({ gte: prefix, lt: prefixEnd(prefix), limit: 1 })) return true;
  return false;
}

/** The archive ops of renaming `from` to `to` (the directory's own keys are added by KvDirectory.rename). */
export async function renameArchiveOps(kv: KvEngine, from: string, to: string): Promise<KvOp[]> {
  for (const tag of ['f', 'e']) {
    if (await hasAny(kv, userPrefix(tag, to))) {
      throw new PosternError('CONFLICT', `"${to}" still has an archive (a user removed from the directory); pick another name`);
    }
  }
  const ops: KvOp[] = [];
  const move = (oldKey: string, newKey: string, value: Buffer): void => {
    ops.push({ type: 'del', key: oldKey }, { type: 'put', key: newKey, value });
  };
  const scan = async (tag: string, each: (rest: string[], key: string, value: Buffer) => Promise<void> | void): Promise<void> => {
    const prefix = userPrefix(tag, from);
    for await (const [k, v] of kv.entries({ gte: prefix, lt: prefixEnd(prefix) })) await each(splitKey(k).slice(2), k, v);
  };
  await scan('f', ([folder = ''], k, v) => move(k, keys.folder(to, folder), v));
  const refs: Array<{ messageId: string; folder: string }> = [];
  await scan('e', ([folder = '', uid = ''], k, v) => {
    const entry = parse<ArchiveEntry>(v);
    refs.push({ messageId: entry.messageId, folder });
    move(k, keys.entry(to, folder, parseInt(uid, 16)), json({ ...entry, user: to }));
  });
  await scan('h', ([folder = '', messageId = ''], k, v) => move(k, keys.holds(to, folder, messageId), v));
  await scan('rt', ([folder = '', uid = ''], k, v) => {
    const n = parseInt(uid, 16);
    move(k, keys.retention(to, folder, n), v);
    const { purgeAfter } = parse<{ purgeAfter: string | null }>(v);
    if (purgeAfter) move(keys.purgeIndex(purgeAfter, from, folder, n), keys.purgeIndex(purgeAfter, to, folder, n), Buffer.alloc(0));
  });
  // Message → entry references (entries archived before that index existed have none).
  const seen = new Set<string>();
  const unique = refs.filter((r) => {
    const k = `${r.messageId}\u0000${r.folder}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
  for (let i = 0; i < unique.length; i += 1000) {
    const batch = unique.slice(i, i + 1000);
    const values = await kv.getMany(batch.map((r) => keys.messageEntry(r.messageId, from, r.folder)));
    batch.forEach((r, j) => {
      const v = values[j];
      if (v) move(keys.messageEntry(r.messageId, from, r.folder), keys.messageEntry(r.messageId, to, r.folder), v);
    });
  }
  // Holds (also released ones, for the record) and stored policies that name the user.
  const swap = (names: string[] | undefined): string[] | undefined => (names?.includes(from) ? [...new Set(names.map((n) => (n === from ? to : n)))] : undefined);
  for await (const [k, v] of kv.entries({ gte: keys.legalHoldPrefix(), lt: prefixEnd(keys.legalHoldPrefix()) })) {
    const hold = parse<HoldRecord>(v);
    const users = swap(hold.scope.users);
    if (users) ops.push({ type: 'put', key: k, value: json({ ...hold, scope: { ...hold.scope, users } }) });
  }
  for await (const [k, v] of kv.entries({ gte: keys.policyPrefix(), lt: prefixEnd(keys.policyPrefix()) })) {
    const policy = parse<RetentionPolicy>(v);
    const users = swap(policy.match.users);
    if (users) ops.push({ type: 'put', key: k, value: json({ ...policy, match: { ...policy.match, users } }) });
  }
  return ops;
}
