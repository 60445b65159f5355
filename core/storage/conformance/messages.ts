// Conformance blocks 'commits and reads' and 'blobs': filing into folders with per-folder UIDs, entries, messages, and blob streaming.
// Trusts only the ArchiveStore interface and the shared fixtures; each test runs on a fresh store with alice and bob (or an empty one).
// Hands on nothing but registered node:test cases (UID order, folder counters, exact bytes for 0 B to 2.5 MiB blobs, shared blobs once).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { ArchiveEntry } from '../types.ts';
import { MiB, mailBytes, readStream, summary, commitOf, byPlace, INBOX, SENT, type SuiteHelpers } from './fixtures.ts';

export function describeCommitsAndReads({ withUsers }: SuiteHelpers): void {
  describe('commits and reads', () => {
    it('files a new message into several folders of several users with UIDs from 1, increasing per folder', () => withUsers(async (store) => {
      const first = await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice'), SENT('alice'), INBOX('bob')] }));
      assert.equal(first.messageId, 'msg-1');
      assert.equal(first.alreadyCommitted, false);
      assert.deepEqual([...first.entries].sort(byPlace), [
        { user: 'alice', folder: 'Inbox', uid: 1 }, { user: 'alice', folder: 'Sent', uid: 1 }, { user: 'bob', folder: 'Inbox', uid: 1 },
      ]);
      const second = await store.commit(commitOf({ n: 2, fileInto: [INBOX('alice'), INBOX('bob')] }));
      assert.deepEqual([...second.entries].sort(byPlace), [{ user: 'alice', folder: 'Inbox', uid: 2 }, { user: 'bob', folder: 'Inbox', uid: 2 }]);
      const third = await store.commit(commitOf({ n: 3, fileInto: [SENT('alice')] }));
      assert.deepEqual(third.entries, [{ user: 'alice', folder: 'Sent', uid: 2 }]);
      assert.equal(await store.captureCommitted('cap-1'), 'msg-1');
      assert.equal(await store.captureCommitted('cap-3'), 'msg-3');
      assert.equal(await store.captureCommitted('cap-unknown'), null);
    }));

    it('reports folders with uidValidity, uidNext and message counts', () => withUsers(async (store) => {
      // Starts with a character outside the BMP: a backend must not assume names sort below U+FFFF.
      const odd = '😀 Ünïcode/Archiv';
      await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice'), SENT('alice')] }));
      await store.commit(commitOf({ n: 2, fileInto: [INBOX('alice'), { user: 'alice', folder: odd }] }));
      await store.commit(commitOf({ n: 3, fileInto: [INBOX('alice')] }));
      const folders = (await store.folders('alice')).sort((a, b) => (a.folder < b.folder ? -1 : 1));
      assert.deepEqual(folders.map((f) => [f.user, f.folder, f.uidNext, f.messages]), [
        ['alice', 'Inbox', 4, 3], ['alice', 'Sent', 2, 1], ['alice', odd, 2, 1],
      ]);
      for (const f of folders) assert.ok(Number.isInteger(f.uidValidity) && f.uidValidity >= 1 && f.uidValidity <= 0xffffffff, `uidValidity ${f.uidValidity}`);
      assert.deepEqual((await store.listEntries('alice', odd)).map((e) => e.messageId), ['msg-2']);
      assert.deepEqual(await store.folders('bob'), []);
    }));

    it('lists entries in UID order with afterUid and limit', () => withUsers(async (store) => {
      for (let n = 1; n <= 5; n++) await store.commit(commitOf({ n, fileInto: [INBOX('alice')] }));
      await store.commit(commitOf({ n: 6, fileInto: [SENT('alice'), INBOX('bob')] }));
      const all = await store.listEntries('alice', 'Inbox');
      assert.deepEqual(all.map((e) => [e.uid, e.messageId]), [[1, 'msg-1'], [2, 'msg-2'], [3, 'msg-3'], [4, 'msg-4'], [5, 'msg-5']]);
      const uids = async (options: { afterUid?: number; limit?: number }): Promise<number[]> =>
        (await store.listEntries('alice', 'Inbox', options)).map((e) => e.uid);
      assert.deepEqual(await uids({ afterUid: 2 }), [3, 4, 5]);
      assert.deepEqual(await uids({ limit: 2 }), [1, 2]);
      assert.deepEqual(await uids({ afterUid: 2, limit: 2 }), [3, 4]);
      assert.deepEqual(await uids({ afterUid: 0 }), [1, 2, 3, 4, 5]);
      assert.deepEqual(await uids({ afterUid: 5 }), []);
      assert.deepEqual(await uids({ afterUid: 99 }), []);
      assert.deepEqual((await store.listEntries('alice', 'Sent')).map((e) => e.messageId), ['msg-6']);
      assert.deepEqual(await store.listEntries('alice', 'Nope'), []);
      assert.deepEqual(await store.listEntries('carol', 'Inbox'), []);
    }));

    it('gets one entry with its summary fields; a missing UID is null', () => withUsers(async (store) => {
      const bytes = mailBytes(1);
      await store.commit(commitOf({ n: 1, bytes, fileInto: [INBOX('alice')] }));
      await store.commit(commitOf({ n: 2, fileInto: [INBOX('alice')] }));
      const entry = await store.getEntry('alice', 'Inbox', 1);
      assert.ok(entry);
      const { internalDate, ...rest } = entry;
      assert.deepEqual(rest, {
        user: 'alice', folder: 'Inbox', uid: 1, messageId: 'msg-1', size: bytes.length,
        date: '2024-05-01T09:59:00.000Z', from: 'sender@example.org', subject: 'Message 1',
      } satisfies Omit<ArchiveEntry, 'internalDate'>);
      assert.ok(!Number.isNaN(Date.parse(internalDate)), `internalDate "${internalDate}" is a date`);
      assert.deepEqual(await store.getEntry('alice', 'Inbox', 2), (await store.listEntries('alice', 'Inbox'))[1]);
      assert.equal(await store.getEntry('alice', 'Inbox', 3), null);
      assert.equal(await store.getEntry('alice', 'Inbox', 0), null);
      assert.equal(await store.getEntry('alice', 'Sent', 1), null);
      assert.equal(await store.getEntry('bob', 'Inbox', 1), null);
    }));

    it('tells the UID of a message in a folder, or null where it is not filed', () => withUsers(async (store) => {
      await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice')] }));
      await store.commit(commitOf({ n: 2, fileInto: [INBOX('alice'), SENT('bob')] }));
      assert.equal(await store.entryUidOf('alice', 'Inbox', 'msg-2'), 2);
      assert.equal(await store.entryUidOf('bob', 'Sent', 'msg-2'), 1);
      assert.equal(await store.entryUidOf('bob', 'Inbox', 'msg-2'), null);
      assert.equal(await store.entryUidOf('alice', 'Sent', 'msg-1'), null);
      assert.equal(await store.entryUidOf('alice', 'Inbox', 'msg-unknown'), null);
      await store.retention().deleteEntries([{ user: 'alice', folder: 'Inbox', uid: 2 }]);
      assert.equal(await store.entryUidOf('alice', 'Inbox', 'msg-2'), null, 'a deleted entry is gone');
    }));

    it('keeps the message with its summary, blob id, size and capture (provenance)', () => withUsers(async (store) => {
      const bytes = mailBytes(7);
      const c = commitOf({ n: 7, bytes, fileInto: [INBOX('alice'), INBOX('bob')], rcptTo: ['alice@example.com', 'bob@example.com'] });
      await store.commit(c);
      const m = await store.getMessage('msg-7');
      assert.ok(m);
      assert.equal(m.id, 'msg-7');
      assert.equal(m.blobId, createHash('sha256').update(bytes).digest('hex'));
      assert.equal(m.size, bytes.length);
      assert.deepEqual(
        { date: m.date, from: m.from, to: m.to, cc: m.cc, subject: m.subject, messageIdHeader: m.messageIdHeader },
        summary(7),
      );
      assert.deepEqual(m.captures, [c.capture]);
      assert.ok(!Number.isNaN(Date.parse(m.archivedAt)), `archivedAt "${m.archivedAt}" is a date`);
      assert.equal(await store.getMessage('msg-unknown'), null);
    }));

    it('stores attributes with a new message and keeps the first ones when a copy merges in', () => withUsers(async (store) => {
      const attributes = { imap: { envelope: '(NIL "Message 1" NIL NIL NIL NIL NIL NIL NIL NIL)', parts: { n: [1, 2, { deep: 'ü' }] }, headerSize: 74 } };
      await store.commit({ ...commitOf({ n: 1, fileInto: [INBOX('alice')] }), attributes });
      await store.commit({ ...commitOf({ n: 2, captureId: 'cap-2', fileInto: [INBOX('bob')], mergeInto: 'msg-1' }), attributes: { imap: 'other' } });
      const m = await store.getMessage('msg-1');
      assert.ok(m);
      assert.deepEqual(m.attributes, attributes);
      assert.equal(m.captures.length, 2);
      await store.commit(commitOf({ n: 3, fileInto: [INBOX('alice')] }));
      assert.equal((await store.getMessage('msg-3'))?.attributes, undefined, 'a message committed without attributes has none');
    }));

    it('sets one attribute of a stored message later, keeping the others, its captures and a concurrent merge', () => withUsers(async (store) => {
      await store.commit({ ...commitOf({ n: 1, fileInto: [INBOX('alice')] }), attributes: { keep: { a: 1 }, imap: 'old' } });
      const before = await store.getMessage('msg-1');
      await Promise.all([
        store.setMessageAttribute('msg-1', 'imap', { view: 'crlf', size: 5 }),
        store.commit(commitOf({ n: 2, captureId: 'cap-2', fileInto: [INBOX('bob')], mergeInto: 'msg-1' })),
      ]);
      const m = await store.getMessage('msg-1');
      assert.ok(m && before);
      assert.deepEqual(m.attributes, { keep: { a: 1 }, imap: { view: 'crlf', size: 5 } });
      assert.equal(m.captures.length, 2, 'the merge running alongside kept its capture');
      assert.equal(m.blobId, before.blobId);
      assert.equal(m.size, before.size);
      await store.setMessageAttribute('msg-3', 'imap', 1).then(() => assert.fail('unknown message'), (err: Error & { code?: string }) => assert.equal(err.code, 'NOT_FOUND'));
      await store.setMessageAttribute('msg-1', 'Bad Name', 1).then(() => assert.fail('bad name'), (err: Error & { code?: string }) => assert.equal(err.code, 'INVALID_INPUT'));
    }));
  });
}

