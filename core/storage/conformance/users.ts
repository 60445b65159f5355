// Conformance block 'users': adding, updating, removing and finding users by address, owned domain and POP3 login.
// Trusts only the ArchiveStore interface and the shared fixtures; each test runs on a fresh store from the harness.
// Hands on nothing but registered node:test cases (CONFLICT / INVALID_INPUT / NOT_FOUND behaviour every backend must share).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { commitOf, INBOX, type SuiteHelpers } from './fixtures.ts';

export function describeUsers({ withStore }: SuiteHelpers): void {
  describe('users', () => {
    it('owned domains and POP3 logins are identities with exactly one owner', () => withStore(async ({ store }) => {
      const a = await store.addUser({ name: 'alice', addresses: ['alice@example.com'], domains: ['Example.COM'], pop3Users: ['alice.pop'] });
      assert.deepEqual(a.domains, ['example.com']);
      assert.equal(await store.userByDomain('EXAMPLE.com'), 'alice');
      assert.equal(await store.userByPop3User('alice.pop'), 'alice');
      assert.equal(await store.userByPop3User('bob.pop'), null);
      await assert.rejects(store.addUser({ name: 'bob', addresses: [], domains: ['example.com'] }), { name: 'PosternError', code: 'CONFLICT' });
      await assert.rejects(store.addUser({ name: 'bob', addresses: [], pop3Users: ['alice.pop'] }), { name: 'PosternError', code: 'CONFLICT' });
      await assert.rejects(store.addUser({ name: 'bob', addresses: [], domains: ['not a domain'] }), { name: 'PosternError', code: 'INVALID_INPUT' });
    }));

    it('updateUser adds and removes identities atomically; removeUser frees them but keeps the archive', () => withStore(async ({ store }) => {
      await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
      await store.addUser({ name: 'bob', addresses: ['bob@example.com'] });
      const u = await store.updateUser('alice', { addAddresses: ['Ali@Example.com'], removeAddresses: ['ALICE@example.com'], addPop3Users: ['al'] });
      assert.deepEqual(u.addresses, ['Ali@example.com']);
      assert.equal(await store.userByAddress('alice@example.com'), null);
      assert.equal(await store.userByAddress('ali@example.com'), 'alice');
      assert.deepEqual(await store.getUser('alice'), u);
      await assert.rejects(store.updateUser('alice', { addAddresses: ['bob@example.com'] }), { name: 'PosternError', code: 'CONFLICT' });
      await assert.rejects(store.updateUser('alice', { removeAddresses: ['nobody@example.com'] }), { name: 'PosternError', code: 'NOT_FOUND' });
      await assert.rejects(store.updateUser('zed', { addAddresses: ['z@example.com'] }), { name: 'PosternError', code: 'NOT_FOUND' });
      assert.deepEqual((await store.getUser('alice'))?.addresses, ['Ali@example.com'], 'a failed change changes nothing');
      await store.commit(commitOf({ n: 'rm', fileInto: [INBOX('alice')] }));
      await store.removeUser('alice');
      assert.equal(await store.getUser('alice'), null);
      assert.equal(await store.userByAddress('ali@example.com'), null);
      assert.equal(await store.userByPop3User('al'), null);
      assert.equal((await store.listEntries('alice', 'Inbox')).length, 1, 'the archive of a removed user stays');
      await store.addUser({ name: 'carol', addresses: ['ali@example.com'] });
      assert.equal(await store.userByAddress('ali@example.com'), 'carol');
    }));

    it('adds, gets and lists users; unknown names are null', () => withStore(async ({ store }) => {
      const alice = await store.addUser({ name: 'alice', addresses: ['Alice@Example.COM', 'a.smith@example.com'] });
      assert.equal(alice.name, 'alice');
      assert.deepEqual(alice.addresses, ['Alice@example.com', 'a.smith@example.com'], 'domain lower-cased, local part kept as entered');
      assert.deepEqual(alice.domains, []);
      assert.deepEqual(alice.pop3Users, []);
      assert.ok(!Number.isNaN(Date.parse(alice.createdAt)), `createdAt "${alice.createdAt}" is a date`);
      await store.addUser({ name: 'bob', addresses: ['bob@example.com'] });
      assert.deepEqual(await store.getUser('alice'), alice);
      assert.equal(await store.getUser('carol'), null);
      const names = (await store.listUsers()).map((u) => u.name).sort();
      assert.deepEqual(names, ['alice', 'bob']);
    }));

    it('finds the owner of an address case-insensitively', () => withStore(async ({ store }) => {
      await store.addUser({ name: 'alice', addresses: ['Alice@Example.com'] });
      await store.addUser({ name: 'bob', addresses: ['bob@example.com'] });
      assert.equal(await store.userByAddress('alice@example.com'), 'alice');
      assert.equal(await store.userByAddress('ALICE@EXAMPLE.COM'), 'alice');
      assert.equal(await store.userByAddress('BoB@example.com'), 'bob');
      assert.equal(await store.userByAddress('carol@example.com'), null);
    }));

    it('refuses a duplicate user with CONFLICT', () => withStore(async ({ store }) => {
      await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
      await assert.rejects(store.addUser({ name: 'alice', addresses: ['other@example.com'] }), { name: 'PosternError', code: 'CONFLICT' });
      assert.equal(await store.userByAddress('other@example.com'), null);
      assert.equal((await store.listUsers()).length, 1);
    }));

    it('refuses an address owned by another user with CONFLICT and creates nothing', () => withStore(async ({ store }) => {
      await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
      await assert.rejects(store.addUser({ name: 'bob', addresses: ['bob@example.com', 'ALICE@example.com'] }), { name: 'PosternError', code: 'CONFLICT' });
      assert.equal(await store.getUser('bob'), null);
      assert.equal(await store.userByAddress('bob@example.com'), null);
      assert.equal(await store.userByAddress('alice@example.com'), 'alice');
      assert.equal((await store.stats()).users, 1);
    }));

    it('lists a system archive ("_unrouted") with the users but does not count it as one', () => withStore(async ({ store }) => {
      await store.addUser({ name: '_unrouted', addresses: [] });
      await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
      assert.deepEqual((await store.listUsers()).map((u) => u.name).sort(), ['_unrouted', 'alice']);
      assert.equal((await store.stats()).users, 1);
    }));

    it('refuses concurrent users claiming one address: exactly one wins', () => withStore(async ({ store }) => {
      const results = await Promise.allSettled([
        store.addUser({ name: 'alice', addresses: ['shared@example.com'] }),
        store.addUser({ name: 'bob', addresses: ['shared@example.com'] }),
      ]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal((rejected?.reason as { code?: unknown }).code, 'CONFLICT');
      assert.equal((await store.listUsers()).length, 1);
    }));

    it('refuses an invalid user name with INVALID_INPUT', () => withStore(async ({ store }) => {
      for (const bad of ['', 'Alice', 'has space', '.dot', 'x'.repeat(65), 'a/b']) {
        await assert.rejects(store.addUser({ name: bad, addresses: [] }), { name: 'PosternError', code: 'INVALID_INPUT' }, JSON.stringify(bad));
      }
      assert.deepEqual(await store.listUsers(), []);
    }));
  });
}
