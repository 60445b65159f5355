// `postern user add/edit --full-name` and `postern user rename` against a live server: the full name and
// source shown by `user show`; a rename moves the archive (same UIDs) and the address to the new name,
// keeps a legal hold on the user attached, is recorded in the audit log with both names, and refuses a
// taken name, an unknown user and an invalid name with the reason. Without directory.ldap, the
// directory sync explains that it is not configured and auth.mode "both" is refused at boot.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import type { AuditRecord } from '../../core/audit/types.ts';

describe('postern user rename and full names', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.stop();
  });

  it('sets and shows a full name and the account source', async () => {
    const add = await runCli(['user', 'add', 'frank', '--address', 'frank@example.com', '--full-name', 'Frank Furter'], s);
    assert.equal(add.code, 0, add.stderr);
    const edit = await runCli(['user', 'edit', 'frank', '--full-name', 'Frank N. Furter'], s);
    assert.equal(edit.code, 0, edit.stderr);
    assert.match(edit.stdout, /^Full name: Frank N\. Furter$/m);
    assert.match(edit.stdout, /^Source: {4}local$/m);
  });

  it('renames a user with their archive, address and holds, audited; refuses bad targets', async () => {
    const c = await SmtpClient.open(s.smtpPort);
    await c.read();
    await c.cmd('EHLO test.example');
    assert.equal((await sendMail(c, 'x@example.org', ['frank@example.com'], 'Subject: before the rename\r\n\r\nbody\r\n')).code, 250);
    await c.cmd('QUIT').catch(() => undefined);
    await s.settle();
    await s.archive.retention().createHold({ name: 'case-frank', scope: { users: ['frank'] }, createdBy: 'test' });
    const [before] = await s.archive.listEntries('frank', 'Inbox');
    const r = await runCli(['user', 'rename', 'frank', 'francis'], s);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Renamed user frank to francis; the archive moved with them\n');
    const [moved] = await s.archive.listEntries('francis', 'Inbox');
    assert.equal(moved?.uid, before?.uid);
    assert.equal(moved?.messageId, before?.messageId);
    assert.deepEqual(await s.archive.listEntries('frank', 'Inbox'), []);
    assert.equal(await s.archive.userByAddress('frank@example.com'), 'francis');
    assert.deepEqual((await s.archive.retention().getHold('case-frank'))?.scope.users, ['francis']);
    assert.match((await runCli(['user', 'show', 'francis'], s)).stdout, /^Full name: Frank N\. Furter$/m);
    const records: AuditRecord[] = [];
    for await (const rec of s.running.app.service('audit').list({})) records.push(rec);
    assert.ok(records.some((x) => x.action === 'user.rename' && x.outcome === 'success' && x.details?.from === 'frank' && x.details?.to === 'francis' && x.actor === 'admin-token'));

    await s.archive.addUser({ name: 'gina', addresses: ['gina@example.com'] });
    const taken = await runCli(['user', 'rename', 'francis', 'gina'], s);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, /User "gina" already exists/);
    const unknown = await runCli(['user', 'rename', 'nobody', 'somebody'], s);
    assert.match(unknown.stderr, /User "nobody" does not exist/);
    const invalid = await runCli(['user', 'rename', 'francis', 'Not-Valid'], s);
    assert.notEqual(invalid.code, 0);
    assert.match(invalid.stderr, /lower-case letters/);
  });

  it('the directory sync says when directory.ldap is not configured', async () => {
    const r = await runCli(['directory', 'sync', '--dry-run'], s);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Job "directory-sync" does not exist/);
  });

  it('auth.mode "both" without directory.ldap is refused at boot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-test-'));
    try {
      await assert.rejects(startTestServer((c) => { c.auth.mode = 'both'; }, dir), /auth\.mode "both" signs directory users in by an LDAP bind: configure directory\.ldap/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