export function describeBlobs({ withStore, withUsers }: SuiteHelpers): void {
  describe('blobs', () => {
    it('streams the exact original bytes of a small blob', () => withUsers(async (store) => {
      const bytes = Buffer.concat([mailBytes(1), Buffer.from([0, 0xff, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a, 0x80])]);
      await store.commit(commitOf({ n: 1, bytes, fileInto: [INBOX('alice')] }));
      const m = await store.getMessage('msg-1');
      assert.ok(m);
      const stream = await store.openBlob(m.blobId);
      assert.ok(stream);
      assert.ok((await readStream(stream)).equals(bytes));
    }));

    it('streams the exact bytes of a 2.5 MiB blob spanning several chunks', () => withUsers(async (store) => {
      const bytes = randomBytes(Math.floor(2.5 * MiB));
      const sha = createHash('sha256').update(bytes).digest('hex');
      await store.commit(commitOf({ n: 1, bytes, fileInto: [INBOX('alice')] }));
      const stream = await store.openBlob(sha);
      assert.ok(stream);
      const got = await readStream(stream);
      assert.equal(got.length, bytes.length);
      assert.equal(createHash('sha256').update(got).digest('hex'), sha);
      assert.ok(got.equals(bytes));
      assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 1, entries: 1, blobs: 1, blobBytes: bytes.length });
    }));

    it('streams a blob of exactly 1 MiB and one of 1 MiB + 1 byte', () => withUsers(async (store) => {
      const exact = randomBytes(MiB);
      const over = randomBytes(MiB + 1);
      await store.commit(commitOf({ n: 1, bytes: exact, fileInto: [INBOX('alice')] }));
      await store.commit(commitOf({ n: 2, bytes: over, fileInto: [INBOX('alice')] }));
      for (const bytes of [exact, over]) {
        const stream = await store.openBlob(createHash('sha256').update(bytes).digest('hex'));
        assert.ok(stream);
        assert.ok((await readStream(stream)).equals(bytes));
      }
    }));

    it('stores and streams a 0-byte blob', () => withUsers(async (store) => {
      const empty = Buffer.alloc(0);
      const r = await store.commit(commitOf({ n: 1, bytes: empty, fileInto: [INBOX('alice')] }));
      assert.deepEqual(r.entries, [{ user: 'alice', folder: 'Inbox', uid: 1 }]);
      const m = await store.getMessage('msg-1');
      assert.ok(m);
      assert.equal(m.size, 0);
      assert.equal(m.blobId, createHash('sha256').update(empty).digest('hex'));
      const stream = await store.openBlob(m.blobId);
      assert.ok(stream, 'the empty blob exists');
      assert.equal((await readStream(stream)).length, 0);
      assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 1, entries: 1, blobs: 1, blobBytes: 0 });
    }));

    it('answers null for an unknown blob', () => withStore(async ({ store }) => {
      assert.equal(await store.openBlob(createHash('sha256').update('nothing').digest('hex')), null);
    }));

    it('stores the same bytes once when two messages share them', () => withUsers(async (store) => {
      const bytes = mailBytes('shared');
      await store.commit(commitOf({ n: 1, bytes, fileInto: [INBOX('alice')] }));
      await store.commit(commitOf({ n: 2, bytes, fileInto: [INBOX('bob')] }));
      const [m1, m2] = [await store.getMessage('msg-1'), await store.getMessage('msg-2')];
      assert.ok(m1 && m2);
      assert.equal(m1.blobId, m2.blobId);
      assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 2, entries: 2, blobs: 1, blobBytes: bytes.length });
      const stream = await store.openBlob(m1.blobId);
      assert.ok(stream);
      assert.ok((await readStream(stream)).equals(bytes));
    }));

    it('stores the same bytes once when two messages share them concurrently (small and large)', () => withUsers(async (store) => {
      const small = mailBytes('shared');
      const large = randomBytes(Math.floor(1.5 * MiB));
      await Promise.all([
        store.commit(commitOf({ n: 1, bytes: small, fileInto: [INBOX('alice')] })),
        store.commit(commitOf({ n: 2, bytes: small, fileInto: [INBOX('bob')] })),
        store.commit(commitOf({ n: 3, bytes: large, fileInto: [INBOX('alice')] })),
        store.commit(commitOf({ n: 4, bytes: large, fileInto: [INBOX('bob')] })),
      ]);
      assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 4, entries: 4, blobs: 2, blobBytes: small.length + large.length });
      for (const bytes of [small, large]) {
        const stream = await store.openBlob(createHash('sha256').update(bytes).digest('hex'));
        assert.ok(stream);
        assert.ok((await readStream(stream)).equals(bytes));
      }
    }));
  });
}
