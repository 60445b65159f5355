// Conformance block 'rename': renameUser moves a user's whole archive (folders with their UIDVALIDITY and
// UIDs, entries, per-entry retention), the legal holds and stored policies naming them, and their
// identities to the new name at once, survives a reopen, and refuses names that are taken.
// Trusts only the ArchiveStore interface and the shared fixtures.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { commitOf, INBOX, SENT, type SuiteHelpers } from './fixtures.ts';

export function describeRename({ withUsers }: SuiteHelpers): void {
  describe('rename', () => {
    it('moves the archive, retention, holds and policies with the user; UIDs continue', () => withUsers(async (store, h) => {
      await store.updateUser('alice', { addPop3Users: ['alice.pop'], addGroups: ['sales'], fullName: 'Alice Liddell' });
      await store.commit({ ...commitOf({ n: 1, fileInto: [INBOX('alice'), INBOX('bob')] }), retention: { retainUntil: '2099-01-01T00:00:00.000Z', purgeAfter: '2100-01-01T00:00:00.000Z' } });
      await store.commit(commitOf({ n: 2, fileInto: [SENT('alice')] }));
      const before = await store.folders('alice');
      await store.retention().createHold({ name: 'case-1', scope: { users: ['alice', 'carol'] }, createdBy: 'test' });
      await store.retention().putPolicy({ name: 'alice-7y', match: { users: ['alice'] }, minimum: '7y', source: 'archive' });

      const renamed = await store.renameUser('alice', 'alicia');
      assert.equal(renamed.name, 'alicia');
      assert.equal(renamed.fullName, 'Alice Liddell');
      assert.deepEqual(renamed.groups, ['sales']);

      const check = async (s: typeof store): Promise<void> => {
        assert.equal(await s.getUser('alice'), null);
        assert.equal((await s.getUser('alicia'))?.fullName, 'Alice Liddell');
        assert.equal(await s.userByAddress('alice@example.com'), 'alicia');
        assert.equal(await s.userByPop3User('alice.pop'), 'alicia');
        assert.deepEqual(await s.folders('alice'), []);
        assert.deepEqual((await s.folders('alicia')).map((f) => ({ ...f, user: 'alice' })), before, 'same folders, UIDVALIDITY, UIDs and counts');
        const inbox = await s.listEntries('alicia', 'Inbox');
        assert.deepEqual(inbox.map((e) => [e.user, e.uid, e.messageId]), [['alicia', 1, 'msg-1']]);
        assert.equal(await s.entryUidOf('alicia', 'Sent', 'msg-2'), 1);
        assert.equal(await s.getEntry('alice', 'Inbox', 1), null);
        assert.equal((await s.retention().getRetention({ user: 'alicia', folder: 'Inbox', uid: 1 }))?.retainUntil, '2099-01-01T00:00:00.000Z');
        assert.deepEqual((await s.retention().getHold('case-1'))?.scope.users, ['alicia', 'carol']);
        assert.deepEqual((await s.retention().listPolicies()).find((p) => p.name === 'alice-7y')?.match.users, ['alicia']);
        const status = await s.retention().holdStatus({ user: 'alicia', folder: 'Sent', uid: 1 });
        assert.ok(status.reasons.includes('hold:case-1'), `the hold follows the user: ${status.reasons.join(', ')}`);
        assert.deepEqual((await s.listEntries('bob', 'Inbox')).map((e) => e.messageId), ['msg-1'], 'other users are untouched');
      };
      await check(store);
      await assert.rejects(store.retention().deleteEntries([{ user: 'alicia', folder: 'Sent', uid: 1 }]), { name: 'PosternError', code: 'HELD' });
      await store.close();
      const reopened = await h.reopen();
      await check(reopened);
      // New mail continues the same folder: the next UID, never a reused one.
      const r = await reopened.commit(commitOf({ n: 3, fileInto: [INBOX('alicia')] }));
      assert.deepEqual(r.entries, [{ user: 'alicia', folder: 'Inbox', uid: 2 }]);
      // Back again: the old name is free.
      await reopened.renameUser('alicia', 'alice');
      assert.deepEqual((await reopened.listEntries('alice', 'Inbox')).map((e) => e.uid), [1, 2]);
    }));

    it('refuses a taken name, an archive left by a removed user, unknown users and bad names', () => withUsers(async (store) => {
      await store.commit(commitOf({ n: 1, fileInto: [INBOX('bob')] }));
      await assert.rejects(store.renameUser('alice', 'bob'), { name: 'PosternError', code: 'CONFLICT' });
      await store.removeUser('bob');
      await assert.rejects(store.renameUser('alice', 'bob'), { name: 'PosternError', code: 'CONFLICT' });
      await assert.rejects(store.renameUser('zed', 'zeta'), { name: 'PosternError', code: 'NOT_FOUND' });
      await assert.rejects(store.renameUser('alice', 'Not Valid'), { name: 'PosternError', code: 'INVALID_INPUT' });
      await assert.rejects(store.renameUser('alice', '_unrouted'), { name: 'PosternError', code: 'INVALID_INPUT' });
      assert.equal((await store.getUser('alice'))?.name, 'alice', 'a refused rename changes nothing');
      assert.equal(await store.userByAddress('alice@example.com'), 'alice');
    }));
  });
}
