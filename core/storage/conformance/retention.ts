// Conformance block 'retention and legal hold': per-entry retention from commits and policies, extension
// only, holds (users, addresses, date range, query, hold-everything) enforced by the store itself on every
// deletion path, deletion removing messages and blobs at reference count zero, and the bounded purge sweep.
// Trusts only the ArchiveStore interface and the shared fixtures; hands on registered node:test cases.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isPosternError } from '../../errors.ts';
import type { ArchiveStore } from '../types.ts';
import type { EntryRef } from '../../compliance/types.ts';
import { mailBytes, commitOf, INBOX, SENT, type SuiteHelpers } from './fixtures.ts';

const PAST = '2001-01-01T00:00:00.000Z';
const FUTURE = '2999-01-01T00:00:00.000Z';
const ref = (user: string, folder: string, uid: number): EntryRef => ({ user, folder, uid });
const held = (err: unknown): boolean => isPosternError(err, 'HELD');

async function commitWith(store: ArchiveStore, n: number, retention: { retainUntil?: string; purgeAfter?: string }, bytes = mailBytes(n), users = ['alice']): Promise<void> {
  await store.commit({ ...commitOf({ n, bytes, fileInto: users.map(INBOX) }), retention });
}

export function describeRetention({ withUsers }: SuiteHelpers): void {
  describe('retention and legal hold', () => {
    it('stores retention from the commit and only ever extends it', () => withUsers(async (store) => {
      const r = store.retention();
      await commitWith(store, 1, { retainUntil: '2030-01-01T00:00:00.000Z', purgeAfter: '2035-01-01T00:00:00.000Z' });
      const a = ref('alice', 'Inbox', 1);
      assert.deepEqual(await r.getRetention(a), { retainUntil: '2030-01-01T00:00:00.000Z', purgeAfter: '2035-01-01T00:00:00.000Z' });
      await assert.rejects(r.extendRetention(a, '2029-12-31T00:00:00.000Z'), (e) => isPosternError(e, 'FORBIDDEN'));
      assert.deepEqual(await r.extendRetention(a, '2031-01-01T00:00:00.000Z'), { retainUntil: '2031-01-01T00:00:00.000Z', purgeAfter: '2035-01-01T00:00:00.000Z' });
      // Beyond purgeAfter: purgeAfter follows, never before retainUntil.
      assert.deepEqual(await r.extendRetention(a, '2040-01-01T00:00:00.000Z'), { retainUntil: '2040-01-01T00:00:00.000Z', purgeAfter: '2040-01-01T00:00:00.000Z' });
      await assert.rejects(r.extendRetention(a, 'not a date'), (e) => isPosternError(e, 'INVALID_INPUT'));
      await assert.rejects(r.extendRetention(ref('alice', 'Inbox', 9), FUTURE), (e) => isPosternError(e, 'NOT_FOUND'));
      assert.equal(await r.getRetention(ref('alice', 'Inbox', 9)), null);
      await commitWith(store, 2, {});
      assert.deepEqual(await r.getRetention(ref('alice', 'Inbox', 2)), { retainUntil: null, purgeAfter: null });
    }));

    it('computes retention from stored policies at commit; the longest minimum wins; policy changes apply to new mail', () => withUsers(async (store) => {
      const r = store.retention();
      await r.putPolicy({ name: 'all', match: {}, minimum: '1y', maximum: '2y', source: 'archive' });
      await r.putPolicy({ name: 'bob-long', match: { users: ['bob'] }, minimum: '10y', maximum: '12y', source: 'archive' });
      await r.putPolicy({ name: 'sent-forever', match: { direction: 'sent' }, minimum: 'forever', source: 'archive' });
      await assert.rejects(r.putPolicy({ name: 'bad', match: {}, minimum: '2y', maximum: '1y', source: 'archive' }), (e) => isPosternError(e, 'INVALID_INPUT'));
      await assert.rejects(r.putPolicy({ name: 'bad', match: {}, minimum: '5 years', source: 'archive' }), (e) => isPosternError(e, 'INVALID_INPUT'));
      assert.deepEqual((await r.listPolicies()).map((p) => p.name).sort(), ['all', 'bob-long', 'sent-forever']);
      await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice'), INBOX('bob'), SENT('alice')] }));
      const entry = await store.getEntry('alice', 'Inbox', 1);
      assert.ok(entry);
      const at = new Date(entry.internalDate);
      const plus = (years: number): string => new Date(Date.UTC(at.getUTCFullYear() + years, at.getUTCMonth(), at.getUTCDate(), at.getUTCHours(), at.getUTCMinutes(), at.getUTCSeconds(), at.getUTCMilliseconds())).toISOString();
      assert.deepEqual(await r.getRetention(ref('alice', 'Inbox', 1)), { retainUntil: plus(1), purgeAfter: plus(2) });
      assert.deepEqual(await r.getRetention(ref('bob', 'Inbox', 1)), { retainUntil: plus(10), purgeAfter: plus(12) });
      assert.deepEqual(await r.getRetention(ref('alice', 'Sent', 1)), { retainUntil: '9999-12-31T23:59:59.999Z', purgeAfter: null });
      await r.removePolicy('bob-long');
      await assert.rejects(r.removePolicy('bob-long'), (e) => isPosternError(e, 'NOT_FOUND'));
      assert.deepEqual(await r.getRetention(ref('bob', 'Inbox', 1)), { retainUntil: plus(10), purgeAfter: plus(12) }, 'existing entries keep theirs');
      await store.commit(commitOf({ n: 2, fileInto: [INBOX('bob')] }));
      const bob2 = await r.getRetention(ref('bob', 'Inbox', 2));
      assert.ok(bob2?.retainUntil && bob2.retainUntil < plus(2), 'new mail gets the remaining rule');
    }));

    it('a later capture merged into an entry already in the folder only ever extends its retention', () => withUsers(async (store) => {
      const r = store.retention();
      const copy = (n: number, retention: { retainUntil?: string; purgeAfter?: string }, identity: string): Promise<unknown> =>
        store.commit({ ...commitOf({ n, bytes: mailBytes(identity), fileInto: [INBOX('alice')] }), identities: [identity], retention });
      await copy(1, { retainUntil: PAST, purgeAfter: PAST }, 'k:merge');
      const a = ref('alice', 'Inbox', 1);
      // The second copy asks for longer: the entry's retention extends (no new entry in the folder).
      await copy(2, { retainUntil: '2040-01-01T00:00:00.000Z', purgeAfter: '2045-01-01T00:00:00.000Z' }, 'k:merge');
      assert.equal((await store.listEntries('alice', 'Inbox')).length, 1);
      assert.deepEqual(await r.getRetention(a), { retainUntil: '2040-01-01T00:00:00.000Z', purgeAfter: '2045-01-01T00:00:00.000Z' });
      // A shorter third copy changes nothing; the purge finds nothing due and the entry stays.
      await copy(3, { retainUntil: PAST, purgeAfter: PAST }, 'k:merge');
      assert.deepEqual(await r.getRetention(a), { retainUntil: '2040-01-01T00:00:00.000Z', purgeAfter: '2045-01-01T00:00:00.000Z' });
      assert.equal((await r.purge({ limit: 100 })).deleted, 0);
      assert.ok(await store.getEntry('alice', 'Inbox', 1));
      // An entry never purged (no maximum) stays never purged when a copy brings one.
      await copy(4, { retainUntil: PAST }, 'k:forever');
      await copy(5, { retainUntil: PAST, purgeAfter: PAST }, 'k:forever');
      assert.deepEqual(await r.getRetention(ref('alice', 'Inbox', 2)), { retainUntil: PAST, purgeAfter: null });
      // Copies committed together (one writer group, or not): the longest wins either way.
      await Promise.all([copy(6, { retainUntil: '2030-01-01T00:00:00.000Z' }, 'k:group'), copy(7, { retainUntil: '2050-01-01T00:00:00.000Z' }, 'k:group')]);
      assert.deepEqual(await r.getRetention(ref('alice', 'Inbox', 3)), { retainUntil: '2050-01-01T00:00:00.000Z', purgeAfter: null });
      // A policy added after the first capture applies to the entry when a later copy arrives.
      await copy(8, {}, 'k:policy');
      assert.deepEqual(await r.getRetention(ref('alice', 'Inbox', 4)), { retainUntil: null, purgeAfter: null });
      await r.putPolicy({ name: 'alice-long', match: { users: ['alice'] }, minimum: '10y', source: 'archive' });
      await copy(9, {}, 'k:policy');
      const after = await r.getRetention(ref('alice', 'Inbox', 4));
      assert.ok(after?.retainUntil && after.retainUntil > FUTURE.replace('2999', '2030'), `extended by the policy: ${JSON.stringify(after)}`);
      assert.equal(after?.purgeAfter, null);
    }));

    it('removing a user from the directory keeps their held mail, its retention and its holds', () => withUsers(async (store) => {
      const r = store.retention();
      await commitWith(store, 1, { retainUntil: PAST, purgeAfter: PAST });
      await commitWith(store, 2, { retainUntil: FUTURE });
      await r.createHold({ name: 'alice-case', scope: { users: ['alice'] }, createdBy: 'tester' });
      await store.removeUser('alice');
      assert.equal(await store.getUser('alice'), null);
      assert.equal((await store.listEntries('alice', 'Inbox')).length, 2);
      assert.deepEqual(await r.getRetention(ref('alice', 'Inbox', 2)), { retainUntil: FUTURE, purgeAfter: null });
      await assert.rejects(r.deleteEntries([ref('alice', 'Inbox', 1)]), held);
      const swept = await r.purge({ limit: 100 });
      assert.equal(swept.deleted, 0);
      assert.equal(swept.skippedHeld, 1);
      // The same name added again finds the archive as it was.
      await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
      assert.equal((await store.listEntries('alice', 'Inbox')).length, 2);
    }));

    it('deleteEntries with purgeDue leaves out entries not past their purgeAfter (a manual deletion may take them)', () => withUsers(async (store) => {
      const r = store.retention();
      await commitWith(store, 1, { retainUntil: PAST, purgeAfter: PAST });
      await commitWith(store, 2, { retainUntil: PAST, purgeAfter: FUTURE });
      await commitWith(store, 3, { retainUntil: PAST });
      const refs = [1, 2, 3].map((uid) => ref('alice', 'Inbox', uid));
      assert.equal((await r.deleteEntries(refs, { purgeDue: true })).deleted, 1);
      assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => e.uid), [2, 3]);
      assert.equal((await r.deleteEntries(refs.slice(1))).deleted, 2, 'past their minimum: a manual deletion may');
    }));

    it('refuses deleting an entry before its retainUntil, whoever calls', () => withUsers(async (store) => {
      await commitWith(store, 1, { retainUntil: FUTURE });
      await assert.rejects(store.retention().deleteEntries([ref('alice', 'Inbox', 1)]), held);
      assert.ok(await store.getEntry('alice', 'Inbox', 1));
      const status = await store.retention().holdStatus(ref('alice', 'Inbox', 1));
      assert.deepEqual(status.reasons, [`retention:${FUTURE}`]);
    }));

    it('holds by user, address, date range and query block deletion until released', () => withUsers(async (store) => {
      const r = store.retention();
      for (let n = 1; n <= 4; n++) await commitWith(store, n, { retainUntil: PAST }, mailBytes(n), ['alice', 'bob']);
      await r.createHold({ name: 'case-1', scope: { users: ['bob'] }, createdBy: 'tester' });
      await assert.rejects(r.createHold({ name: 'case-1', scope: { users: ['bob'] }, createdBy: 'tester' }), (e) => isPosternError(e, 'CONFLICT'));
      await assert.rejects(r.createHold({ name: 'empty', scope: {}, createdBy: 'tester' }), (e) => isPosternError(e, 'INVALID_INPUT'));
      await assert.rejects(r.createHold({ name: 'q', scope: { query: 'nofield:x' }, createdBy: 'tester' }), (e) => isPosternError(e, 'INVALID_INPUT'));
      await assert.rejects(r.deleteEntries([ref('bob', 'Inbox', 1)]), held);
      // Every alice entry is free of case-1; an address hold covers the recipient.
      await r.createHold({ name: 'addr', scope: { addresses: ['ALICE@example.com'] }, createdBy: 'tester' });
      await assert.rejects(r.deleteEntries([ref('alice', 'Inbox', 1)]), held);
      await r.releaseHold('addr', 'tester');
      await assert.rejects(r.releaseHold('addr', 'tester'), (e) => isPosternError(e, 'NOT_FOUND'));
      await r.createHold({ name: 'subject-3', scope: { query: 'subject:"message 3" from:sender@' }, createdBy: 'tester' });
      await r.createHold({ name: 'dated', scope: { dateRange: { field: 'date', from: '2024-05-01T00:00:00Z', to: '2024-05-02T00:00:00Z' }, users: ['alice'] }, createdBy: 'tester' });
      const status = await r.holdStatus(ref('alice', 'Inbox', 3));
      assert.deepEqual(status.reasons.sort(), ['hold:dated', 'hold:subject-3']);
      await r.releaseHold('dated', 'tester');
      // All or nothing: one held entry in the list refuses the whole call.
      await assert.rejects(r.deleteEntries([ref('alice', 'Inbox', 1), ref('alice', 'Inbox', 3)]), held);
      assert.ok(await store.getEntry('alice', 'Inbox', 1));
      assert.deepEqual(await r.deleteEntries([ref('alice', 'Inbox', 1), ref('alice', 'Inbox', 2)]), { deleted: 2, messagesRemoved: 0, blobsRemoved: 0 });
      assert.equal(await store.getEntry('alice', 'Inbox', 1), null);
      await assert.rejects(r.deleteEntries([ref('alice', 'Inbox', 1)]), (e) => isPosternError(e, 'NOT_FOUND'));
      assert.deepEqual((await r.listHolds()).map((h) => h.name), ['case-1', 'subject-3']);
      assert.deepEqual((await r.listHolds({ includeReleased: true })).map((h) => [h.name, h.releasedBy]), [['addr', 'tester'], ['case-1', null], ['dated', 'tester'], ['subject-3', null]]);
      assert.equal((await r.getHold('case-1'))?.createdBy, 'tester');
      assert.equal(await r.getHold('nope'), null);
    }));

    it('hold-everything blocks every deletion and purge', () => withUsers(async (store) => {
      const r = store.retention();
      await commitWith(store, 1, { retainUntil: PAST, purgeAfter: PAST });
      await r.setHoldEverything(true, 'tester');
      assert.deepEqual(await r.holdEverything(), { stored: true, configured: false });
      await assert.rejects(r.deleteEntries([ref('alice', 'Inbox', 1)]), held);
      const batch = await r.purge({ limit: 100 });
      assert.equal(batch.deleted, 0);
      assert.equal(batch.skippedHeld, 1);
      await r.setHoldEverything(false, 'tester');
      assert.equal((await r.purge({ limit: 100 })).deleted, 1);
    }));

    it('deleting the last entry drops the message and its identity; the blob goes at reference count zero', () => withUsers(async (store, h) => {
      const r = store.retention();
      const shared = mailBytes('shared');
      await store.commit({ ...commitOf({ n: 1, bytes: shared, fileInto: [INBOX('alice'), INBOX('bob')] }), identities: ['test:one'], retention: { retainUntil: PAST } });
      await store.commit({ ...commitOf({ n: 2, bytes: shared, fileInto: [SENT('alice')] }), retention: { retainUntil: PAST } });
      const m1 = await store.getMessage('msg-1');
      assert.ok(m1);
      const before = await store.stats();
      await r.deleteEntries([ref('alice', 'Inbox', 1)]);
      assert.ok(await store.getMessage('msg-1'), 'bob still has it');
      assert.equal((await store.stats()).entries, before.entries - 1);
      assert.equal((await store.folders('alice')).find((f) => f.folder === 'Inbox')?.messages, 0);
      assert.deepEqual(await r.deleteEntries([ref('bob', 'Inbox', 1)]), { deleted: 1, messagesRemoved: 1, blobsRemoved: 0 });
      assert.equal(await store.getMessage('msg-1'), null);
      assert.equal(await store.messageByIdentity('test:one'), null);
      assert.ok(await store.openBlob(m1.blobId), 'msg-2 still references the blob');
      assert.equal((await store.stats()).blobs, before.blobs);
      assert.deepEqual(await r.deleteEntries([ref('alice', 'Sent', 1)]), { deleted: 1, messagesRemoved: 1, blobsRemoved: 1 });
      assert.equal(await store.openBlob(m1.blobId), null);
      const after = await store.stats();
      assert.deepEqual([after.messages, after.entries, after.blobs, after.blobBytes], [before.messages - 2, before.entries - 3, before.blobs - 1, before.blobBytes - shared.length]);
      // UIDs are never reused; the same bytes archive again as a new message.
      await store.commit({ ...commitOf({ n: 3, bytes: shared, fileInto: [INBOX('alice')] }), identities: ['test:one'] });
      assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => [e.uid, e.messageId]), [[2, 'msg-3']]);
      await store.close();
      const reopened = await h.reopen();
      assert.equal((await reopened.stats()).messages, 1);
      assert.equal(await reopened.retention().getRetention(ref('alice', 'Inbox', 1)), null);
    }));

    it('deletions interleaved with concurrent commits keep folder counts, stats and UIDs consistent', () => withUsers(async (store) => {
      const r = store.retention();
      for (let n = 1; n <= 20; n++) await commitWith(store, n, { retainUntil: PAST, purgeAfter: PAST });
      const work: Array<Promise<unknown>> = [];
      for (let n = 21; n <= 60; n++) work.push(commitWith(store, n, { retainUntil: PAST }));
      for (let uid = 1; uid <= 10; uid++) work.push(r.deleteEntries([ref('alice', 'Inbox', uid)]));
      work.push(r.purge({ limit: 5 }));
      await Promise.all(work);
      const entries = await store.listEntries('alice', 'Inbox', { limit: 1000 });
      const uids = entries.map((e) => e.uid);
      assert.equal(new Set(uids).size, uids.length, 'no UID twice');
      assert.ok(uids.every((u) => u > 10), 'deleted entries are gone');
      assert.ok(uids.includes(60) && uids.length === 60 - 10 - 5, `${uids.length} entries left`);
      const stats = await store.stats();
      assert.equal(stats.entries, entries.length);
      assert.equal(stats.messages, entries.length);
      assert.equal(stats.blobs, entries.length);
      assert.equal((await store.folders('alice')).find((f) => f.folder === 'Inbox')?.messages, entries.length);
      assert.equal((await store.folders('alice')).find((f) => f.folder === 'Inbox')?.uidNext, 61);
    }));

    it('purge deletes exactly the entries past purgeAfter, skips held ones, runs in bounded batches and as a dry run', () => withUsers(async (store, h) => {
      const r = store.retention();
      for (let n = 1; n <= 7; n++) await commitWith(store, n, { retainUntil: PAST, purgeAfter: PAST });
      await commitWith(store, 8, { retainUntil: PAST, purgeAfter: FUTURE });
      await commitWith(store, 9, { retainUntil: PAST });
      await r.createHold({ name: 'keep-3', scope: { query: 'subject:"message 3"' }, createdBy: 'tester' });
      const dry = await r.purge({ limit: 100, dryRun: true });
      assert.deepEqual([dry.scanned, dry.deleted, dry.skippedHeld, dry.next], [7, 6, 1, null]);
      assert.equal((await store.listEntries('alice', 'Inbox')).length, 9, 'a dry run deletes nothing');
      let cursor: string | null = null;
      const deleted: number[] = [];
      let skipped = 0;
      let batches = 0;
      do {
        const b = await r.purge({ limit: 3, after: cursor });
        assert.ok(b.scanned <= 3);
        deleted.push(...b.entries.map((e) => e.uid));
        skipped += b.skippedHeld;
        cursor = b.next;
        batches += 1;
      } while (cursor !== null);
      assert.ok(batches >= 3);
      assert.deepEqual(deleted.sort((a, b) => a - b), [1, 2, 4, 5, 6, 7]);
      assert.equal(skipped, 1);
      assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => e.uid), [3, 8, 9]);
      await assert.rejects(r.purge({ limit: 0 }), (e) => isPosternError(e, 'INVALID_INPUT'));
      await assert.rejects(r.purge({ limit: 10, after: 'bogus' }), (e) => isPosternError(e, 'INVALID_INPUT'));
      // Holds survive a restart.
      await store.close();
      const reopened = await h.reopen();
      assert.equal((await reopened.retention().purge({ limit: 100 })).skippedHeld, 1);
      await assert.rejects(reopened.retention().deleteEntries([ref('alice', 'Inbox', 3)]), held);
    }));
  });
}
