// The search plugin end to end on a live server: mail filed into archives is indexed behind the
// archive commit, found through GET /api/v1/search with the query language (fields, attachments,
// dates, phrases, paging), within the caller's archives only (a user never finds another's mail by
// any query; auditors search all, audited with the query), and IMAP SEARCH answers stay the scan's.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { message, PASSWORD, startImapServer, type ImapTestServer } from './imap-client.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const MULTIPART = [
  'From: "Carol Q." <carol@example.org>',
  'To: alice@example.com',
  'Subject: =?utf-8?q?Quartalsbericht_f=C3=BCr_M=C3=A4rz?=',
  'Date: Sun, 15 Mar 2026 09:30:00 +0100',
  'Message-ID: <multi@example.org>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="XYZ"',
  '',
  '--XYZ',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Der Umsatz f=C3=BCr M=C3=A4rz ist gestiegen.',
  '--XYZ',
  'Content-Type: application/octet-stream; name="data.bin"',
  'Content-Disposition: attachment; filename="quarterly-data.bin"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('binary attachment words').toString('base64'),
  '--XYZ--',
  '',
].join('\r\n');

interface Page {
  hits: Array<{ user: string; folder: string; uid: number; subject: string; from: string; date: string | null }>;
  nextCursor: string | null;
  total: number;
}

