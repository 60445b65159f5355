// The one password check of every sign-in: stored hashes for local users, an LDAP bind for directory
// users (per auth.mode), nothing for disabled, unknown and password-less users, errors of the directory
// passed on; the bind is never skipped by a cache and an empty password never reaches it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Credentials, checkedBy } from '../../../core/auth/credentials.ts';
import { checkBind, type LdapSettings } from '../../../core/directory/ldap-connection.ts';
import { hashPassword } from '../../../core/smtp/password.ts';
import { PosternError } from '../../../core/errors.ts';
import { ldapSchema } from '../../../core/config/schema.ts';
import type { UserRecord } from '../../../core/storage/types.ts';

const ldap: LdapSettings = ldapSchema.parse({ url: 'ldap://127.0.0.1:1', baseDn: 'dc=x' });
const base = (extra: Partial<UserRecord>): UserRecord => ({
  name: 'u', addresses: [], domains: [], pop3Users: [], createdAt: '', passwordHash: null, privileges: [], groups: [], imapAccess: true,
  webAccess: false, fullName: '', source: 'local', dn: null, directoryId: null, disabled: false, ...extra,
});

describe('Credentials', () => {
  it('decides by source and mode', async () => {
    const hash = await hashPassword('pw');
    const local = base({ passwordHash: hash });
    const dir = base({ source: 'directory', dn: 'cn=u,dc=x' });
    assert.equal(checkedBy(local, 'local', ldap), 'hash');
    assert.equal(checkedBy(local, 'both', ldap), 'hash');
    assert.equal(checkedBy(local, 'directory', ldap), 'none');
    assert.equal(checkedBy(dir, 'local', ldap), 'none');
    assert.equal(checkedBy(dir, 'both', ldap), 'bind');
    assert.equal(checkedBy(dir, 'both', null), 'none');
    assert.equal(checkedBy({ ...dir, disabled: true }, 'both', ldap), 'none');
    assert.equal(checkedBy({ ...local, disabled: true }, 'local', ldap), 'none');
  });

  it('binds for directory users every time, checks hashes for local ones', async () => {
    const binds: Array<[string, string]> = [];
    const fakeBind = (async (_s: LdapSettings, dn: string, pw: string) => {
      binds.push([dn, pw]);
      return pw === 'dir-pw';
    }) as typeof checkBind;
    const c = new Credentials('both', ldap, fakeBind);
    const dir = base({ source: 'directory', dn: 'cn=u,dc=x' });
    assert.equal(await c.verify(dir, 'dir-pw', { cached: true }), true);
    assert.equal(await c.verify(dir, 'dir-pw', { cached: true }), true);
    assert.equal(await c.verify(dir, 'nope'), false);
    assert.deepEqual(binds.map(([, pw]) => pw), ['dir-pw', 'dir-pw', 'nope'], 'no cache in front of the bind');
    assert.equal(await c.verify(base({ passwordHash: await hashPassword('local-pw') }), 'local-pw'), true);
    assert.equal(await c.verify(null, 'dir-pw'), false);
    assert.equal(await c.verify({ ...dir, disabled: true }, 'dir-pw'), false);
    assert.equal(binds.length, 3, 'unknown and disabled users never reach the directory');
  });

  it('passes a directory failure on', async () => {
    const down = (async () => { throw new PosternError('DIRECTORY_FAILED', 'Directory server "ldap://127.0.0.1:1" cannot be reached: ECONNREFUSED'); }) as typeof checkBind;
    await assert.rejects(new Credentials('directory', ldap, down).verify(base({ source: 'directory', dn: 'cn=u' }), 'pw'), { code: 'DIRECTORY_FAILED' });
  });

  it('never sends an empty password to the server', async () => {
    assert.equal(await checkBind(ldap, 'cn=u,dc=x', ''), false);
  });
});
