// Messages archived with bare LF line ends (mbox imports, Maildir files, LF journal copies) are served
// over IMAP as their CRLF view, as Dovecot serves LF Maildir files: every FETCH item of an LF message
// answers exactly what its CRLF twin answers, RFC822.SIZE and SEARCH LARGER/SMALLER use the CRLF size,
// partials count CRLF offsets, a lone CR stays, a CRLF message is served byte for byte, and a message
// stored with IMAP data of the earlier format (raw offsets) is recomputed from its blob.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { startImapServer, type ImapClient, type ImapTestServer } from './imap-client.ts';

const L = (s: string): Buffer => Buffer.from(s, 'latin1');
const crlf = (s: string): string => s.replace(/(?<!\r)\n/g, '\r\n');

/** A message whose line ends are written as `nl`; `tag` (3 characters) tells the twins apart. */
const plain = (tag: string, nl: string): string => [
  'From: Bob <bob@example.com>', 'To: alice@example.com', `Subject: plain ${tag}`, 'Date: Mon, 02 Mar 2026 10:00:00 +0000',
  `Message-ID: <${tag}@bare-lf.test>`, '', 'line one of the body', 'line two is a little longer', 'third line, then the end', '',
].join(nl);
const multipart = (tag: string, nl: string): string => [
  'From: carol@example.org', `Subject: multipart ${tag}`, `Message-ID: <m${tag}@bare-lf.test>`, 'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="BND"', '', 'preamble', '--BND', 'Content-Type: text/plain; charset=utf-8', '',
  'first part', 'spans two lines', '--BND', 'Content-Type: message/rfc822', '', 'Subject: inner', 'From: inner@example.net', '',
  'inner body', 'inner line two', '--BND', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '',
  'c2VjcmV0IGF0dGFjaG1lbnQgd29yZHM=', '--BND--', 'epilogue', '',
].join(nl);
/** CRLF and LF lines mixed, and a lone CR inside a line (kept as it is). */
const MIXED = L('From: mixed@example.com\r\nSubject: mixed endings\nMessage-ID: <mixed@bare-lf.test>\r\n\nfirst\r\nsecond\nlone\rCR stays\r\nlast without end');

/** seq → [bytes stored, the CRLF view IMAP must serve]. */
const MESSAGES: Array<[Buffer, Buffer]> = [
  [L(plain('lf1', '\n')), L(crlf(plain('lf1', '\n')))],
  [L(plain('cr1', '\r\n')), L(plain('cr1', '\r\n'))],
  [L(multipart('lf2', '\n')), L(crlf(multipart('lf2', '\n')))],
  [L(multipart('cr2', '\r\n')), L(multipart('cr2', '\r\n'))],
  [MIXED, L(crlf(MIXED.toString('latin1')))],
];
const LEGACY = L('Subject: stored before\nFrom: old@example.com\n\nold body\nsecond line\n');

