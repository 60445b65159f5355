// Postern and Debian's Dovecot answer byte for byte alike for the messages where the two used to
// differ: the caramail.com "GMT+1" Date headers of the SpamAssassin corpus and dates whose day differs
// between UTC and the sender's zone (SENTON/SENTBEFORE/SENTSINCE), corpus messages with raw 8-bit
// header bytes (ENVELOPE and BODYSTRUCTURE pass them through unchanged), and text parts whose last
// line has no line break (BODY line counts). Both targets get the same bytes (Postern over SMTP,
// Dovecot as Maildir files); answers are compared per message, found by its content, not its UID.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type TLSSocket } from 'node:tls';
import { loadCorpus } from '../helpers/corpus.ts';
import { asSmtpMessage, headerOf, selectedTargets, sha, startTarget, type ImapTarget, type TargetName } from './imap-targets.ts';

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
const SEARCHES = ['SENTON 20-Aug-2002', 'SENTBEFORE 20-Aug-2002', 'SENTSINCE 21-Aug-2002', 'SENTON 7-Jun-2002', 'SENTSINCE 1-Sep-2002', 'SENTBEFORE 1-Jan-1971', 'SENTSINCE 1-Jan-1971'];

/** A minimal client that keeps every byte (latin1 strings) of each command's answer. */
class ByteClient {
  private buf = '';
  private n = 0;
  private constructor(private readonly socket: TLSSocket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => { this.buf += d; });
    socket.on('error', () => undefined);
  }
  /** Over implicit TLS, checking the target's certificate. */
  static async open(port: number, ca: string): Promise<ByteClient> {
    const socket = connect({ port, host: '127.0.0.1', ca: [ca], servername: 'localhost' });
    await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
    const c = new ByteClient(socket);
    await c.until(/^\* OK.*\r\n/m);
    return c;
  }
  private async until(re: RegExp): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        const out = this.buf.slice(0, m.index + m[0].length);
        this.buf = this.buf.slice(m.index + m[0].length);
        return out;
      }
      if (Date.now() > deadline) throw new Error(`no answer matching ${re}; have ${JSON.stringify(this.buf.slice(-300))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  /** The untagged data of a command (everything before its tagged OK). */
  async ok(cmd: string): Promise<string> {
    const tag = `zq${++this.n}`;
    this.socket.write(`${tag} ${cmd}\r\n`);
    const out = await this.until(new RegExp(`(?:^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`));
    const at = out.lastIndexOf(`${tag} `);
    assert.match(out.slice(at), new RegExp(`^${tag} OK`), `${cmd}: ${out.slice(at)}`);
    return out.slice(0, at);
  }
  close(): void {
    this.socket.destroy();
  }
}

interface Answers { items: Map<string, string>; searches: Map<string, string[]> }
const answers = new Map<TargetName, Answers>();

for (const name of selectedTargets()) {
  describe(`parity answers from ${name}`, () => {
    let t: ImapTarget;
    let c: ByteClient;
    before(async () => {
      t = await startTarget(name, MESSAGES, []);
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
      for (let seq = 1; seq <= MESSAGES.length; seq++) {
        const raw = await c.ok(`FETCH ${seq} (BODY.PEEK[])`);
        const m = /^\* \d+ FETCH \(BODY\[\] \{(\d+)\}\r\n/.exec(raw);
        assert.ok(m, raw.slice(0, 200));
        const start = m[0].length;
        const h = sha(Buffer.from(raw.slice(start, start + Number(m[1])), 'latin1'));
        bySeq.set(seq, h);
        // One item per command: Dovecot's cache may answer a later BODYSTRUCTURE from cached parts.
        for (const item of ['ENVELOPE', 'BODY', 'BODYSTRUCTURE']) items.set(`${h} ${item}`, (await c.ok(`FETCH ${seq} (${item})`)).replace(/^\* \d+ FETCH /, ''));
      }
      assert.equal(new Set(bySeq.values()).size, MESSAGES.length, 'every message is there once');
      const searches = new Map<string, string[]>();
      for (const s of SEARCHES) {
        const line = /^\* SEARCH([ \d]*)\r\n/m.exec(await c.ok(`SEARCH ${s}`))?.[1] ?? '';
        searches.set(s, line.trim().split(/\s+/).filter(Boolean).map((n) => bySeq.get(Number(n)) ?? `?${n}`).sort());
      }
      answers.set(name, { items, searches });
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
    test('SENTON / SENTBEFORE / SENTSINCE results', () => {
      const [p, d] = pair();
      for (const s of SEARCHES) assert.deepEqual(p.searches.get(s), d.searches.get(s), s);
      assert.ok((d.searches.get('SENTON 20-Aug-2002') ?? []).length >= 3, 'the search finds something');
    });
  });
}
