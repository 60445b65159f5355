// Conformance block 'idempotency and dedup': flags, identity keys, capture replays and merges of copies into an existing message.
// Trusts only the ArchiveStore interface and the shared fixtures; each test runs on a fresh store with alice and bob.
// Hands on nothing but registered node:test cases (a capture commits once, a merge files only where the message is not yet held).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { blobIdentity } from '../types.ts';
import { blobOf, mailBytes, readStream, commitOf, byPlace, INBOX, SENT, type SuiteHelpers } from './fixtures.ts';

export function describeIdempotency({ withUsers }: SuiteHelpers): void {
  describe('idempotency and dedup', () => {
    it('flags are kept on the message, merged across captures, counted and listed', () => withUsers(async (store) => {
      await store.commit({ ...commitOf({ n: 'f1', fileInto: [INBOX('alice')] }), flags: ['journal-malformed: no message/rfc822 part'] });
      await store.commit({ ...commitOf({ n: 'f2', fileInto: [INBOX('bob')], captureId: 'cap-f2', mergeInto: 'msg-f1' }), flags: ['journal-malformed: garbled envelope line 3'] });
      await store.commit(commitOf({ n: 'plain', fileInto: [INBOX('alice')] }));
      const m = await store.getMessage('msg-f1');
      assert.deepEqual(m?.flags, ['journal-malformed: no message/rfc822 part', 'journal-malformed: garbled envelope line 3']);
      assert.deepEqual((await store.getMessage('msg-plain'))?.flags, []);
      assert.equal((await store.stats()).flagged, 1);
      const listed = await store.listFlagged();
      assert.deepEqual(listed.map((f) => [f.messageId, f.flags.length, f.subject]), [['msg-f1', 2, 'Message f1']]);
    }));

    it('identity keys merge a copy into the first message with the same bytes, also within one batch', () => withUsers(async (store) => {
      const bytes = mailBytes('twin');
      const [a, b] = await Promise.all([
        store.commit({ ...commitOf({ n: 't1', bytes, fileInto: [INBOX('alice')] }), identities: [blobIdentity(blobOf(bytes).sha256)] }),
        store.commit({ ...commitOf({ n: 't2', bytes, fileInto: [INBOX('bob'), INBOX('alice')] }), identities: [blobIdentity(blobOf(bytes).sha256)] }),
      ]);
      assert.equal(a.messageId, 'msg-t1');
      assert.equal(b.messageId, 'msg-t1', 'the second copy merged into the first');
      assert.deepEqual(b.entries.map((e) => e.user), ['bob'], 'alice already holds it');
      const later = await store.commit({ ...commitOf({ n: 't3', bytes, fileInto: [INBOX('bob')] }), identities: [blobIdentity(blobOf(bytes).sha256)] });
      assert.equal(later.messageId, 'msg-t1');
      assert.deepEqual(later.entries, []);
      assert.equal((await store.getMessage('msg-t1'))?.captures.length, 3);
      const other = await store.commit({ ...commitOf({ n: 't4', fileInto: [INBOX('bob')] }), identities: [blobIdentity(blobOf(mailBytes('t4')).sha256)] });
      assert.equal(other.messageId, 'msg-t4', 'different bytes make a new message');
      const stats = await store.stats();
      assert.equal(stats.messages, 2);
      assert.equal(stats.blobs, 2);
    }));

    it('messageByIdentity finds the message that claimed an identity; merges claim new keys too', () => withUsers(async (store) => {
      await store.commit({ ...commitOf({ n: 'b1', fileInto: [INBOX('alice')] }), identities: ['k:one'] });
      const copy = await store.commit({ ...commitOf({ n: 'b2', fileInto: [INBOX('bob')] }), identities: ['k:two', 'k:one'] });
      assert.equal(copy.messageId, 'msg-b1', 'merged by the shared key');
      assert.equal(await store.messageByIdentity('k:one'), 'msg-b1');
      assert.equal(await store.messageByIdentity('k:two'), 'msg-b1', 'the merged copy taught the message a new key');
      assert.equal(await store.messageByIdentity('k:none'), null);
      const listed: string[] = [];
      for await (const id of store.listIdentities('k:')) listed.push(id);
      assert.deepEqual(listed, ['k:one', 'k:two']);
    }));

    it('commits the same capture id once: a replay reports alreadyCommitted and changes nothing', () => withUsers(async (store) => {
      const c = commitOf({ n: 1, fileInto: [INBOX('alice'), INBOX('bob')] });
      const first = await store.commit(c);
      const before = await store.stats();
      const again = await store.commit(c);
      assert.deepEqual(again, { messageId: 'msg-1', entries: [], alreadyCommitted: true });
      // A replay under a different message id and other folders is still the same capture.
      const other = await store.commit({ ...commitOf({ n: 2, fileInto: [SENT('alice')] }), capture: c.capture });
      assert.deepEqual(other, { messageId: 'msg-1', entries: [], alreadyCommitted: true });
      assert.deepEqual(await store.stats(), before);
      assert.equal(first.entries.length, 2);
      assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => e.uid), [1]);
      assert.deepEqual(await store.listEntries('alice', 'Sent'), []);
      assert.equal(await store.getMessage('msg-2'), null);
      assert.equal((await store.getMessage('msg-1'))?.captures.length, 1);
      assert.deepEqual((await store.folders('alice')).map((f) => [f.folder, f.uidNext, f.messages]), [['Inbox', 2, 1]]);
    }));

    it('commits the same capture id once when both commits run concurrently', () => withUsers(async (store) => {
      const c = commitOf({ n: 1, fileInto: [INBOX('alice')] });
      const results = await Promise.all([store.commit(c), store.commit(c), store.commit(c)]);
      assert.deepEqual(results.map((r) => r.alreadyCommitted).sort(), [false, true, true]);
      assert.ok(results.every((r) => r.messageId === 'msg-1'));
      assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => e.uid), [1]);
      assert.equal((await store.getMessage('msg-1'))?.captures.length, 1);
      assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 1, entries: 1, blobs: 1, blobBytes: mailBytes(1).length });
    }));

    it('merges a capture into an existing message, filing it only where it is not yet held', () => withUsers(async (store) => {
      const original = mailBytes(1);
      const c1 = commitOf({ n: 1, bytes: original, fileInto: [INBOX('alice')] });
      await store.commit(c1);
      await store.commit(commitOf({ n: 2, fileInto: [INBOX('bob')] }));
      const before = await store.stats();
      // The same mail journaled again: other transport headers, so other bytes; dedup found msg-1.
      const copy = Buffer.concat([Buffer.from('Received: from relay.example.net\r\n'), original]);
      const c2 = commitOf({
        n: 'copy', bytes: copy, captureId: 'cap-copy', messageId: 'msg-copy', mergeInto: 'msg-1',
        fileInto: [INBOX('alice'), INBOX('bob'), SENT('alice')], rcptTo: ['bob@example.com'],
      });
      const r = await store.commit(c2);
      assert.equal(r.messageId, 'msg-1');
      assert.equal(r.alreadyCommitted, false);
      assert.deepEqual([...r.entries].sort(byPlace), [{ user: 'alice', folder: 'Sent', uid: 1 }, { user: 'bob', folder: 'Inbox', uid: 2 }]);
      const m = await store.getMessage('msg-1');
      assert.ok(m);
      assert.deepEqual(m.captures, [c1.capture, c2.capture]);
      assert.equal(m.blobId, c1.blob.sha256);
      assert.equal(m.size, original.length);
      assert.equal(await store.getMessage('msg-copy'), null);
      assert.equal(await store.captureCommitted('cap-copy'), 'msg-1');
      assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => [e.uid, e.messageId]), [[1, 'msg-1']]);
      assert.deepEqual((await store.listEntries('bob', 'Inbox')).map((e) => [e.uid, e.messageId]), [[1, 'msg-2'], [2, 'msg-1']]);
      assert.deepEqual(await store.stats(), { ...before, entries: before.entries + 2 });

      // A further copy for folders that all hold it already: a capture, no entries.
      const c3 = commitOf({ n: 'copy2', bytes: original, captureId: 'cap-copy2', mergeInto: 'msg-1', fileInto: [INBOX('alice'), SENT('alice')] });
      const r3 = await store.commit(c3);
      assert.deepEqual(r3, { messageId: 'msg-1', entries: [], alreadyCommitted: false });
      assert.equal((await store.getMessage('msg-1'))?.captures.length, 3);
      assert.deepEqual(await store.stats(), { ...before, entries: before.entries + 2 });
      const stream = await store.openBlob(m.blobId);
      assert.ok(stream);
      assert.ok((await readStream(stream)).equals(original));
    }));

    it('merges concurrent copies of a new message without filing it twice', () => withUsers(async (store) => {
      const bytes = mailBytes(1);
      await store.commit(commitOf({ n: 1, bytes, fileInto: [INBOX('alice')] }));
      const copies = [2, 3, 4].map((k) => commitOf({ n: k, bytes, captureId: `cap-copy-${k}`, mergeInto: 'msg-1', fileInto: [INBOX('alice'), INBOX('bob')] }));
      const results = await Promise.all(copies.map((c) => store.commit(c)));
      assert.deepEqual(results.flatMap((r) => r.entries), [{ user: 'bob', folder: 'Inbox', uid: 1 }]);
      assert.deepEqual((await store.listEntries('bob', 'Inbox')).map((e) => e.messageId), ['msg-1']);
      assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => e.messageId), ['msg-1']);
      assert.equal((await store.getMessage('msg-1'))?.captures.length, 4);
      assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 1, entries: 2, blobs: 1, blobBytes: bytes.length });
    }));

    it('files a message once when fileInto names the same user and folder twice', () => withUsers(async (store) => {
      const r = await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice'), INBOX('alice'), { user: 'alice', folder: 'Inbox' }] }));
      assert.deepEqual(r.entries, [{ user: 'alice', folder: 'Inbox', uid: 1 }]);
      assert.equal((await store.listEntries('alice', 'Inbox')).length, 1);
      assert.deepEqual((await store.folders('alice')).map((f) => [f.folder, f.uidNext, f.messages]), [['Inbox', 2, 1]]);
      assert.equal((await store.stats()).entries, 1);
    }));
  });
}
