// Answers that must equal Debian Dovecot 2.3's for the same messages (values pinned from a run of
// test/interop/dovecot.ts over these exact bytes): SENTBEFORE/SENTON/SENTSINCE on the Date header's
// day in the sender's zone (including "GMT+1" from the SpamAssassin corpus, and missing or unreadable
// dates counting as 1-Jan-1970), raw 8-bit header bytes passed through ENVELOPE unchanged, and line
// counts of text parts whose last line has no line break. Also the IMAP ports in the status listeners.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startImapServer, type ImapClient, type ImapTestServer } from './imap-client.ts';

const L = (s: string): Buffer => Buffer.from(s, 'latin1');
const dated = (date: string | null): Buffer => L(`From: a@b.c\r\n${date === null ? '' : `Date: ${date}\r\n`}Subject: t\r\nMessage-ID: <x@y>\r\n\r\nhello\r\n`);

const MESSAGES: Buffer[] = [
  dated('Tue, 20 Aug 2002 10:00:00 GMT+1'),
  dated('Tue, 20 Aug 2002 00:30:00 GMT+1'),
  dated('Tue, 20 Aug 2002 23:30:00 GMT+1'),
  dated('Tue, 20 Aug 2002 23:30:00 -0500'),
  dated('Tue, 20 Aug 2002 00:30:00 +0200'),
  dated('Tue, 20 Aug 2002 10:00:00 GMT-5'),
  dated('Tue, 20 Aug 2002 10:00:00 GMT+0100'),
  dated('garbage'),
  L('From: J\xe9r\xf4me <a@b.c>\r\nSubject: caf\xe9 ol\xe9\r\nDate: Tue, 20 Aug 2002 10:00:00 +0000\r\n\r\none line no newline'),
  L('Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nabc\r\n--b\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n--b--\r\n'),
  L('Subject: y\r\n\r\nabc'),
  L('Subject: y\r\n\r\nabc\r\ndef'),
  L('Subject: y\r\n\r\n'),
  L('Subject: y\r\n\r\n\r\n'),
  L('Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nabc'),
  L('Subject: x\r\nContent-Type: message/rfc822\r\n\r\nSubject: z\r\n\r\nabc'),
];

describe('IMAP answers as Dovecot gives them', () => {
  let s: ImapTestServer;
  let c: ImapClient;
  before(async () => {
    s = await startImapServer([{ name: 'alice', addresses: ['alice@example.com'] }]);
    for (const m of MESSAGES) {
      await s.running.app.service('capture').submit(m, {
        listener: 'test-import', envelope: { mailFrom: '', rcptTo: [] }, session: { remoteAddress: '127.0.0.1', helo: 'test', user: null },
        assign: { user: 'alice', direction: 'received', folder: 'Inbox', exclusive: true, reason: 'test import' },
      });
      await s.settle();
    }
    c = await s.login('alice');
    assert.match((await c.cmd('EXAMINE INBOX')).status, /^OK /);
  });
  after(async () => {
    c.close();
    await s.stop();
  });

  const search = async (keys: string): Promise<string> => {
    const r = await c.cmd(`SEARCH ${keys}`);
    assert.equal(r.kind, 'OK', r.status);
    return r.lines.find((l) => l.startsWith('* SEARCH')) ?? '';
  };

  it('compares SENTON/SENTBEFORE/SENTSINCE on the day the Date header was written in', async () => {
    assert.equal(await search('SENTON 20-Aug-2002'), '* SEARCH 1 2 3 4 5 6 7 9');
    assert.equal(await search('SENTON 19-Aug-2002'), '* SEARCH');
    assert.equal(await search('SENTON 21-Aug-2002'), '* SEARCH');
    assert.equal(await search('SENTBEFORE 20-Aug-2002'), '* SEARCH 8 10 11 12 13 14 15 16');
    assert.equal(await search('SENTSINCE 21-Aug-2002'), '* SEARCH');
    assert.equal(await search('SENTSINCE 1-Jan-1971'), '* SEARCH 1 2 3 4 5 6 7 9');
    assert.equal(await search('SENTBEFORE 1-Jan-1971'), '* SEARCH 8 10 11 12 13 14 15 16');
    assert.equal(await search('SENTSINCE 20-Aug-2002 NOT SENTON 20-Aug-2002'), '* SEARCH');
  });

  it('passes raw 8-bit header bytes through ENVELOPE unchanged (literal lengths count those bytes)', async () => {
    const r = await c.cmd('FETCH 9 (ENVELOPE)');
    assert.equal(r.kind, 'OK');
    assert.equal(r.lines.join('\r\n'), '* 9 FETCH (ENVELOPE ("Tue, 20 Aug 2002 10:00:00 +0000" {8}\r\ncaf\xe9 ol\xe9 (({6}\r\nJ\xe9r\xf4me NIL "a" "b.c")) (({6}\r\nJ\xe9r\xf4me NIL "a" "b.c")) (({6}\r\nJ\xe9r\xf4me NIL "a" "b.c")) NIL NIL NIL NIL NIL))');
  });

  it('counts the lines of text parts as Dovecot does when the last line has no line break', async () => {
    const body = async (n: number): Promise<string> => {
      const r = await c.cmd(`FETCH ${n} (BODY)`);
      return (/BODY (.*)\)$/.exec(r.lines.join('\r\n')) ?? [])[1] ?? r.status;
    };
    const T = '"text" "plain" ("charset" "us-ascii") NIL NIL "7bit"';
    assert.equal(await body(9), `(${T} 19 0)`);
    assert.equal(await body(10), `((${T} 3 0)(${T} 12 1) "mixed")`);
    assert.equal(await body(11), `(${T} 3 0)`);
    assert.equal(await body(12), `(${T} 8 1)`);
    assert.equal(await body(13), `(${T} 0 0)`);
    assert.equal(await body(14), `(${T} 2 1)`);
    assert.equal(await body(15), `((${T} 3 0) "mixed")`);
    assert.equal(await body(16), `("message" "rfc822" NIL NIL NIL "7bit" 17 (NIL "z" NIL NIL NIL NIL NIL NIL NIL NIL) (${T} 3 0) 2)`);
  });

  it('lists the IMAP ports among the status listeners', async () => {
    const token = readFileSync(join(s.dataDir, 'admin.token'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${s.adminPort}/api/v1/status`, { headers: { authorization: `Bearer ${token}` } });
    const status = (await res.json()) as { listeners: Record<string, number | null> };
    assert.equal(status.listeners.imap, s.imapPort);
    assert.equal(status.listeners.imaps, s.imapsPort);
    assert.ok(s.imapPort > 0 && s.imapsPort > 0);
  });
});
