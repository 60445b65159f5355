// User isolation over IMAP: user A runs every command against user B's folders (by every name that
// could reach them) and nothing of B's leaks: no folder, no count, no message, no EXISTS; refusals for
// B's existing folders read exactly like those for folders that do not exist.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { message, PASSWORD, startImapServer, type ImapClient, type ImapTestServer } from './imap-client.ts';

const SECRET = 'Bobs-secret-marker';

describe('IMAP user isolation', () => {
  let s: ImapTestServer;
  let a: ImapClient;
  const seen: string[] = [];
  const run = async (cmd: string): Promise<{ kind: string; status: string; lines: string[] }> => {
    const r = await a.cmd(cmd);
    seen.push(r.status, ...r.lines);
    return r;
  };

  before(async () => {
    s = await startImapServer([
      { name: 'alice', addresses: ['alice@example.com'] },
      { name: 'bob', addresses: ['bob@example.com'], password: 'bobs own password' },
    ]);
    await s.deliver('carol@example.org', ['bob@example.com'], message({ from: 'carol@example.org', to: 'bob@example.com', subject: `${SECRET} inbox`, body: SECRET }));
    await s.deliver('bob@example.com', ['carol@example.org'], message({ from: 'bob@example.com', to: 'carol@example.org', subject: `${SECRET} sent`, body: SECRET }));
    await s.file('bob', 'Secret', message({ from: 'x@example.org', to: 'bob@example.com', subject: `${SECRET} folder`, body: SECRET }));
    await s.deliver('carol@example.org', ['alice@example.com'], message({ from: 'carol@example.org', to: 'alice@example.com', subject: 'for alice', body: 'hello alice' }));
    a = await s.login('alice');
  });
  after(async () => {
    a.close();
    await s.stop();
  });

  const bobNames = ['Users/bob/Inbox', 'Users/bob/Secret', 'Users/bob/Sent', 'Users/bob', 'Users', 'bob/Inbox', 'Secret', '../bob/Inbox', 'INBOX/../bob', '/bob/Inbox', 'Users/bob/INBOX'];

  it('cannot name, list or open any of B\'s folders, and existing ones look like missing ones', async () => {
    for (const name of bobNames) {
      for (const cmd of ['SELECT', 'EXAMINE']) {
        const r = await run(`${cmd} "${name}"`);
        assert.equal(r.status, `NO [NONEXISTENT] Mailbox "${name}" does not exist`, `${cmd} ${name}`);
      }
      assert.equal((await run(`STATUS "${name}" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)`)).status, `NO [NONEXISTENT] Mailbox "${name}" does not exist`);
      assert.equal((await run(`SUBSCRIBE "${name}"`)).status, `NO [NONEXISTENT] Mailbox "${name}" does not exist`);
      for (const cmd of [`CREATE "${name}"`, `DELETE "${name}"`, `RENAME "${name}" Mine`, `RENAME INBOX "${name}"`, `APPEND "${name}" {3+}\r\nabc`, `UNSUBSCRIBE "${name}"`]) {
        assert.match((await run(cmd)).status, /^NO \[CANNOT\] /, cmd);
      }
    }
    const missing = await run('SELECT "Users/nobody/Inbox"');
    const existing = await run('SELECT "Users/bob/Inbox"');
    assert.equal(existing.status.replace('bob', 'nobody'), missing.status);
    for (const pattern of ['*', '%', '%/%', 'Users/*', '*bob*', '*Secret*', 'Users/bob/%']) {
      for (const cmd of ['LIST', 'LSUB']) {
        const r = await run(`${cmd} "" "${pattern}"`);
        assert.ok(r.lines.every((l) => !/bob|Secret|Users/.test(l)), `${cmd} ${pattern}: ${r.lines.join(' | ')}`);
      }
    }
    assert.deepEqual((await run('LIST "Users/bob/" "*"')).lines, []);
    assert.deepEqual((await run('NAMESPACE')).lines, ['* NAMESPACE (("" "/")) NIL NIL']);
  });

  it('sees only A\'s messages through FETCH, SEARCH, STORE and COPY, and hears nothing of B\'s new mail', async () => {
    await run('SELECT INBOX');
    let r = await run('UID FETCH 1:* (UID ENVELOPE BODY.PEEK[])');
    assert.equal(r.lines.length, 1);
    assert.match(r.lines[0] ?? '', /for alice/);
    r = await run('UID FETCH 1:4294967295 (UID)');
    assert.equal(r.lines.length, 1);
    for (const cmd of ['FETCH 2 BODY[]', 'FETCH 2:3 FLAGS', 'STORE 2 +FLAGS (\\Seen)']) assert.equal((await run(cmd)).kind, 'BAD', cmd);
    for (const cmd of ['SEARCH TEXT Bobs-secret-marker', 'SEARCH SUBJECT Bobs', 'UID SEARCH ALL', 'SEARCH OR BODY Bobs-secret-marker HEADER Subject Bobs']) {
      r = await run(cmd);
      assert.ok(r.lines[0] === '* SEARCH' || r.lines[0] === '* SEARCH 1', cmd);
    }
    for (const name of bobNames) {
      for (const cmd of [`COPY 1 "${name}"`, `MOVE 1 "${name}"`, `UID COPY 1 "${name}"`, `UID MOVE 1 "${name}"`]) assert.match((await run(cmd)).status, /^NO \[CANNOT\] /, cmd);
    }
    a.write('I1 IDLE\r\n');
    assert.equal(await a.readUnit(), '+ idling');
    await s.deliver('carol@example.org', ['bob@example.com'], message({ from: 'carol@example.org', to: 'bob@example.com', subject: `${SECRET} later` }));
    a.write('DONE\r\n');
    r = await a.until('I1');
    assert.deepEqual(r.lines, [], 'no EXISTS for B\'s folder');
    assert.deepEqual((await run('NOOP')).lines, []);
    assert.ok(!seen.join('\n').includes(SECRET), 'nothing of B\'s mail reached A');
  });

  it('cannot log in as B with A\'s password, by name or address', async () => {
    for (const login of ['bob', 'bob@example.com', 'BOB']) {
      const c = await s.login('alice');
      const r = await c.cmd('LOGOUT');
      assert.equal(r.kind, 'OK');
      const { ImapClient } = await import('./imap-client.ts');
      const d = await ImapClient.open(s.imapPort);
      await d.readUnit();
      assert.equal((await d.cmd(`LOGIN ${login} "${PASSWORD}"`)).status, 'NO [AUTHENTICATIONFAILED] Authentication failed', login);
      d.close();
    }
  });
});