describe('search API over the full-text index', () => {
  let s: ImapTestServer;
  let token: string;
  const call = async (path: string, auth: string): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`http://127.0.0.1:${s.adminPort}${path}`, { headers: { authorization: auth } });
    return { status: res.status, body: await res.json() };
  };
  const basic = (user: string): string => `Basic ${Buffer.from(`${user}:${PASSWORD}`).toString('base64')}`;
  const q = async (query: string, auth = `Bearer ${token}`, extra = ''): Promise<Page> => {
    const r = await call(`/api/v1/search?q=${encodeURIComponent(query)}${extra}`, auth);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as Page;
  };
  const caughtUp = async (): Promise<void> => {
    for (let i = 0; i < 200; i++) {
      const r = await call('/api/v1/search/status', `Bearer ${token}`);
      if ((r.body as { pending: number }).pending === 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error('The index did not catch up in 20 s');
  };

  before(async () => {
    s = await startImapServer([
      { name: 'alice', addresses: ['alice@example.com'] },
      { name: 'bob', addresses: ['bob@example.com'] },
      { name: 'carol', addresses: ['carol@example.net'], privileges: ['auditor'] },
    ], {}, { baseDelayMs: 0 }, [{ name: 'search', config: { intervalSeconds: 1 } }]);
    for (const u of ['alice', 'bob', 'carol']) await s.archive.updateUser(u, { addPrivileges: ['login'] });
    token = readFileSync(join(s.dataDir, 'admin.token'), 'utf8').trim();
    await s.file('alice', 'Inbox', message({ from: 'Bob <bob@example.com>', to: 'alice@example.com', subject: 'Lunch on Friday', date: 'Mon, 01 Jan 2024 12:00:00 +0000', body: 'Shall we meet at noon?' }));
    await s.file('alice', 'Inbox', MULTIPART);
    await s.file('alice', 'Sent', message({ from: 'alice@example.com', to: 'dave@example.net', subject: 'Re: budget review', date: 'Tue, 02 Jan 2024 08:00:00 +0000', body: 'The budget looks fine.' }));
    await s.file('bob', 'Inbox', message({ from: 'eve@example.org', to: 'bob@example.com', subject: 'Secret merger plans', date: 'Wed, 03 Jan 2024 08:00:00 +0000', body: 'Do not tell alice about the merger.' }));
    await caughtUp();
  });
  after(async () => {
    await s.stop();
  });

  it('finds by field, phrase, decoded subject, attachment name and type, date and size', async () => {
    assert.deepEqual((await q('subject:lunch')).hits.map((h) => h.subject), ['Lunch on Friday']);
    assert.equal((await q('quartalsbericht')).hits.length, 1);
    assert.equal((await q('body:"umsatz für märz"')).hits.length, 1);
    assert.equal((await q('attachment:quarterly-data')).hits.length, 1);
    assert.equal((await q('attachment:application/octet-stream')).hits.length, 1);
    assert.equal((await q('has:attachment')).hits.length, 1);
    assert.equal((await q('from:bob@example.com')).hits.length, 1);
    assert.equal((await q('participant:dave@example.net')).hits.length, 1);
    assert.equal((await q('budget folder:Sent')).hits.length, 1);
    assert.equal((await q('budget folder:Inbox')).hits.length, 0);
    assert.equal((await q('after:2024-01-01 before:2024-01-03 user:alice')).hits.length, 1);
    assert.equal((await q('on:2026-03-15')).hits.length, 1);
    assert.equal((await q('larger:100K')).hits.length, 0);
    assert.equal((await q('(lunch OR merger) -from:eve')).hits.length, 1);
  });

  it('pages newest first with a stable cursor', async () => {
    const first = await q('example', `Bearer ${token}`, '&limit=2');
    assert.equal(first.hits.length, 2);
    assert.ok(first.nextCursor);
    assert.equal(first.total, 4);
    const second = await q('example', `Bearer ${token}`, `&limit=2&cursor=${first.nextCursor}`);
    assert.equal(second.hits.length, 2);
    assert.equal(second.nextCursor, null);
    const dates = [...first.hits, ...second.hits].map((h) => h.date ?? '');
    assert.deepEqual(dates, [...dates].sort().reverse());
  });

  it('keeps a user to their own archive whatever the query says', async () => {
    for (const query of ['merger', 'user:bob merger', 'participant:bob@example.com', 'from:eve', 'secret OR lunch']) {
      const page = await q(query, basic('alice'));
      assert.ok(page.hits.every((h) => h.user === 'alice'), `${query}: ${JSON.stringify(page.hits)}`);
    }
    const denied = await call('/api/v1/search?q=merger&user=bob', basic('alice'));
    assert.equal(denied.status, 403);
    assert.equal((await q('merger', basic('bob'))).hits.length, 1);
  });

  it('lets an auditor search every archive, recording the query in the audit log', async () => {
    const page = await q('merger', basic('carol'));
    assert.deepEqual(page.hits.map((h) => h.user), ['bob']);
    const res = await fetch(`http://127.0.0.1:${s.adminPort}/api/v1/audit/records`, { headers: { authorization: `Bearer ${token}` } });
    const records = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { action: string; actor: string; details?: { query?: string } });
    assert.ok(records.some((r) => r.action === 'search.query' && r.actor === 'carol' && r.details?.query === 'merger'), 'the auditor\'s search is in the audit log');
    assert.ok(!records.some((r) => r.action === 'search.query' && r.actor === 'alice'), 'a user searching their own archive is not');
  });

  it('names the position of a malformed query', async () => {
    const r = await call(`/api/v1/search?q=${encodeURIComponent('subject:(lunch')}`, `Bearer ${token}`);
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.body), /position \d+/);
    const short = await call(`/api/v1/search?q=ab`, `Bearer ${token}`);
    assert.equal(short.status, 400);
    assert.match(JSON.stringify(short.body), /at least 3 characters/);
  });

  it('answers IMAP SEARCH as the scan does, also for mail filed after the index caught up', async () => {
    const c = await s.login('alice');
    await c.cmd('SELECT INBOX');
    assert.match((await c.cmd('SEARCH BODY "umsatz"')).text, /^\* SEARCH 2\r?$/m);
    assert.match((await c.cmd('SEARCH SUBJECT "quartalsBERICHT"')).text, /^\* SEARCH 2\r?$/m);
    assert.match((await c.cmd('SEARCH HEADER Message-ID "multi@"')).text, /^\* SEARCH 2\r?$/m);
    assert.match((await c.cmd('SEARCH TEXT "noon"')).text, /^\* SEARCH 1\r?$/m);
    assert.match((await c.cmd('SEARCH FROM "nobody-here"')).text, /^\* SEARCH\r?$/m);
    await s.file('alice', 'Inbox', message({ from: 'frank@example.com', to: 'alice@example.com', subject: 'Fresh noon news', body: 'noon again' }));
    await c.cmd('NOOP');
    assert.match((await c.cmd('SEARCH TEXT "noon"')).text, /^\* SEARCH 1 3\r?$/m);
    c.close();
  });
});
