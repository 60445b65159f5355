// Interop with curl's IMAP client (Debian curl) against Postern's imap plugin and, as the reference,
// a private Dovecot with the same corpus messages: imap:// with STARTTLS required and imaps:// with
// the server certificate as CA — LIST, EXAMINE/SELECT, UID FETCH of whole messages (byte-compared),
// ;SECTION=HEADER and ;SECTION=TEXT, and SEARCH (URL query and custom command).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { run } from './harness.ts';
import { byHash, corpusSample, headerValue, matchOriginal, selectedTargets, sha, startTarget, type ImapTarget } from './imap-targets.ts';

const N = 8;
const SAMPLE = corpusSample(N + 1);
const INBOX = SAMPLE.slice(0, N);
const SENT = SAMPLE.slice(N);
const ORIGINALS = byHash(INBOX);

for (const name of selectedTargets()) {
  describe(`curl against ${name}`, () => {
    let t: ImapTarget;
    /** UID -> original, learned from the whole-message fetches. */
    const byUid = new Map<number, Buffer>();

    before(async () => { t = await startTarget(name, INBOX, SENT); });
    after(async () => { await t?.stop(); });

    const curl = async (url: string, extra: string[] = [], tls: 'starttls' | 'implicit' = 'starttls'): Promise<Buffer> => {
      const base = tls === 'implicit' ? `imaps://127.0.0.1:${t.tlsPort}` : `imap://127.0.0.1:${t.port}`;
      const args = ['-sS', '--max-time', '30', '--cacert', t.caFile, '-u', `${t.user}:${t.password}`, ...(tls === 'starttls' ? ['--ssl-reqd'] : []), ...extra, base + url];
      const r = await run('curl', args, { timeoutMs: 40_000 });
      if (r.code !== 0) throw new Error(`curl ${args.join(' ')} exited ${r.code}: ${r.stderr}\n--- ${name} log tail ---\n${t.logs().split('\n').slice(-20).join('\n')}`);
      return r.stdout;
    };

    test('imap:// (STARTTLS) LIST names INBOX and Sent', async () => {
      const out = (await curl('/')).toString();
      assert.match(out, /^\* LIST \([^)]*\) "\/" "?INBOX"?\r$/m);
      assert.match(out, /^\* LIST \([^)]*\\Sent[^)]*\) "\/" "?Sent"?\r$/m);
    });

    test('SEARCH ALL lists N messages; UID FETCH of each equals an original', async () => {
      const out = (await curl('/INBOX', ['-X', 'UID SEARCH ALL'])).toString();
      const m = /^\* SEARCH((?: \d+)*)\r$/m.exec(out);
      assert.ok(m, out);
      const uids = m[1]!.trim().split(' ').map(Number);
      assert.equal(uids.length, N);
      for (const uid of uids) {
        const body = await curl(`/INBOX;UID=${uid}`);
        byUid.set(uid, matchOriginal(ORIGINALS, body, `UID ${uid}`));
      }
      assert.equal(new Set([...byUid.values()].map(sha)).size, N, 'every original once');
    });

    test('imaps:// fetch of ;SECTION=HEADER and ;SECTION=TEXT', async () => {
      for (const [uid, orig] of [...byUid].slice(0, 4)) {
        const split = orig.indexOf('\r\n\r\n') + 4;
        const header = await curl(`/INBOX;UID=${uid}/;SECTION=HEADER`, [], 'implicit');
        assert.ok(header.equals(orig.subarray(0, split)), `UID ${uid} HEADER`);
        const text = await curl(`/INBOX;UID=${uid}/;SECTION=TEXT`, [], 'implicit');
        assert.ok(text.equals(orig.subarray(split)), `UID ${uid} TEXT: ${text.length} bytes vs ${orig.length - split}`);
      }
    });

    test('SEARCH through the URL query and as a custom UID SEARCH', async () => {
      const [uid, orig] = [...byUid].find(([, o]) => /[A-Za-z]{5,}/.test(headerValue(o, 'Subject') ?? ''))!;
      const word = /[A-Za-z]{5,}/.exec(headerValue(orig, 'Subject') ?? '')![0];
      const seqOut = (await curl(`/INBOX?SUBJECT%20${word}`)).toString();
      const seqs = /^\* SEARCH((?: \d+)*)\r$/m.exec(seqOut);
      assert.ok(seqs && seqs[1]!.trim().length > 0, `SUBJECT ${word} finds something: ${seqOut}`);
      const uidOut = (await curl('/INBOX', ['-X', `UID SEARCH SUBJECT "${word}"`])).toString();
      const hits = /^\* SEARCH((?: \d+)*)\r$/m.exec(uidOut)![1]!.trim().split(' ').map(Number);
      assert.ok(hits.includes(uid), `UID SEARCH SUBJECT ${word} includes UID ${uid}: ${uidOut}`);
      assert.equal(hits.length, seqs[1]!.trim().split(' ').length, 'SEARCH and UID SEARCH agree');
      const larger = (await curl('/INBOX', ['-X', 'UID SEARCH LARGER 4000'])).toString();
      const got = /^\* SEARCH((?: \d+)*)\r$/m.exec(larger)![1]!.trim().split(' ').filter(Boolean).map(Number).sort((a, b) => a - b);
      const want = [...byUid].filter(([, o]) => o.length > 4000).map(([u]) => u).sort((a, b) => a - b);
      assert.deepEqual(got, want);
      const none = (await curl('/INBOX', ['-X', 'UID SEARCH BODY "zqxjv-never-there"'])).toString();
      assert.match(none, /^\* SEARCH\r$/m);
    });

    test('EXAMINE and STATUS through custom commands', async () => {
      const ex = (await curl('/', ['-X', 'EXAMINE INBOX'])).toString();
      assert.match(ex, new RegExp(`^\\* ${N} EXISTS\\r$`, 'm'));
      const st = (await curl('/', ['-X', 'STATUS Sent (MESSAGES)'])).toString();
      assert.match(st, /^\* STATUS "?Sent"? \(MESSAGES 1\)\r$/m);
    });
  });
}
