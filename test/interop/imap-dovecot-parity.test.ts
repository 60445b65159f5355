// Postern and Debian's Dovecot answer byte for byte alike for the messages where the two used to
// differ: the caramail.com "GMT+1" Date headers of the SpamAssassin corpus and dates whose day differs
// between UTC and the sender's zone (SENTON/SENTBEFORE/SENTSINCE), corpus messages with raw 8-bit
// header bytes (ENVELOPE and BODYSTRUCTURE pass them through unchanged), and text parts whose last
// line has no line break (BODY line counts). Both targets get the same bytes (Postern over SMTP,
// Dovecot as Maildir files); answers are compared per message, found by its content, not its UID.
// Bare-LF messages (corpus files as they are, a multipart one, CRLF and LF lines mixed with a lone
// CR) go to Postern through `postern import eml` (bytes kept) and to Dovecot as the same Maildir
// bytes; both must serve the CRLF view: RFC822.SIZE, BODYSTRUCTURE, BODY[], BODY[1], BODY[TEXT]<10.50>,
// BODY[HEADER.FIELDS (SUBJECT)] and SEARCH LARGER compared byte for byte.
// SEARCH over real-world messages is compared in imap-search-parity.test.ts (its own time budget).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCorpus } from '../helpers/corpus.ts';
import { asSmtpMessage, ByteClient, folderCount, headerOf, selectedTargets, sha, startDovecotTarget, startPosternTarget, USER, type ImapTarget, type TargetName } from './imap-targets.ts';
import { makeTempDir, waitFor } from './harness.ts';

const L = (s: string): Buffer => Buffer.from(s, 'latin1');
const CORPUS = loadCorpus().map(asSmtpMessage);
const GMT_PLUS = CORPUS.filter((m) => /^Date:.*GMT[+-]\d/m.test(headerOf(m).toString('latin1')));
const EIGHT_BIT = CORPUS.filter((m) => /[\x80-\xff]/.test(headerOf(m).toString('latin1')) && m.length < 100_000).slice(0, 40);
const dated = (date: string | null, n: number): Buffer => L(`From: a@b.c\r\n${date === null ? '' : `Date: ${date}\r\n`}Subject: dated ${n}\r\nMessage-ID: <dated${n}@parity.test>\r\n\r\nhello\r\n`);
const SYNTHETIC = [
  dated('Tue, 20 Aug 2002 23:30:00 -0500', 1),
  dated('Tue, 20 Aug 2002 00:30:00 +0200', 2),
  dated('Tue, 20 Aug 2002 10:00:00 GMT-5', 3),
  dated('garbage', 4),
  dated(null, 5),
  L('From: J\xe9r\xf4me <a@b.c>\r\nSubject: caf\xe9 ol\xe9\r\nDate: Tue, 20 Aug 2002 10:00:00 +0000\r\nContent-Type: text/plain; name="r\xe9sum\xe9.txt"\r\n\r\none line\r\n'),
  L('Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nabc\r\n--b\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n--b--\r\n'),
];
const MESSAGES = [...new Map([...GMT_PLUS, ...EIGHT_BIT, ...SYNTHETIC].map((m) => [sha(m), m])).values()];

