// The directory sync's plan: creates, updates, renames by directory id, disables or removes users gone
// from the directory, leaves local users alone, keeps addresses of local users theirs, and disables
// nobody when the directory answers with no accounts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planSync } from '../../../core/directory/sync-plan.ts';
import type { DirectoryAccount } from '../../../core/directory/ldap-accounts.ts';
import type { UserRecord } from '../../../core/storage/types.ts';

const settings = { newUsers: { privileges: ['login' as const], groups: ['staff'], imapAccess: true, webAccess: false }, removed: 'disable' as const };
const account = (name: string, extra: Partial<DirectoryAccount> = {}): DirectoryAccount => ({
  dn: `cn=${name},dc=x`, name, fullName: name.toUpperCase(), addresses: [`${name}@x.test`], groups: [], id: `id-${name}`, ...extra,
});
const user = (name: string, extra: Partial<UserRecord> = {}): UserRecord => ({
  name, addresses: [`${name}@x.test`], domains: [], pop3Users: [], createdAt: '', passwordHash: null, privileges: [], groups: [],
  imapAccess: false, webAccess: false, fullName: name.toUpperCase(), source: 'directory', dn: `cn=${name},dc=x`, directoryId: `id-${name}`, disabled: false, ...extra,
});

describe('planSync', () => {
  it('creates missing users with the new-user defaults and their directory groups', () => {
    const plan = planSync([account('alice', { groups: ['sales'] })], [], settings);
    assert.deepEqual(plan.create, [{
      name: 'alice', addresses: ['alice@x.test'], fullName: 'ALICE', source: 'directory', dn: 'cn=alice,dc=x', directoryId: 'id-alice',
      privileges: ['login'], groups: ['sales', 'staff'], imapAccess: true, webAccess: false,
    }]);
  });

  it('brings addresses, groups, name, DN in line; keeps configured groups; re-enables', () => {
    const plan = planSync([account('alice', { addresses: ['alice@x.test', 'al@x.test'], groups: ['emea'], fullName: 'Alice A', dn: 'cn=Alice A,dc=x' })],
      [user('alice', { addresses: ['alice@x.test', 'old@x.test'], groups: ['sales', 'staff', 'local-only'], disabled: true })], settings);
    assert.deepEqual(plan.update, [{
      name: 'alice',
      change: { addAddresses: ['al@x.test'], removeAddresses: ['old@x.test'], addGroups: ['emea'], removeGroups: ['sales', 'local-only'], fullName: 'Alice A', dn: 'cn=Alice A,dc=x', disabled: false },
      what: ['+address al@x.test', '-address old@x.test', '+group emea', '-group sales', '-group local-only', 'fullName', 'dn', 'enable'],
    }]);
    assert.equal(plan.unchanged, 0);
  });

  it('renames a user whose account was renamed (same id), unless the name is taken', () => {
    const renamed = planSync([account('caroline', { id: 'id-carol', addresses: ['carol@x.test'], fullName: 'CAROL', dn: 'cn=carol,dc=x' })], [user('carol')], settings);
    assert.deepEqual(renamed.rename, [{ from: 'carol', to: 'caroline' }]);
    assert.deepEqual(renamed.update, []);
    assert.deepEqual(renamed.disable, []);
    const taken = planSync([account('bob', { id: 'id-carol' })], [user('carol'), user('bob', { source: 'local', directoryId: null })], settings);
    assert.deepEqual(taken.rename, []);
    assert.ok(taken.problems.some((p) => p.includes('not renamed')), taken.problems.join('; '));
  });

  it('disables (or removes) directory users gone from the directory, never local ones', () => {
    const users = [user('alice'), user('bob'), user('zed', { disabled: true }), user('admin', { source: 'local', dn: null, directoryId: null }), user('_unrouted', { source: 'local' })];
    const plan = planSync([account('alice')], users, settings);
    assert.deepEqual(plan.disable, ['bob']);
    assert.equal(plan.unchanged, 2, 'alice unchanged, zed already disabled');
    assert.deepEqual(planSync([account('alice')], users, { ...settings, removed: 'remove' }).remove, ['bob', 'zed']);
  });

  it('leaves a local user with an account\'s name alone, and their addresses theirs', () => {
    const plan = planSync([account('admin'), account('alice', { addresses: ['alice@x.test', 'admin@x.test'] })],
      [user('admin', { source: 'local', dn: null, directoryId: null })], settings);
    assert.deepEqual(plan.create.map((c) => [c.name, c.addresses]), [['alice', ['alice@x.test']]]);
    assert.equal(plan.problems.length, 2, plan.problems.join('; '));
    assert.match(plan.problems.join('\n'), /Local user "admin" has the name of directory account/);
    assert.match(plan.problems.join('\n'), /Address "admin@x.test" of directory account "alice" belongs to local user "admin"/);
  });

  it('an empty directory answer disables nobody', () => {
    const plan = planSync([], [user('alice'), user('bob')], settings);
    assert.deepEqual(plan.disable, []);
    assert.match(plan.problems[0] ?? '', /returned no accounts/);
  });
});
