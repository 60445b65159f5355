// IMAP transcripts for mailbox commands: LIST (patterns, SPECIAL-USE, RETURN, hierarchy, modified
// UTF-7), LSUB, STATUS, SELECT/EXAMINE ([READ-ONLY] snapshots), CHECK/CLOSE/UNSELECT, SUBSCRIBE, every
// refused write, the per-year split, the auditor namespace with the `access` hook, and new mail
// announced to NOOP and IDLE clients after delivery over SMTP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AccessInfo } from '../../core/app/hook-types.ts';
import { message, startImapServer, type ImapTestServer } from './imap-client.ts';

describe('IMAP mailbox commands', () => {
  let s: ImapTestServer;
  const access: AccessInfo[] = [];
  before(async () => {
    s = await startImapServer([
      { name: 'alice', addresses: ['alice@example.com'] },
      { name: 'bob', addresses: ['bob@example.com'] },
      { name: 'audrey', addresses: ['audrey@example.com'], privileges: ['auditor'] },
    ], { splitByYearAbove: 2 });
    s.running.app.hooks.on('access', 'test', (info) => {
      access.push(info);
    });
    await s.deliver('bob@example.com', ['alice@example.com'], message({ from: 'bob@example.com', to: 'alice@example.com', subject: 'one', date: 'Tue, 01 Jan 2024 10:00:00 +0000' }));
    await s.deliver('bob@example.com', ['alice@example.com'], message({ from: 'bob@example.com', to: 'alice@example.com', subject: 'two', date: 'Wed, 01 Jan 2025 10:00:00 +0000' }));
    await s.deliver('bob@example.com', ['alice@example.com'], message({ from: 'bob@example.com', to: 'alice@example.com', subject: 'three', date: 'Thu, 01 Jan 2026 10:00:00 +0000' }));
    await s.deliver('alice@example.com', ['carol@elsewhere.example'], message({ from: 'alice@example.com', to: 'carol@elsewhere.example', subject: 'sent one' }));
    await s.file('alice', 'Archiv/Ältere', message({ from: 'x@example.org', to: 'alice@example.com', subject: 'imported' }));
  });
  after(() => s.stop());

  it('lists the own folders with INBOX, \\Sent, year children, hierarchy and modified UTF-7 names', async () => {
    const c = await s.login('alice');
    let r = await c.cmd('LIST "" "*"');
    assert.deepEqual(r.lines, [
      '* LIST (\\HasChildren) "/" "INBOX"',
      '* LIST (\\Noselect \\HasChildren) "/" "Archiv"',
      '* LIST (\\HasNoChildren) "/" "Archiv/&AMQ-ltere"',
      '* LIST (\\HasNoChildren) "/" "INBOX/2024"',
      '* LIST (\\HasNoChildren) "/" "INBOX/2025"',
      '* LIST (\\HasNoChildren) "/" "INBOX/2026"',
      '* LIST (\\Sent \\HasNoChildren) "/" "Sent"',
    ]);
    r = await c.cmd('LIST "" "%"');
    assert.deepEqual(r.lines, ['* LIST (\\HasChildren) "/" "INBOX"', '* LIST (\\Noselect \\HasChildren) "/" "Archiv"', '* LIST (\\Sent \\HasNoChildren) "/" "Sent"']);
    r = await c.cmd('LIST "" "inbox/%"');
    assert.equal(r.lines.length, 3);
    r = await c.cmd('LIST "INBOX/" "2025"');
    assert.deepEqual(r.lines, ['* LIST (\\HasNoChildren) "/" "INBOX/2025"']);
    r = await c.cmd('LIST "" ""');
    assert.deepEqual(r.lines, ['* LIST (\\Noselect) "/" ""']);
    r = await c.cmd('LIST (SPECIAL-USE) "" "*"');
    assert.deepEqual(r.lines, ['* LIST (\\Sent \\HasNoChildren) "/" "Sent"']);
    r = await c.cmd('LIST "" "*" RETURN (SPECIAL-USE)');
    assert.equal(r.lines.length, 7);
    r = await c.cmd('LIST "" ("INBOX" "Sent")');
    assert.equal(r.lines.length, 2);
    r = await c.cmd('LIST "" "Users/*"');
    assert.deepEqual(r.lines, [], 'no shared namespace for a non-auditor');
    r = await c.cmd('LSUB "" "*"');
    assert.ok(!r.text.includes('"Archiv"'), 'LSUB lists selectable folders only');
    assert.equal(r.lines.length, 6);
    for (const bad of ['LIST', 'LIST ""', 'LIST (FOO) "" "*"', 'LIST "" "&Jjo"', 'LIST "" (a) b c']) assert.equal((await c.cmd(bad)).kind, 'BAD', bad);
    c.close();
  });

  it('selects and examines read-only, with snapshot counts, UIDVALIDITY and UIDNEXT', async () => {
    const c = await s.login('alice');
    let r = await c.cmd('SELECT INBOX');
    assert.equal(r.status, 'OK [READ-ONLY] SELECT completed');
    assert.equal(r.lines[0], '* FLAGS (\\Seen)');
    assert.equal(r.lines[1], '* OK [PERMANENTFLAGS ()] The archive is read-only; \\Seen lasts for this session only');
    assert.equal(r.lines[2], '* 3 EXISTS');
    assert.match(r.text, /\* OK \[UIDVALIDITY \d+\]/);
    assert.match(r.text, /\* OK \[UIDNEXT 4\]/);
    r = await c.cmd('EXAMINE "INBOX/2025"');
    assert.equal(r.status, 'OK [READ-ONLY] EXAMINE completed');
    assert.equal(r.lines[2], '* 1 EXISTS');
    r = await c.cmd('FETCH 1 (UID ENVELOPE)');
    assert.match(r.text, /UID 2 ENVELOPE \("Wed, 01 Jan 2025/);
    r = await c.cmd('SELECT "Archiv/&AMQ-ltere"');
    assert.equal(r.lines[2], '* 1 EXISTS');
    r = await c.cmd('SELECT Archiv');
    assert.equal(r.status, 'NO [NONEXISTENT] Mailbox "Archiv" cannot be selected');
    assert.equal((await c.cmd('FETCH 1 FLAGS')).status, 'NO Select a mailbox first', 'a failed SELECT leaves no mailbox selected');
    assert.equal((await c.cmd('SELECT Nope')).status, 'NO [NONEXISTENT] Mailbox "Nope" does not exist');
    assert.equal((await c.cmd('SELECT INBOX (CONDSTORE)')).kind, 'BAD');
    assert.equal((await c.cmd('SELECT')).kind, 'BAD');
    await c.cmd('SELECT sent');
    assert.equal((await c.cmd('SELECT sent')).status, 'NO [NONEXISTENT] Mailbox "sent" does not exist', 'only INBOX is case-insensitive');
    r = await c.cmd('SELECT Sent');
    assert.equal(r.lines[2], '* 1 EXISTS');
    assert.equal((await c.cmd('CHECK')).status, 'OK CHECK completed');
    assert.equal((await c.cmd('CLOSE')).kind, 'OK');
    assert.equal((await c.cmd('CLOSE')).status, 'NO Select a mailbox first');
    await c.cmd('SELECT INBOX');
    assert.equal((await c.cmd('UNSELECT')).kind, 'OK');
    assert.equal((await c.cmd('UNSELECT')).status, 'NO Select a mailbox first');
    await c.cmd('EXAMINE INBOX');
    for (const cmd of ['CHECK now', 'CLOSE INBOX', 'UNSELECT INBOX', 'NOOP 1', 'IDLE 5', 'NAMESPACE x', 'EXAMINE', 'SUBSCRIBE', 'UNSUBSCRIBE']) {
      assert.equal((await c.cmd(cmd)).kind, 'BAD', cmd);
    }
    c.close();
  });

  it('answers STATUS for any visible mailbox and refuses unknown items', async () => {
    const c = await s.login('alice');
    let r = await c.cmd('STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)');
    assert.match(r.lines[0] ?? '', /^\* STATUS "INBOX" \(MESSAGES 3 RECENT 0 UIDNEXT 4 UIDVALIDITY \d+ UNSEEN 3\)$/);
    r = await c.cmd('STATUS "INBOX/2026" (MESSAGES)');
    assert.deepEqual(r.lines, ['* STATUS "INBOX/2026" (MESSAGES 1)']);
    assert.equal((await c.cmd('STATUS INBOX (FOO)')).kind, 'BAD');
    assert.equal((await c.cmd('STATUS INBOX ()')).kind, 'BAD');
    assert.equal((await c.cmd('STATUS INBOX MESSAGES')).kind, 'BAD');
    assert.equal((await c.cmd('STATUS Archiv (MESSAGES)')).kind, 'NO');
    assert.equal((await c.cmd('STATUS Users/bob/Inbox (MESSAGES)')).status, 'NO [NONEXISTENT] Mailbox "Users/bob/Inbox" does not exist');
    c.close();
  });

  it('refuses every write with NO [CANNOT], and SUBSCRIBE changes nothing', async () => {
    const c = await s.login('alice');
    for (const cmd of ['CREATE New', 'DELETE INBOX', 'DELETE Sent', 'RENAME Sent Old', 'APPEND INBOX {3+}\r\nabc', 'APPEND INBOX (\\Seen) {3+}\r\nabc', 'UNSUBSCRIBE INBOX']) {
      assert.match((await c.cmd(cmd)).status, /^NO \[CANNOT\] /, cmd);
    }
    c.write('A1 APPEND INBOX {300}\r\n');
    assert.equal(await c.readUnit(), 'A1 NO [CANNOT] The archive is read-only; APPEND is not possible', 'no continuation for a refused APPEND');
    assert.equal((await c.cmd('SUBSCRIBE INBOX')).kind, 'OK');
    assert.equal((await c.cmd('SUBSCRIBE Nope')).kind, 'NO');
    await c.cmd('SELECT INBOX');
    for (const cmd of ['COPY 1 Sent', 'MOVE 1 Sent', 'EXPUNGE', 'UID COPY 1 Sent', 'UID MOVE 1 Sent', 'UID EXPUNGE 1', 'STORE 1 +FLAGS (\\Deleted)', 'STORE 1 FLAGS (\\Seen \\Flagged)', 'UID STORE 1 +FLAGS.SILENT (\\Deleted)']) {
      assert.match((await c.cmd(cmd)).status, /^NO \[CANNOT\] /, cmd);
    }
    assert.deepEqual((await c.cmd('FETCH 1:* UID')).lines.length, 3, 'nothing was removed');
    c.close();
  });

  it('gives auditors every archive under Users/ and records each access on the access hook', async () => {
    const c = await s.login('audrey');
    let r = await c.cmd('NAMESPACE');
    assert.deepEqual(r.lines, ['* NAMESPACE (("" "/")) NIL (("Users/" "/"))']);
    r = await c.cmd('LIST "" "Users/alice/*"');
    assert.deepEqual(r.lines, [
      '* LIST (\\Noselect \\HasChildren) "/" "Users/alice/Archiv"',
      '* LIST (\\HasNoChildren) "/" "Users/alice/Archiv/&AMQ-ltere"',
      '* LIST (\\HasChildren) "/" "Users/alice/Inbox"',
      '* LIST (\\HasNoChildren) "/" "Users/alice/Inbox/2024"',
      '* LIST (\\HasNoChildren) "/" "Users/alice/Inbox/2025"',
      '* LIST (\\HasNoChildren) "/" "Users/alice/Inbox/2026"',
      '* LIST (\\HasNoChildren) "/" "Users/alice/Sent"',
    ]);
    r = await c.cmd('LIST "" "Users/%"');
    assert.ok(r.lines.includes('* LIST (\\Noselect \\HasChildren) "/" "Users/alice"'));
    assert.ok(r.lines.includes('* LIST (\\Noselect \\HasChildren) "/" "Users/bob"'));
    access.length = 0;
    r = await c.cmd('EXAMINE Users/alice/Inbox');
    assert.equal(r.lines[2], '* 3 EXISTS');
    r = await c.cmd('FETCH 2 (BODY.PEEK[HEADER] BODY.PEEK[TEXT])');
    assert.equal(r.kind, 'OK');
    await c.cmd('FETCH 1 (FLAGS ENVELOPE)');
    assert.deepEqual(access, [
      { user: 'audrey', auditor: true, target: 'alice', folder: 'Inbox', uid: null, what: 'examine', via: 'imap' },
      { user: 'audrey', auditor: true, target: 'alice', folder: 'Inbox', uid: 2, what: 'fetch-body', via: 'imap' },
    ]);
    assert.equal((await c.cmd('SELECT Users/nobody/Inbox')).kind, 'NO');
    assert.equal((await c.cmd('SELECT Users/alice')).kind, 'NO');
    c.close();
    access.length = 0;
    const a = await s.login('alice');
    await a.cmd('SELECT INBOX');
    await a.cmd('FETCH 1 BODY.PEEK[]');
    assert.deepEqual(access.map((x) => [x.user, x.auditor, x.target, x.what]), [['alice', false, 'alice', 'select'], ['alice', false, 'alice', 'fetch-body']]);
    a.close();
  });

  it('announces mail delivered over SMTP to NOOP pollers and, at once, to IDLE clients', async () => {
    const idler = await s.login('alice');
    const poller = await s.login('alice');
    assert.equal((await idler.cmd('SELECT INBOX')).lines[2], '* 3 EXISTS');
    assert.equal((await poller.cmd('EXAMINE INBOX')).lines[2], '* 3 EXISTS');
    idler.write('I1 IDLE\r\n');
    assert.equal(await idler.readUnit(), '+ idling');
    await s.deliver('bob@example.com', ['alice@example.com'], message({ from: 'bob@example.com', to: 'alice@example.com', subject: 'fresh' }));
    assert.equal(await idler.readUnit(5000), '* 4 EXISTS');
    idler.write('DONE\r\n');
    assert.equal((await idler.until('I1')).status, 'OK IDLE terminated');
    assert.match((await idler.cmd('FETCH 4 ENVELOPE')).text, /"fresh"/);
    let r = await poller.cmd('FETCH 4 FLAGS');
    assert.equal(r.kind, 'BAD', 'the snapshot grows only when announced');
    r = await poller.cmd('NOOP');
    assert.deepEqual(r.lines, ['* 4 EXISTS']);
    assert.deepEqual((await poller.cmd('NOOP')).lines, []);
    idler.write('I2 IDLE\r\n');
    await idler.readUnit();
    idler.write('STOP\r\n');
    assert.equal((await idler.until('I2')).status, 'BAD Expected DONE to end IDLE');
    idler.close();
    poller.close();
  });
});