describe('IMAP serves bare-LF messages as CRLF', () => {
  let s: ImapTestServer;
  let c: ImapClient;
  before(async () => {
    s = await startImapServer([{ name: 'alice', addresses: ['alice@example.com'] }]);
    for (const [m] of MESSAGES) {
      await s.running.app.service('capture').submit(m, {
        listener: 'test-import', envelope: { mailFrom: '', rcptTo: [] }, session: { remoteAddress: '127.0.0.1', helo: 'test', user: null },
        assign: { user: 'alice', direction: 'received', folder: 'Inbox', exclusive: true, reason: 'test import' },
      });
      await s.settle();
    }
    // A message stored with IMAP data of the first format: offsets and sizes of the raw LF bytes.
    const sha = createHash('sha256').update(LEGACY).digest('hex');
    const headerSize = LEGACY.indexOf('\n\n') + 2;
    await s.archive.commit({
      capture: { id: 'legacy-capture', listener: 'test-import', receivedAt: new Date().toISOString(), mailFrom: '', rcptTo: [], client: '127.0.0.1', helo: 'test' },
      messageId: 'legacy-message',
      summary: { date: null, from: 'old@example.com', to: '', cc: '', subject: 'stored before', messageIdHeader: null },
      blob: { sha256: sha, size: LEGACY.length, open: () => Readable.from([LEGACY]) },
      fileInto: [{ user: 'alice', folder: 'Inbox' }],
      attributes: {
        imap: {
          envelope: '(NIL "stale envelope" NIL NIL NIL NIL NIL NIL NIL NIL)',
          body: `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" ${LEGACY.length - headerSize} 2)`,
          bodystructure: `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" ${LEGACY.length - headerSize} 2 NIL NIL NIL NIL)`,
          parts: { h: 0, b: headerSize, e: LEGACY.length, t: 'text/plain', c: 'us-ascii' },
          headerSize,
          encoding: 'latin1',
        },
      },
    });
    c = await s.login('alice');
    assert.match((await c.cmd('EXAMINE INBOX')).status, /^OK /);
  });
  after(async () => {
    c.close();
    await s.stop();
  });

  const fetch = async (seq: number, items: string): Promise<string> => {
    const r = await c.cmd(`FETCH ${seq} (${items})`);
    assert.equal(r.kind, 'OK', `${items}: ${r.status}`);
    return r.lines.join('\r\n');
  };
  const strip = (answer: string, seq: number): string => answer.replace(new RegExp(`^\\* ${seq} FETCH `), '');

  it('serves BODY[], RFC822.SIZE and every section of the CRLF view', async () => {
    // The archive keeps the original bytes: the view exists only on the IMAP side.
    const entries = await s.archive.listEntries('alice', 'Inbox');
    for (const [n, [raw]] of MESSAGES.entries()) {
      const record = await s.archive.getMessage(entries[n]?.messageId ?? '');
      const blob = await s.archive.openBlob(record?.blobId ?? '');
      assert.ok(blob);
      const parts: Buffer[] = [];
      for await (const chunk of blob) parts.push(chunk as Buffer);
      assert.deepEqual(Buffer.concat(parts), raw, `message ${n + 1} is stored as it arrived`);
    }
    for (const [n, [, view]] of MESSAGES.entries()) {
      const seq = n + 1;
      const v = view.toString('latin1');
      const headerEnd = v.indexOf('\r\n\r\n') + 4;
      assert.equal(await fetch(seq, 'RFC822.SIZE'), `* ${seq} FETCH (RFC822.SIZE ${view.length})`);
      assert.equal(await fetch(seq, 'BODY.PEEK[]'), `* ${seq} FETCH (BODY[] {${view.length}}\r\n${v})`);
      assert.equal(await fetch(seq, 'RFC822.HEADER'), `* ${seq} FETCH (RFC822.HEADER {${headerEnd}}\r\n${v.slice(0, headerEnd)})`);
      assert.equal(await fetch(seq, 'BODY.PEEK[TEXT]'), `* ${seq} FETCH (BODY[TEXT] {${view.length - headerEnd}}\r\n${v.slice(headerEnd)})`);
      const window = v.slice(headerEnd + 10, headerEnd + 60);
      assert.equal(await fetch(seq, 'BODY.PEEK[TEXT]<10.50>'), `* ${seq} FETCH (BODY[TEXT]<10> {${window.length}}\r\n${window})`);
      const subject = /^Subject: .*\r\n/m.exec(v)?.[0] ?? '';
      assert.equal(await fetch(seq, 'BODY.PEEK[HEADER.FIELDS (SUBJECT)]'), `* ${seq} FETCH (BODY[HEADER.FIELDS (SUBJECT)] {${subject.length + 2}}\r\n${subject}\r\n)`);
    }
  });

  it('answers every item for an LF message exactly as for its CRLF twin', async () => {
    const items = ['RFC822.SIZE', 'BODY', 'BODYSTRUCTURE', 'BODY.PEEK[1]', 'BODY.PEEK[1]<3.12>', 'BODY.PEEK[TEXT]<10.50>', 'BODY.PEEK[1.MIME]',
      'BODY.PEEK[2]', 'BODY.PEEK[2.HEADER]', 'BODY.PEEK[2.TEXT]', 'BODY.PEEK[2.1]', 'BODY.PEEK[2.MIME]', 'BODY.PEEK[3]', 'BODY.PEEK[]<100.40>',
      'BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT MESSAGE-ID)]', 'RFC822.TEXT'];
    for (const [lf, cr] of [[1, 2], [3, 4]] as const) {
      for (const item of items) {
        const a = strip(await fetch(lf, item), lf);
        const b = strip(await fetch(cr, item), cr);
        assert.equal(a, b.replace(/cr([12])/g, 'lf$1'), `${item} of ${lf} and ${cr}`);
      }
    }
    assert.match(await fetch(3, 'BODYSTRUCTURE'), /\("text" "plain" \("charset" "utf-8"\) NIL NIL "7bit" 27 1 NIL NIL NIL NIL\)\("message" "rfc822" NIL NIL NIL "7bit" 69 /);
  });

  it('keeps a lone CR and leaves a last line without line break as it is', async () => {
    const text = await fetch(5, 'BODY.PEEK[TEXT]');
    assert.equal(text, '* 5 FETCH (BODY[TEXT] {46}\r\nfirst\r\nsecond\r\nlone\rCR stays\r\nlast without end)');
    assert.equal(await fetch(5, 'BODY'), '* 5 FETCH (BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 46 3))');
  });

  it('compares SEARCH LARGER and SMALLER with the CRLF size', async () => {
    const [raw, view] = MESSAGES[0] as [Buffer, Buffer];
    assert.ok(view.length > raw.length);
    const search = async (keys: string): Promise<string> => (await c.cmd(`SEARCH ${keys}`)).lines.join('\n');
    assert.equal(await search(`LARGER ${view.length - 1} SMALLER ${view.length + 1}`), '* SEARCH 1 2');
    assert.equal(await search(`SMALLER ${view.length}`), '* SEARCH 5 6', 'the raw LF size is not what counts');
    assert.equal(await search(`LARGER ${view.length}`), '* SEARCH 3 4');
  });

  it('matches SEARCH TEXT and BODY in LF messages', async () => {
    const search = async (keys: string): Promise<string> => (await c.cmd(`SEARCH ${keys}`)).lines.join('\n');
    assert.equal(await search('BODY "little longer"'), '* SEARCH 1 2');
    assert.equal(await search('BODY "inner line two"'), '* SEARCH 3 4');
    assert.equal(await search('TEXT "multipart lf2"'), '* SEARCH 3');
    assert.equal(await search('BODY "CR stays"'), '* SEARCH 5');
    assert.equal(await search('SUBJECT "mixed endings"'), '* SEARCH 5');
  });

  it('recomputes a message stored with IMAP data of the earlier format instead of serving its raw sizes', async () => {
    const view = crlf(LEGACY.toString('latin1'));
    assert.equal(await fetch(6, 'RFC822.SIZE'), `* 6 FETCH (RFC822.SIZE ${view.length})`);
    assert.equal(await fetch(6, 'ENVELOPE'), '* 6 FETCH (ENVELOPE (NIL "stored before" ((NIL NIL "old" "example.com")) ((NIL NIL "old" "example.com")) ((NIL NIL "old" "example.com")) NIL NIL NIL NIL NIL))');
    assert.equal(await fetch(6, 'BODYSTRUCTURE'), '* 6 FETCH (BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 23 2 NIL NIL NIL NIL))');
    assert.equal(await fetch(6, 'BODY.PEEK[]'), `* 6 FETCH (BODY[] {${view.length}}\r\n${view})`);
    // The recomputed data is stored with the message (a restart or cache miss does not rescan the blob).
    const deadline = Date.now() + 10000;
    let stored: unknown;
    while (Date.now() < deadline) {
      stored = (await s.archive.getMessage('legacy-message'))?.attributes?.imap;
      if ((stored as { view?: string } | undefined)?.view === 'crlf') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((stored as { view?: string; size?: number }).view, 'crlf');
    assert.equal((stored as { size?: number }).size, view.length);
    assert.equal((await s.archive.getMessage('legacy-message'))?.captures.length, 1, 'nothing else of the message changed');
  });
});
