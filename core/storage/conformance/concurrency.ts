// Conformance block 'concurrency and durability': concurrent UID allocation, close/reopen persistence and exact stats counting.
// Trusts only the ArchiveStore interface and the shared fixtures; reopen() is called only after the suite has closed the store.
// Hands on nothing but registered node:test cases (UIDs 1..n once each, counters and uidValidity kept across reopen).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { MiB, mailBytes, readStream, commitOf, byPlace, INBOX, SENT, type SuiteHelpers } from './fixtures.ts';

export function describeConcurrency({ withStore, withUsers }: SuiteHelpers): void {
  describe('concurrency and durability', () => {
    it('gives 50 concurrent commits into one folder the UIDs 1..50, each once, listed in UID order', () => withUsers(async (store) => {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.commit(commitOf({ n: i + 1, fileInto: [INBOX('alice')] }))));
      const uidOf = new Map<string, number>();
      for (const r of results) {
        assert.equal(r.entries.length, 1);
        const e = r.entries[0];
        assert.ok(e);
        assert.equal(e.folder, 'Inbox');
        uidOf.set(r.messageId, e.uid);
      }
      assert.deepEqual([...uidOf.values()].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
      const listed = await store.listEntries('alice', 'Inbox');
      assert.deepEqual(listed.map((e) => e.uid), Array.from({ length: 50 }, (_, i) => i + 1));
      for (const e of listed) assert.equal(uidOf.get(e.messageId), e.uid, `entry ${e.uid} points at the message that was given it`);
      assert.deepEqual((await store.folders('alice')).map((f) => [f.folder, f.uidNext, f.messages]), [['Inbox', 51, 50]]);
      assert.equal((await store.stats()).entries, 50);
    }));

    it('keeps data and UID counters across close and reopen', () => withStore(async (h) => {
      const store = h.store;
      const alice = await store.addUser({ name: 'alice', addresses: ['Alice@example.com'] });
      const big = randomBytes(Math.floor(2.5 * MiB));
      await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice'), SENT('alice')] }));
      await store.commit(commitOf({ n: 2, bytes: big, fileInto: [INBOX('alice')] }));
      await store.commit(commitOf({ n: 3, fileInto: [INBOX('alice')] }));
      const folders = await store.folders('alice');
      const entries = await store.listEntries('alice', 'Inbox');
      const message = await store.getMessage('msg-2');
      const stats = await store.stats();
      await store.close();

      const again = await h.reopen();
      assert.deepEqual(await again.getUser('alice'), alice);
      assert.equal(await again.userByAddress('ALICE@EXAMPLE.COM'), 'alice');
      assert.deepEqual(await again.folders('alice'), folders);
      assert.deepEqual(await again.listEntries('alice', 'Inbox'), entries);
      assert.deepEqual(await again.getMessage('msg-2'), message);
      assert.deepEqual(await again.stats(), stats);
      assert.equal(await again.captureCommitted('cap-3'), 'msg-3');
      const stream = await again.openBlob(createHash('sha256').update(big).digest('hex'));
      assert.ok(stream);
      assert.ok((await readStream(stream)).equals(big));

      assert.deepEqual(await again.commit(commitOf({ n: 1, fileInto: [INBOX('alice')] })), { messageId: 'msg-1', entries: [], alreadyCommitted: true });
      const next = await again.commit(commitOf({ n: 4, fileInto: [INBOX('alice'), SENT('alice')] }));
      assert.deepEqual([...next.entries].sort(byPlace), [{ user: 'alice', folder: 'Inbox', uid: 4 }, { user: 'alice', folder: 'Sent', uid: 2 }]);
      const after = await again.folders('alice');
      for (const f of after) {
        const was = folders.find((x) => x.folder === f.folder);
        assert.ok(was);
        assert.equal(f.uidValidity, was.uidValidity, `uidValidity of ${f.folder} unchanged`);
      }
      const fourth = mailBytes(4).length;
      assert.deepEqual(await again.stats(), { ...stats, messages: stats.messages + 1, entries: stats.entries + 2, blobs: stats.blobs + 1, blobBytes: stats.blobBytes + fourth });
    }));

    it('counts users, messages, entries, blobs and blob bytes exactly', () => withStore(async ({ store }) => {
      assert.deepEqual(await store.stats(), { users: 0, flagged: 0, messages: 0, entries: 0, blobs: 0, blobBytes: 0 });
      await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
      await store.addUser({ name: 'bob', addresses: ['bob@example.com'] });
      await store.addUser({ name: 'carol', addresses: [] });
      assert.deepEqual(await store.stats(), { users: 3, flagged: 0, messages: 0, entries: 0, blobs: 0, blobBytes: 0 });
      const a = mailBytes('a');
      const b = randomBytes(MiB + 17);
      const c1 = commitOf({ n: 1, bytes: a, fileInto: [INBOX('alice'), INBOX('bob')] });
      await store.commit(c1); // +1 message, +2 entries, +1 blob
      await store.commit(commitOf({ n: 2, bytes: b, fileInto: [SENT('alice')] })); // +1, +1, +1
      await store.commit(commitOf({ n: 3, bytes: a, fileInto: [SENT('bob')] })); // +1, +1, same blob
      await store.commit(c1); // replay: nothing
      await store.commit(commitOf({ n: 4, bytes: a, mergeInto: 'msg-2', fileInto: [SENT('alice'), INBOX('carol')] })); // +0, +1
      assert.deepEqual(await store.stats(), { users: 3, flagged: 0, messages: 3, entries: 5, blobs: 2, blobBytes: a.length + b.length });
    }));
  });
}
