// IMAP and the audit log: every login attempt (success, wrong password, no IMAP access) and every
// auditor read of another user's archive become chained audit records; the chain still verifies.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditRecord } from '../../core/audit/types.ts';
import { PASSWORD, message, startImapServer, type ImapTestServer } from './imap-client.ts';

async function records(s: ImapTestServer): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of s.running.app.service('audit').list()) out.push(r);
  return out;
}

describe('IMAP logins and auditor reads in the audit log', () => {
  let s: ImapTestServer;
  before(async () => {
    s = await startImapServer([
      { name: 'alice', addresses: ['alice@example.com'] },
      { name: 'carol', addresses: ['carol@example.com'], imap: false },
      { name: 'audra', addresses: ['audra@example.com'], privileges: ['auditor'] },
    ]);
    await s.deliver('bob@else.example', ['alice@example.com'], message({ from: 'bob@else.example', to: 'alice@example.com', subject: 'audited' }));
  });
  after(() => s.stop());

  it('records successful and failed logins without the password', async () => {
    (await s.login('alice')).close();
    await assert.rejects(s.login('alice', 'wrong password'));
    await assert.rejects(s.login('carol'));
    const logins = (await records(s)).filter((r) => r.category === 'login' && r.action === 'imap.login');
    assert.deepEqual(logins.map((r) => [r.target, r.outcome]), [['alice', 'success'], ['alice', 'failure'], ['carol', 'failure']]);
    assert.equal(logins[0]?.actor, 'alice');
    assert.equal(logins[0]?.remote, '127.0.0.1');
    assert.ok(!JSON.stringify(logins).includes('wrong password') && !JSON.stringify(logins).includes(PASSWORD), 'no password in the audit log');
  });

  it("records an auditor's reads of another user's archive, and the chain verifies", async () => {
    const c = await s.login('audra');
    assert.equal((await c.cmd('EXAMINE "Users/alice/Inbox"')).kind, 'OK');
    assert.equal((await c.cmd('FETCH 1 BODY.PEEK[]')).kind, 'OK');
    c.close();
    const reads = (await records(s)).filter((r) => r.category === 'access' && r.actor === 'audra');
    assert.deepEqual(reads.map((r) => r.action), ['imap.examine', 'imap.fetch-body']);
    assert.ok(reads.every((r) => r.target.startsWith('alice/Inbox')), JSON.stringify(reads.map((r) => r.target)));
    const v = await s.running.app.service('audit').verify();
    assert.equal(v.ok, true, JSON.stringify(v.problem));
  });
});
