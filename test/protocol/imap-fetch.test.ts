// IMAP transcripts for FETCH (every data item, sections, partials, macros, UID FETCH), session-only
// \Seen and STORE, bad sequence sets and data items, and SEARCH with the RFC 3501 key set.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { message, startImapServer, type ImapClient, type ImapTestServer } from './imap-client.ts';

const MULTIPART = [
  'From: "Carol Q." <carol@example.org>',
  'To: alice@example.com',
  'Cc: Dave <dave@example.net>',
  'Subject: =?utf-8?q?Quartalsbericht_f=C3=BCr_M=C3=A4rz?=',
  'Date: Sun, 15 Mar 2026 09:30:00 +0100',
  'Message-ID: <multi@example.org>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="XYZ"',
  '',
  'preamble',
  '--XYZ',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Der Umsatz f=C3=BCr M=C3=A4rz ist gestiegen.',
  '--XYZ',
  'Content-Type: application/octet-stream; name="data.bin"',
  'Content-Disposition: attachment; filename="data.bin"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('secret attachment words').toString('base64'),
  '--XYZ--',
  '',
].join('\r\n');

describe('IMAP FETCH, STORE and SEARCH', () => {
  let s: ImapTestServer;
  let c: ImapClient;
  let plain: string;
  before(async () => {
    s = await startImapServer([{ name: 'alice', addresses: ['alice@example.com'] }]);
    plain = message({ from: 'Bob <bob@example.com>', to: 'alice@example.com', subject: 'Lunch on Friday', date: 'Mon, 01 Jan 2024 12:00:00 +0000', body: 'Shall we meet at noon?', extra: 'Bcc: eve@example.com' });
    await s.file('alice', 'Inbox', plain);
    await s.file('alice', 'Inbox', MULTIPART);
    await s.file('alice', 'Inbox', message({ from: 'zed@example.com', to: 'alice@example.com', subject: 'x'.repeat(50), body: 'y'.repeat(3000) }));
    c = await s.login('alice');
    await c.cmd('SELECT INBOX');
  });
  after(async () => {
    c.close();
    await s.stop();
  });

  it('fetches FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE and the macros', async () => {
    let r = await c.cmd('FETCH 1 (FLAGS UID INTERNALDATE RFC822.SIZE ENVELOPE)');
    assert.match(r.lines[0] ?? '', new RegExp(`^\\* 1 FETCH \\(FLAGS \\(\\) UID 1 INTERNALDATE "\\d\\d-[A-Z][a-z]{2}-\\d{4} \\d\\d:\\d\\d:\\d\\d \\+0000" RFC822.SIZE ${Buffer.byteLength(plain)} ENVELOPE \\("Mon, 01 Jan 2024 12:00:00 \\+0000" "Lunch on Friday" \\(\\("Bob" NIL "bob" "example.com"\\)\\)`));
    r = await c.cmd('FETCH 2 (BODY BODYSTRUCTURE)');
    assert.match(r.lines[0] ?? '', /BODY \(\("text" "plain" \("charset" "utf-8"\) NIL NIL "quoted-printable" \d+ \d+\)\("application" "octet-stream" \("name" "data.bin"\) NIL NIL "base64" \d+\) "mixed"\) BODYSTRUCTURE \(\("text" "plain"/);
    r = await c.cmd('FETCH 1 ALL');
    assert.match(r.lines[0] ?? '', /^\* 1 FETCH \(FLAGS \(\) INTERNALDATE "[^"]+" RFC822.SIZE \d+ ENVELOPE \(/);
    r = await c.cmd('FETCH 1:2 FAST');
    assert.equal(r.lines.length, 2);
    assert.doesNotMatch(r.text, /ENVELOPE/);
    r = await c.cmd('FETCH 1 FULL');
    assert.match(r.lines[0] ?? '', / BODY \("text" "plain"/);
  });

  it('fetches body sections byte-exact: BODY[], HEADER, TEXT, parts, MIME, HEADER.FIELDS(.NOT), partials, RFC822.*', async () => {
    const headerEnd = plain.indexOf('\r\n\r\n') + 4;
    const cases: Array<[string, string]> = [
      ['BODY.PEEK[]', `BODY[] {${Buffer.byteLength(plain)}}\r\n${plain}`],
      ['BODY.PEEK[HEADER]', `BODY[HEADER] {${headerEnd}}\r\n${plain.slice(0, headerEnd)}`],
      ['BODY.PEEK[TEXT]', `BODY[TEXT] {${plain.length - headerEnd}}\r\n${plain.slice(headerEnd)}`],
      ['BODY.PEEK[HEADER.FIELDS (SUBJECT from)]', 'BODY[HEADER.FIELDS (SUBJECT FROM)] {57}\r\nFrom: Bob <bob@example.com>\r\nSubject: Lunch on Friday\r\n\r\n'],
      ['BODY.PEEK[]<0.4>', 'BODY[]<0> {4}\r\nFrom'],
      ['BODY.PEEK[]<6.3>', 'BODY[]<6> {3}\r\nBob'],
      ['BODY.PEEK[]<99999.10>', 'BODY[]<99999> ""'],
      ['RFC822.HEADER', `RFC822.HEADER {${headerEnd}}\r\n${plain.slice(0, headerEnd)}`],
    ];
    for (const [item, want] of cases) {
      const r = await c.cmd(`FETCH 1 (${item})`);
      assert.equal(r.lines[0], `* 1 FETCH (${want})`, item);
    }
    let r = await c.cmd('FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (Subject From To Date Message-ID MIME-Version Content-Type)])');
    assert.equal(r.lines[0], '* 1 FETCH (BODY[HEADER.FIELDS.NOT (SUBJECT FROM TO DATE MESSAGE-ID MIME-VERSION CONTENT-TYPE)] {24}\r\nBcc: eve@example.com\r\n\r\n)');
    r = await c.cmd('FETCH 2 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2])');
    assert.match(r.lines[0] ?? '', /BODY\[1\] \{\d+\}\r\nDer Umsatz f=C3=BCr M=C3=A4rz ist gestiegen\. BODY\[1\.MIME\] \{\d+\}\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n BODY\[2\] \{\d+\}\r\nc2VjcmV0/);
    r = await c.cmd('FETCH 3 (RFC822.SIZE BODY.PEEK[TEXT]<100.50>)');
    assert.match(r.lines[0] ?? '', /BODY\[TEXT\]<100> \{50\}\r\ny{50}\)$/);
    r = await c.cmd('UID FETCH 2:3 (RFC822.SIZE)');
    assert.deepEqual(r.lines.map((l) => l.replace(/RFC822.SIZE \d+/, 'S')), ['* 2 FETCH (UID 2 S)', '* 3 FETCH (UID 3 S)']);
    r = await c.cmd('UID FETCH 9:* FLAGS');
    assert.deepEqual(r.lines, ['* 3 FETCH (UID 3 FLAGS ())'], '"9:*" includes the last message');
    r = await c.cmd('UID FETCH 4:8 FLAGS');
    assert.deepEqual(r.lines, []);
  });

  it('sets \\Seen for the session on non-PEEK body fetches in SELECT, never in EXAMINE, and lets STORE change only \\Seen', async () => {
    await c.cmd('EXAMINE INBOX');
    let r = await c.cmd('FETCH 1 (RFC822.TEXT)');
    assert.doesNotMatch(r.text, /FLAGS/);
    assert.equal((await c.cmd('STORE 1 +FLAGS (\\Seen)')).status, 'NO [READ-ONLY] The mailbox was opened with EXAMINE');
    await c.cmd('SELECT INBOX');
    r = await c.cmd('FETCH 1 RFC822');
    assert.match(r.lines[0] ?? '', /^\* 1 FETCH \(RFC822 \{\d+\}\r\n[\s\S]* FLAGS \(\\Seen\)\)$/);
    r = await c.cmd('FETCH 1:2 FLAGS');
    assert.deepEqual(r.lines, ['* 1 FETCH (FLAGS (\\Seen))', '* 2 FETCH (FLAGS ())']);
    assert.deepEqual((await c.cmd('SEARCH SEEN')).lines, ['* SEARCH 1']);
    assert.deepEqual((await c.cmd('SEARCH UNSEEN')).lines, ['* SEARCH 2 3']);
    r = await c.cmd('STORE 2 +FLAGS (\\Seen)');
    assert.deepEqual(r.lines, ['* 2 FETCH (FLAGS (\\Seen))']);
    r = await c.cmd('UID STORE 1:2 -FLAGS.SILENT (\\Seen)');
    assert.deepEqual(r.lines, []);
    r = await c.cmd('STORE 3 FLAGS \\Seen');
    assert.deepEqual(r.lines, ['* 3 FETCH (FLAGS (\\Seen))']);
    r = await c.cmd('STORE 3 FLAGS ()');
    assert.deepEqual(r.lines, ['* 3 FETCH (FLAGS ())']);
    assert.equal((await c.cmd('STORE 1 BOGUS (\\Seen)')).kind, 'BAD');
    assert.equal((await c.cmd('STORE 1 +FLAGS')).kind, 'BAD');
    await c.cmd('SELECT INBOX');
    assert.deepEqual((await c.cmd('FETCH 1 FLAGS')).lines, ['* 1 FETCH (FLAGS ())'], '\\Seen lasts for the selection only');
  });

  it('answers bad sequence sets and bad data items with BAD', async () => {
    const bad = [
      'FETCH 0 FLAGS', 'FETCH 4 FLAGS', 'FETCH 1:4 FLAGS', 'FETCH a FLAGS', 'FETCH 1,,2 FLAGS', 'FETCH 1:2:3 FLAGS', 'FETCH -1 FLAGS',
      'FETCH 99999999999 FLAGS', 'UID FETCH 0 FLAGS', 'UID FETCH 1:x FLAGS', 'FETCH 1', 'FETCH 1 FOO', 'FETCH 1 BODY[BOGUS]', 'FETCH 1 ()',
      'FETCH 1 BODY[]<0.0>', 'FETCH 1 BODY[]<1>', 'FETCH 1 (FLAGS (UID))', 'FETCH 1 "FLAGS"', 'FETCH 1 FLAGS (CHANGEDSINCE 1)', 'FETCH 1 BODY[0]',
      'STORE 0 +FLAGS (\\Seen)', 'SEARCH 0', 'SEARCH UID 1:a',
    ];
    for (const cmd of bad) assert.equal((await c.cmd(cmd)).kind, 'BAD', cmd);
    assert.equal((await c.cmd('NOOP')).kind, 'OK');
  });

  it('searches with every RFC 3501 key', async () => {
    const cases: Array<[string, string]> = [
      ['ALL', '1 2 3'],
      ['1,3', '1 3'],
      ['2:*', '2 3'],
      ['UID 2', '2'],
      ['UID 2:*', '2 3'],
      ['FROM bob', '1'],
      ['FROM "Carol Q."', '2'],
      ['TO alice@example.com', '1 2 3'],
      ['CC dave', '2'],
      ['BCC eve', '1'],
      ['SUBJECT lunch', '1'],
      ['SUBJECT "für März"', '2'],
      ['HEADER Message-ID multi@example.org', '2'],
      ['HEADER X-Absent ""', ''],
      ['HEADER Bcc ""', '1'],
      ['BODY noon', '1'],
      ['BODY "Umsatz für"', '2'],
      ['TEXT "Lunch on"', '1'],
      ['TEXT gestiegen', '2'],
      ['BODY Lunch', ''],
      ['SENTBEFORE 1-Feb-2024', '1'],
      ['SENTON 15-Mar-2026', '2'],
      ['SENTSINCE 1-Mar-2026', '2 3'],
      ['SENTBEFORE 1-Jan-2024', ''],
      ['SINCE 1-Jan-2020', '1 2 3'],
      ['BEFORE 1-Jan-2020', ''],
      ['ON 1-Jan-2020', ''],
      ['LARGER 600', '2 3'],
      ['SMALLER 600', '1'],
      ['LARGER 1000', '3'],
      ['LARGER 3000 SMALLER 4000', '3'],
      ['NOT FROM bob', '2 3'],
      ['OR FROM bob CC dave', '1 2'],
      ['OR (FROM bob) (SUBJECT xxxx)', '1 3'],
      ['(FROM bob NOT SEEN)', '1'],
      ['ANSWERED', ''], ['UNANSWERED', '1 2 3'], ['DELETED', ''], ['UNDELETED', '1 2 3'], ['DRAFT', ''], ['UNDRAFT', '1 2 3'],
      ['FLAGGED', ''], ['UNFLAGGED', '1 2 3'], ['RECENT', ''], ['NEW', ''], ['OLD', '1 2 3'], ['KEYWORD $Junk', ''], ['UNKEYWORD $Junk', '1 2 3'],
      ['CHARSET UTF-8 SUBJECT "März"', '2'],
      ['CHARSET us-ascii ALL', '1 2 3'],
      ['5:9', ''],
    ];
    for (const [keys, want] of cases) {
      const r = await c.cmd(`SEARCH ${keys}`);
      assert.deepEqual(r.lines, [`* SEARCH${want ? ' ' + want : ''}`], keys);
      assert.equal(r.kind, 'OK', keys);
    }
    let r = await c.cmd('UID SEARCH FROM zed');
    assert.deepEqual(r.lines, ['* SEARCH 3']);
    c.write(`L1 SEARCH CHARSET UTF-8 SUBJECT {${Buffer.byteLength('März')}}\r\n`);
    assert.equal(await c.readUnit(), '+ Ready for literal data');
    c.write(Buffer.concat([Buffer.from('März', 'utf8'), Buffer.from('\r\n')]));
    r = await c.until('L1');
    assert.deepEqual(r.lines, ['* SEARCH 2']);
    assert.equal((await c.cmd('SEARCH CHARSET KOI8-R ALL')).status, 'NO [BADCHARSET (UTF-8 US-ASCII)] Charset "KOI8-R" is not supported');
    for (const bad of ['SEARCH', 'SEARCH FOO', 'SEARCH FROM', 'SEARCH SINCE yesterday', 'SEARCH LARGER big', 'SEARCH OR FROM a', 'SEARCH NOT', 'SEARCH ()', 'SEARCH HEADER "bad field:" x', 'SEARCH RETURN (MIN) ALL', 'SEARCH CHARSET']) {
      assert.equal((await c.cmd(bad)).kind, 'BAD', bad);
    }
  });
});
