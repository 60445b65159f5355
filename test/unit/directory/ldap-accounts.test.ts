// The directory sync's shaping of what LDAP returns: mail addresses from plain attributes and AD
// proxyAddresses, group names, nested group membership (depth bound, cycles) and DN comparison.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dnKey, groupName, groupsOf, mailAddresses, values, type DirectoryGroup } from '../../../core/directory/ldap-accounts.ts';

describe('mailAddresses', () => {
  it('takes plain addresses and smtp:/SMTP: proxyAddresses, primary first, other types ignored, no duplicates', () => {
    assert.deepEqual(mailAddresses([
      'alice@Example.TEST', 'smtp:a.archer@example.test', 'SMTP:Alice.Archer@example.test', 'X500:/o=Org/ou=Exchange/cn=alice',
      'SIP:alice@example.test', 'x400:c=US;a= ;p=Org;o=Exchange;s=Archer;', 'smtp:ALICE@example.test', 'not an address', '',
    ]), ['Alice.Archer@example.test', 'alice@example.test', 'a.archer@example.test']);
  });
  it('keeps the local part as written and lower-cases the domain', () => {
    assert.deepEqual(mailAddresses(['SMTP:Bob.Baker@Sub.Example.Test']), ['Bob.Baker@sub.example.test']);
  });
});

describe('groupName', () => {
  it('makes a Postern group name of a cn, or null', () => {
    assert.equal(groupName('EMEA Staff'), 'emea-staff');
    assert.equal(groupName('  Sales_2024.Q1 '), 'sales_2024.q1');
    assert.equal(groupName('---'), null);
    assert.equal(groupName('Ünïcode Group'), 'n-code-group');
    assert.equal(groupName('x'.repeat(100))?.length, 64);
  });
});

describe('dnKey and values', () => {
  it('compares DNs case-insensitively, ignoring spaces around separators', () => {
    assert.equal(dnKey('CN=Alice Archer, OU=People ,DC=Example,DC=test'), 'cn=alice archer,ou=people,dc=example,dc=test');
  });
  it('reads attributes whatever case the server used, buffers as text', () => {
    const e = { dn: 'cn=a', proxyAddresses: ['SMTP:a@x.test'], DisplayName: Buffer.from('Ä') };
    assert.deepEqual(values(e, 'proxyaddresses'), ['SMTP:a@x.test']);
    assert.deepEqual(values(e, 'displayName'), ['Ä']);
    assert.deepEqual(values(e, 'mail'), []);
  });
});

describe('groupsOf', () => {
  const g = (cn: string, members: string[]): DirectoryGroup => ({ dn: `cn=${cn},ou=groups,dc=x`, name: groupName(cn) ?? '', members });
  const G = (cn: string): string => `CN=${cn}, OU=Groups, DC=X`;
  const user = 'cn=Alice,ou=people,dc=x';

  it('follows groups in groups upwards, from member lists and from memberOf', () => {
    const groups = [g('Sales', [user]), g('EMEA', [G('Sales')]), g('All', [G('EMEA')]), g('Other', ['cn=bob,ou=people,dc=x']), g('Finance', [])];
    assert.deepEqual(groupsOf(user, [], groups, 8), ['all', 'emea', 'sales']);
    assert.deepEqual(groupsOf(user, [G('Finance'), 'cn=Unknown,dc=x'], groups, 8), ['all', 'emea', 'finance', 'sales'], 'memberOf counts for groups the filter found');
  });

  it('stops at the depth bound', () => {
    const groups = [g('L0', [user]), g('L1', [G('L0')]), g('L2', [G('L1')]), g('L3', [G('L2')])];
    assert.deepEqual(groupsOf(user, [], groups, 0), ['l0']);
    assert.deepEqual(groupsOf(user, [], groups, 2), ['l0', 'l1', 'l2']);
  });

  it('ends on cycles', () => {
    const groups = [g('A', [G('B'), user]), g('B', [G('C')]), g('C', [G('A')])];
    assert.deepEqual(groupsOf(user, [], groups, 32), ['a', 'b', 'c']);
  });
});