/** What IMAP serves for bytes with bare LF: every LF not after a CR read as CRLF (a lone CR stays). */
const toView = (m: Buffer): Buffer => L(m.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'));
const messageIdOf = (m: Buffer): string => /^message-id:\s*(\S+)/im.exec(headerOf(m).toString('latin1'))?.[1] ?? '';
const TAKEN = new Set(MESSAGES.map(messageIdOf));
/**
 * Dovecot answers a text/plain 7bit us-ascii part's BODYSTRUCTURE with the header's spelling on the
 * first parse ("US-ASCII", as Postern does) but lower case once it answers from its cache (checked
 * against Dovecot 2.3 with one message fetched twice): such messages would compare its cache, not
 * the CRLF view, so they are left out here.
 */
const cacheDependent = (m: Buffer): boolean => {
  const ct = /^content-type:.*$/im.exec(m.subarray(0, m.indexOf('\n\n')).toString('latin1'))?.[0] ?? '';
  return /us-ascii/i.test(ct) && !/charset="?us-ascii"?/.test(ct);
};
/** Corpus files as a Maildir holds them: LF only, without the mbox "From " line. */
const LF_CORPUS = loadCorpus()
  .map((raw) => (raw.subarray(0, 5).toString('latin1') === 'From ' ? raw.subarray(raw.indexOf(0x0a) + 1) : raw))
  .filter((m) => m.length < 60_000 && !m.includes(0x0d) && messageIdOf(m) !== '' && !TAKEN.has(messageIdOf(m)) && !cacheDependent(m));
const isMultipart = (m: Buffer): boolean => /^content-type:\s*multipart\//im.test(m.subarray(0, m.indexOf('\n\n')).toString('latin1'));
const LF_MESSAGES = [
  ...LF_CORPUS.filter((m) => !isMultipart(m)).slice(0, 3),
  ...LF_CORPUS.filter(isMultipart).slice(0, 2),
  L('From: mixed@parity.test\r\nSubject: mixed line ends\nMessage-ID: <mixed@parity.test>\r\nContent-Type: multipart/mixed; boundary=mb\n\r\n' +
    'preamble\n--mb\r\nContent-Type: text/plain\n\nfirst part\r\nwith a lone\rCR\n--mb\n\r\nsecond part\n--mb--\r\nepilogue\n'),
  L('From: lf@parity.test\nSubject: lf, no final line break\nMessage-ID: <lfend@parity.test>\n\nbody line one\nbody line two, the last one'),
];
const LF_ITEMS = ['RFC822.SIZE', 'BODYSTRUCTURE', 'BODY.PEEK[]', 'BODY.PEEK[1]', 'BODY.PEEK[TEXT]<10.50>', 'BODY.PEEK[HEADER.FIELDS (SUBJECT)]'];
const ALL = [...MESSAGES, ...LF_MESSAGES];

/** Postern with the CRLF messages over SMTP and the LF ones through `postern import eml` (bytes kept). */
async function startPosternWithLf(): Promise<ImapTarget> {
  const t = await startPosternTarget(MESSAGES, []);
  const dir = makeTempDir('parity-lf-');
  try {
    LF_MESSAGES.forEach((m, i) => writeFileSync(join(dir.path, `${String(i).padStart(2, '0')}.eml`), m));
    await t.server.cliOk(['import', 'eml', dir.path, '--user', USER, '--parallel', '1']);
    await waitFor('the LF messages archived', async () => ((await folderCount(t.server.adminPort, t.server.dataDir, USER, 'Inbox')) >= ALL.length ? true : undefined), 60_000, 100);
    return t;
  } catch (err) {
    await t.stop();
    throw err;
  } finally {
    dir.cleanup();
  }
}

async function startDovecotWithLf(): Promise<ImapTarget> {
  const t = await startDovecotTarget(MESSAGES, []);
  for (const m of LF_MESSAGES) await t.deliver(m);
  return t;
}

const SEARCHES = ['SENTON 20-Aug-2002', 'SENTBEFORE 20-Aug-2002', 'SENTSINCE 21-Aug-2002', 'SENTON 7-Jun-2002', 'SENTSINCE 1-Sep-2002', 'SENTBEFORE 1-Jan-1971', 'SENTSINCE 1-Jan-1971'];

interface Answers { items: Map<string, string>; searches: Map<string, string[]>; lf: Map<string, string> }
const answers = new Map<TargetName, Answers>();

for (const name of selectedTargets()) {
  describe(`parity answers from ${name}`, () => {
    let t: ImapTarget;
    let c: ByteClient;
    before(async () => {
      t = name === 'postern' ? await startPosternWithLf() : await startDovecotWithLf();
      c = await ByteClient.open(t.tlsPort, t.ca);
      await c.ok(`LOGIN ${t.user} "${t.password}"`);
      await c.ok('EXAMINE INBOX');
    });
    after(async () => {
      c?.close();
      await t?.stop();
    });
    test('fetches every message and runs the SENT* searches', async () => {
      const bySeq = new Map<number, string>();
      const items = new Map<string, string>();
      for (let seq = 1; seq <= ALL.length; seq++) {
        const raw = await c.ok(`FETCH ${seq} (BODY.PEEK[])`);
        const m = /^\* \d+ FETCH \(BODY\[\] \{(\d+)\}\r\n/.exec(raw);
        assert.ok(m, raw.slice(0, 200));
        const start = m[0].length;
        const h = sha(Buffer.from(raw.slice(start, start + Number(m[1])), 'latin1'));
        bySeq.set(seq, h);
        // One item per command: Dovecot's cache may answer a later BODYSTRUCTURE from cached parts.
        for (const item of ['ENVELOPE', 'BODY', 'BODYSTRUCTURE']) items.set(`${h} ${item}`, (await c.ok(`FETCH ${seq} (${item})`)).replace(/^\* \d+ FETCH /, ''));
      }
      assert.equal(new Set(bySeq.values()).size, ALL.length, 'every message is there once');
      const searches = new Map<string, string[]>();
      const search = async (s: string): Promise<void> => {
        const line = /^\* SEARCH([ \d]*)\r\n/m.exec(await c.ok(`SEARCH ${s}`))?.[1] ?? '';
        searches.set(s, line.trim().split(/\s+/).filter(Boolean).map((n) => bySeq.get(Number(n)) ?? `?${n}`).sort());
      };
      for (const s of SEARCHES) await search(s);
      // LF messages: each item in its own command, keyed by the hash of the CRLF view.
      const seqOf = new Map([...bySeq].map(([seq, h]) => [h, seq]));
      const lf = new Map<string, string>();
      for (const m of LF_MESSAGES) {
        const view = toView(m);
        const h = sha(view);
        const seq = seqOf.get(h);
        assert.ok(seq !== undefined, `the LF message ${messageIdOf(m)} is served as its CRLF view`);
        for (const item of LF_ITEMS) lf.set(`${h} ${item}`, (await c.ok(`FETCH ${seq} (${item})`)).replace(/^\* \d+ FETCH /, ''));
        await search(`LARGER ${view.length - 1}`);
        await search(`LARGER ${view.length}`);
        await search(`SMALLER ${view.length}`);
      }
      answers.set(name, { items, searches, lf });
    });
  });
}

if (selectedTargets().length === 2) {
  describe('Postern answers what Dovecot answers', () => {
    const pair = (): [Answers, Answers] => {
      const p = answers.get('postern');
      const d = answers.get('dovecot');
      assert.ok(p && d, 'both targets answered');
      return [p, d];
    };
    test(`the corpus has the messages this is about (${GMT_PLUS.length} GMT+n dates, ${EIGHT_BIT.length} with 8-bit headers)`, () => {
      assert.ok(GMT_PLUS.length >= 4 && EIGHT_BIT.length >= 20);
    });
    for (const item of ['ENVELOPE', 'BODY', 'BODYSTRUCTURE']) {
      test(`${item} bytes of every message`, () => {
        const [p, d] = pair();
        const diffs: string[] = [];
        for (const [k, dv] of d.items) {
          if (!k.endsWith(` ${item}`)) continue;
          const pv = p.items.get(k);
          if (pv !== dv) diffs.push(`${k}\n  postern ${JSON.stringify(pv)}\n  dovecot ${JSON.stringify(dv)}`);
        }
        assert.deepEqual(diffs, []);
      });
    }
    test(`bare-LF messages (${LF_MESSAGES.length}): ${LF_ITEMS.join(', ')} bytes`, () => {
      const [p, d] = pair();
      assert.equal(LF_MESSAGES.length, 7, 'three single-part and two multipart LF corpus messages, mixed endings, no final line break');
      assert.equal(LF_MESSAGES.slice(0, 5).filter(isMultipart).length, 2);
      assert.equal(d.lf.size, LF_MESSAGES.length * LF_ITEMS.length);
      const diffs: string[] = [];
      for (const [k, dv] of d.lf) {
        const pv = p.lf.get(k);
        if (pv !== dv) diffs.push(`${k}\n  postern ${JSON.stringify(pv?.slice(0, 400))}\n  dovecot ${JSON.stringify(dv.slice(0, 400))}`);
      }
      assert.deepEqual(diffs, []);
      const sizes = [...d.lf].filter(([k]) => k.endsWith(' RFC822.SIZE')).map(([, v]) => v);
      assert.deepEqual(sizes, LF_MESSAGES.map((m) => `(RFC822.SIZE ${toView(m).length})\r\n`), 'Dovecot reports the CRLF size');
    });
    test('SEARCH LARGER / SMALLER around the CRLF size of each LF message', () => {
      const [p, d] = pair();
      const keys = [...d.searches.keys()].filter((k) => /^(LARGER|SMALLER) /.test(k));
      assert.equal(keys.length, LF_MESSAGES.length * 3);
      for (const k of keys) assert.deepEqual(p.searches.get(k), d.searches.get(k), k);
    });
    test('SENTON / SENTBEFORE / SENTSINCE results', () => {
      const [p, d] = pair();
      for (const s of SEARCHES) assert.deepEqual(p.searches.get(s), d.searches.get(s), s);
      assert.ok((d.searches.get('SENTON 20-Aug-2002') ?? []).length >= 3, 'the search finds something');
    });
  });
}
