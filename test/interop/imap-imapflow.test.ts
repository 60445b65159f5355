// Interop with imapflow, a real IMAP client library, against Postern's imap plugin and, as the
// reference, a private Dovecot holding the same corpus messages: LIST (with \Sent), STATUS, EXAMINE,
// FETCH of flags/size/internal date/ENVELOPE/BODYSTRUCTURE/whole bodies/parts/partial ranges,
// SEARCH (header, body, size, boolean), IDLE and NOOP polling seeing new messages, over STARTTLS and
// implicit TLS.
// Every fetched body is byte-compared with the original; in the end Postern's ENVELOPE, BODYSTRUCTURE,
// body parts and SEARCH results must equal Dovecot's for every message.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ImapFlow, type FetchMessageObject, type MessageEnvelopeObject, type MessageStructureObject, type SearchObject } from 'imapflow';
import { byHash, corpusSample, headerValue, matchOriginal, selectedTargets, sha, startTarget, type ImapTarget, type TargetName } from './imap-targets.ts';

/** IMAP_INTEROP_MESSAGES widens the comparison (e.g. 1000) for a deeper check. */
const N = Number(process.env.IMAP_INTEROP_MESSAGES ?? 48);
if (!Number.isInteger(N) || N < 8) throw new Error('IMAP_INTEROP_MESSAGES must be an integer >= 8');
const SAMPLE = corpusSample(N + 3);
const INBOX = SAMPLE.slice(0, N);
const SENT = SAMPLE.slice(N);
const ORIGINALS = byHash([...INBOX, ...SENT]);

interface Observed {
  envelope: MessageEnvelopeObject | undefined;
  structure: MessageStructureObject | undefined;
  parts: Map<string, Buffer>;
}
/** What each target served, by message content hash, and its SEARCH results (as sorted hashes). */
const observed = new Map<TargetName, { messages: Map<string, Observed>; searches: Map<string, string[]> }>();

function client(t: ImapTarget, implicitTls = false): ImapFlow {
  return new ImapFlow({
    host: t.host, port: implicitTls ? t.tlsPort : t.port, secure: implicitTls, doSTARTTLS: !implicitTls ? true : undefined,
    tls: { ca: [t.ca], servername: 'localhost' }, auth: { user: t.user, pass: t.password }, logger: false, disableAutoIdle: true,
    connectionTimeout: 20_000, greetingTimeout: 20_000,
  });
}

/** The raw header fields named `names` (continuation lines included) in original order, then CRLF. */
function headerFields(m: Buffer, names: string[]): string {
  const head = m.subarray(0, m.indexOf('\r\n\r\n') + 2).toString('latin1');
  const fields = head.split(/\r\n(?![ \t])/).filter((f) => f !== '');
  const want = new Set(names.map((n) => n.toLowerCase()));
  return fields.filter((f) => want.has(f.slice(0, f.indexOf(':')).trim().toLowerCase())).map((f) => f + '\r\n').join('') + '\r\n';
}

/** The leaf part numbers of a structure ("1", "1.2", ...), for single-part messages ["1"]. */
function leafParts(s: MessageStructureObject | undefined): string[] {
  if (!s) return [];
  if (!s.childNodes || s.childNodes.length === 0) return [s.part ?? '1'];
  return s.childNodes.flatMap((c) => leafParts(c));
}

/** The structure fields both servers must agree on (imapflow already lower-cases type names). */
function structureSummary(s: MessageStructureObject | undefined): unknown {
  if (!s) return null;
  return {
    part: s.part ?? '', type: s.type, encoding: s.encoding?.toLowerCase() ?? null, size: s.size ?? null, lines: s.lineCount ?? null,
    charset: s.parameters?.charset?.toLowerCase() ?? null, boundary: s.parameters?.boundary ?? null,
    children: (s.childNodes ?? []).map(structureSummary),
  };
}

/** Raw 8-bit header bytes (no RFC 2047) must come out as Dovecot sends them: unchanged, so imapflow reads them alike. */
function envelopeSummary(e: MessageEnvelopeObject | undefined): unknown {
  if (!e) return null;
  const addrs = (l: MessageEnvelopeObject['from']): unknown => (l ?? []).map((a) => ({ name: a.name ?? '', address: a.address ?? '' }));
  const date = e.date instanceof Date ? (Number.isNaN(e.date.getTime()) ? 'invalid' : e.date.toISOString()) : e.date ?? null;
  return {
    date, subject: e.subject ?? null, messageId: e.messageId ?? null, inReplyTo: e.inReplyTo ?? null,
    from: addrs(e.from), sender: addrs(e.sender), replyTo: addrs(e.replyTo), to: addrs(e.to), cc: addrs(e.cc), bcc: addrs(e.bcc),
  };
}

/** A word (>= 5 letters) from the first original's Subject, for SUBJECT/TEXT searches. */
function subjectWord(): string {
  for (const m of INBOX) {
    const w = /[A-Za-z]{5,}/.exec(headerValue(m, 'Subject') ?? '')?.[0];
    if (w) return w;
  }
  throw new Error('no usable subject word in the sample');
}
const SUBJECT_WORD = subjectWord();
const MESSAGE_ID = INBOX.map((m) => headerValue(m, 'Message-ID')).find((v): v is string => v !== undefined && /^<[^<>\s]+>$/.test(v));
const MEDIAN_SIZE = [...INBOX].map((m) => m.length).sort((a, b) => a - b)[Math.floor(N / 2)]!;

const SEARCHES: Array<{ name: string; query: SearchObject; expect?: (m: Buffer) => boolean }> = [
  { name: 'ALL', query: { all: true }, expect: () => true },
  { name: `SUBJECT ${SUBJECT_WORD}`, query: { subject: SUBJECT_WORD } },
  { name: 'FROM @', query: { from: '@' } },
  { name: `TEXT ${SUBJECT_WORD}`, query: { text: SUBJECT_WORD } },
  { name: 'BODY the', query: { body: 'the' } },
  { name: 'BODY no-such-text', query: { body: 'zqxjv-no-such-text-kq' }, expect: () => false },
  { name: `LARGER ${MEDIAN_SIZE}`, query: { larger: MEDIAN_SIZE }, expect: (m) => m.length > MEDIAN_SIZE },
  { name: `SMALLER ${MEDIAN_SIZE}`, query: { smaller: MEDIAN_SIZE }, expect: (m) => m.length < MEDIAN_SIZE },
  { name: 'OR LARGER / SMALLER', query: { or: [{ larger: MEDIAN_SIZE }, { smaller: MEDIAN_SIZE }] }, expect: (m) => m.length !== MEDIAN_SIZE },
  { name: 'NOT SUBJECT', query: { not: { subject: SUBJECT_WORD } } },
  { name: 'SINCE 1-Jan-1990', query: { since: new Date('1990-01-01T00:00:00Z') }, expect: () => true },
  { name: 'SENTBEFORE 1-Jan-2100', query: { sentBefore: new Date('2100-01-01T00:00:00Z') } },
  ...(MESSAGE_ID ? [{ name: 'HEADER Message-ID', query: { header: { 'message-id': MESSAGE_ID } }, expect: (m: Buffer) => headerValue(m, 'Message-ID') === MESSAGE_ID }] : []),
];

for (const name of selectedTargets()) {
  describe(`imapflow against ${name}`, () => {
    let t: ImapTarget;
    let c: ImapFlow;
    const uidHash = new Map<number, string>();
    const record = { messages: new Map<string, Observed>(), searches: new Map<string, string[]>() };
    observed.set(name, record);

    before(async () => {
      t = await startTarget(name, INBOX, SENT);
      c = client(t);
      await c.connect();
    });
    after(async () => {
      await c?.logout().catch(() => undefined);
      await t?.stop();
    });
    const diag = (e: unknown): never => {
      const err = e instanceof Error ? e : new Error(String(e));
      err.message += `\n--- ${name} log tail ---\n${t.logs().split('\n').slice(-30).join('\n')}`;
      throw err;
    };

    test('LIST shows INBOX and Sent with \\Sent; STATUS counts the messages', async () => {
      try {
        const list = await c.list();
        const inbox = list.find((m) => m.path === 'INBOX');
        const sent = list.find((m) => m.path === 'Sent');
        assert.ok(inbox, `INBOX listed: ${JSON.stringify(list.map((m) => m.path))}`);
        assert.ok(sent, 'Sent listed');
        assert.equal(sent.specialUse, '\\Sent');
        const st = await c.status('INBOX', { messages: true, uidNext: true, uidValidity: true });
        assert.ok(st);
        assert.equal(st.messages, N);
        assert.ok((st.uidNext ?? 0) > N, `UIDNEXT ${st.uidNext} beyond the ${N} messages`);
        const sst = await c.status('Sent', { messages: true });
        assert.ok(sst);
        assert.equal(sst.messages, SENT.length);
      } catch (e) { diag(e); }
    });

    test('EXAMINE INBOX is read-only and exists = N', async () => {
      try {
        const box = await c.mailboxOpen('INBOX', { readOnly: true });
        assert.equal(box.readOnly, true);
        assert.equal(box.exists, N);
      } catch (e) { diag(e); }
    });

    test('FETCH 1:* of uid/flags/size/internaldate/envelope/bodystructure/body: bytes equal the originals', async () => {
      try {
        const seenHashes = new Set<string>();
        let count = 0;
        for await (const m of c.fetch('1:*', { uid: true, flags: true, size: true, internalDate: true, envelope: true, bodyStructure: true, source: true })) {
          count++;
          assert.ok(m.source, `UID ${m.uid} has a body`);
          const orig = matchOriginal(ORIGINALS, m.source, `UID ${m.uid}`);
          const h = sha(orig);
          assert.equal(seenHashes.has(h), false, `UID ${m.uid} duplicates another message`);
          seenHashes.add(h);
          uidHash.set(m.uid, h);
          assert.equal(m.size, orig.length, `UID ${m.uid} RFC822.SIZE`);
          assert.ok(m.flags instanceof Set, 'FLAGS returned');
          assert.ok(m.internalDate instanceof Date && !Number.isNaN(m.internalDate.getTime()), 'INTERNALDATE parsed');
          const mid = headerValue(orig, 'Message-ID');
          if (mid && /^<[^<>\s]+>$/.test(mid)) assert.equal(m.envelope?.messageId, mid, `UID ${m.uid} ENVELOPE message-id`);
          const ctype = (headerValue(orig, 'Content-Type') ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
          if (/^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(ctype)) assert.equal(m.bodyStructure?.type, ctype, `UID ${m.uid} BODYSTRUCTURE type`);
          record.messages.set(h, { envelope: m.envelope, structure: m.bodyStructure, parts: new Map() });
        }
        assert.equal(count, N);
        assert.equal(seenHashes.size, N);
      } catch (e) { diag(e); }
    });

    test('BODY[part], BODY[HEADER], BODY.PEEK[HEADER.FIELDS] and partial BODY[]<start.len> by UID', async () => {
      try {
        for (const [uid, h] of uidHash) {
          const obs = record.messages.get(h)!;
          const orig = ORIGINALS.get(h)!;
          const parts = leafParts(obs.structure).slice(0, 4);
          const m = (await c.fetchOne(String(uid), { uid: true, bodyParts: parts, headers: true }, { uid: true })) as FetchMessageObject | false;
          assert.ok(m, `UID ${uid} fetched`);
          assert.ok(m.headers?.equals(orig.subarray(0, orig.indexOf('\r\n\r\n') + 4)), `UID ${uid} BODY[HEADER] equals the original header block`);
          const fields = (await c.fetchOne(String(uid), { uid: true, headers: ['subject', 'from'] }, { uid: true })) as FetchMessageObject | false;
          assert.ok(fields && fields.headers, `UID ${uid} HEADER.FIELDS fetched`);
          assert.equal(fields.headers.toString('latin1'), headerFields(orig, ['subject', 'from']), `UID ${uid} BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]`);
          const partial = (await c.fetchOne(String(uid), { uid: true, source: { start: 10, maxLength: 100 } }, { uid: true })) as FetchMessageObject | false;
          assert.ok(partial && partial.source?.equals(orig.subarray(10, 110)), `UID ${uid} BODY[]<10.100>`);
          for (const p of parts) {
            const got = m.bodyParts?.get(p);
            assert.ok(got, `UID ${uid} BODY[${p}] returned`);
            obs.parts.set(p, got);
            assert.ok(orig.includes(got), `UID ${uid} BODY[${p}] is a slice of the original`);
          }
        }
      } catch (e) { diag(e); }
    });

    test('SEARCH and UID SEARCH with header, body, size, date and boolean keys', async () => {
      try {
        for (const s of SEARCHES) {
          const uids = await c.search(s.query, { uid: true });
          assert.ok(Array.isArray(uids), `${s.name}: SEARCH answered`);
          const hashes = uids.map((u) => {
            const h = uidHash.get(u);
            assert.ok(h, `${s.name}: UID ${u} is a known message`);
            return h;
          }).sort();
          record.searches.set(s.name, hashes);
          if (s.expect) {
            const want = INBOX.filter(s.expect).map(sha).sort();
            assert.deepEqual(hashes, want, `${s.name}: ${uids.length} hits, ${want.length} expected`);
          }
          const seqs = await c.search(s.query);
          assert.ok(Array.isArray(seqs));
          assert.equal(seqs.length, uids.length, `${s.name}: SEARCH and UID SEARCH agree`);
        }
        const subj = record.searches.get(`SUBJECT ${SUBJECT_WORD}`) ?? [];
        assert.ok(subj.length >= 1, `SUBJECT ${SUBJECT_WORD} finds the message it came from`);
      } catch (e) { diag(e); }
    });

    test('implicit TLS: LIST and FETCH of Sent', async () => {
      const c2 = client(t, true);
      try {
        await c2.connect();
        const list = await c2.list();
        assert.ok(list.some((m) => m.path === 'Sent'));
        await c2.mailboxOpen('Sent', { readOnly: true });
        let n = 0;
        for await (const m of c2.fetch('1:*', { uid: true, source: true })) {
          n++;
          assert.ok(m.source && SENT.some((s) => s.equals(m.source!)), `Sent UID ${m.uid} equals a sent original`);
        }
        assert.equal(n, SENT.length);
      } catch (e) { diag(e); } finally {
        await c2.logout().catch(() => undefined);
      }
    });

    test('IDLE announces a newly delivered message, which then fetches byte-exact', async () => {
      try {
        await c.mailboxOpen('INBOX', { readOnly: true });
        const marker = `idle-${Date.now()}`;
        const fresh = Buffer.from(`From: Idle Tester <idle@outside.test>\r\nTo: alice@example.test\r\nSubject: ${marker}\r\nMessage-ID: <${marker}@outside.test>\r\nDate: Tue, 01 Dec 2026 03:00:00 +0000\r\n\r\nA message that arrives during IDLE.\r\n`);
        const exists = new Promise<number>((resolve) => {
          c.on('exists', (ev: { count: number }) => {
            if (ev.count > N) resolve(ev.count);
          });
        });
        const idling = c.idle();
        await new Promise((r) => setTimeout(r, 300));
        await t.deliver(fresh);
        let timer: NodeJS.Timeout | undefined;
        const count = await Promise.race([exists, new Promise<number>((_, rej) => { timer = setTimeout(() => rej(new Error('no EXISTS during IDLE within 20 s')), 20_000); })]);
        clearTimeout(timer);
        assert.equal(count, N + 1);
        // Any command ends IDLE (imapflow sends DONE first).
        const m = (await c.fetchOne(String(count), { uid: true, source: true })) as FetchMessageObject | false;
        await idling;
        assert.ok(m && m.source?.equals(fresh), 'the new message fetches byte-exact');
      } catch (e) { diag(e); }
    });

    test('NOOP polling on a second connection announces the next message', async () => {
      const c2 = client(t);
      try {
        await c2.connect();
        await c2.mailboxOpen('INBOX', { readOnly: true });
        const start = c2.mailbox === false ? 0 : c2.mailbox.exists;
        assert.equal(start, N + 1);
        const marker = `noop-${Date.now()}`;
        const fresh = Buffer.from(`From: poll@outside.test\r\nTo: alice@example.test\r\nSubject: ${marker}\r\nMessage-ID: <${marker}@outside.test>\r\n\r\nSeen by NOOP polling.\r\n`);
        await t.deliver(fresh);
        let exists = start;
        for (let i = 0; i < 100 && exists === start; i++) {
          await c2.noop();
          exists = c2.mailbox === false ? 0 : c2.mailbox.exists;
          if (exists === start) await new Promise((r) => setTimeout(r, 200));
        }
        assert.equal(exists, N + 2, 'NOOP reported the new message');
        const m = (await c2.fetchOne(String(exists), { uid: true, source: true })) as FetchMessageObject | false;
        assert.ok(m && m.source?.equals(fresh), 'the polled message fetches byte-exact');
      } catch (e) { diag(e); } finally {
        await c2.logout().catch(() => undefined);
      }
    });
  });
}

if (selectedTargets().length === 2) {
  describe('Postern serves what Dovecot serves', () => {
    const pair = (): [NonNullable<ReturnType<typeof observed.get>>, NonNullable<ReturnType<typeof observed.get>>] => {
      const d = observed.get('dovecot');
      const p = observed.get('postern');
      assert.ok(d && p && d.messages.size === N && p.messages.size === N, 'both targets fetched every message');
      return [d, p];
    };
    test('ENVELOPE of every message', () => {
      const [d, p] = pair();
      const diffs: string[] = [];
      for (const [h, dm] of d.messages) {
        const a = JSON.stringify(envelopeSummary(p.messages.get(h)?.envelope));
        const b = JSON.stringify(envelopeSummary(dm.envelope));
        if (a !== b) diffs.push(`message ${headerValue(ORIGINALS.get(h)!, 'Message-ID') ?? h}:\n  postern ${a}\n  dovecot ${b}`);
      }
      assert.deepEqual(diffs, []);
    });
    test('BODYSTRUCTURE of every message', () => {
      const [d, p] = pair();
      const diffs: string[] = [];
      for (const [h, dm] of d.messages) {
        const a = JSON.stringify(structureSummary(p.messages.get(h)?.structure));
        const b = JSON.stringify(structureSummary(dm.structure));
        if (a !== b) diffs.push(`message ${headerValue(ORIGINALS.get(h)!, 'Message-ID') ?? h}:\n  postern ${a}\n  dovecot ${b}`);
      }
      assert.deepEqual(diffs, []);
    });
    test('BODY[part] bytes of every leaf part', () => {
      const [d, p] = pair();
      for (const [h, dm] of d.messages) {
        for (const [part, bytes] of dm.parts) {
          const got = p.messages.get(h)?.parts.get(part);
          assert.ok(got?.equals(bytes), `message ${h} BODY[${part}]: postern ${got?.length} bytes, dovecot ${bytes.length}`);
        }
      }
    });
    test('SEARCH results', () => {
      const [d, p] = pair();
      const describe1 = (h: string): string => {
        const m = ORIGINALS.get(h)!;
        return `${headerValue(m, 'Message-ID') ?? h.slice(0, 12)} (Date: ${headerValue(m, 'Date') ?? 'none'})`;
      };
      const diffs: string[] = [];
      for (const s of SEARCHES) {
        const ps = new Set(p.searches.get(s.name) ?? []);
        const ds = new Set(d.searches.get(s.name) ?? []);
        const onlyP = [...ps].filter((h) => !ds.has(h));
        const onlyD = [...ds].filter((h) => !ps.has(h));
        if (onlyP.length || onlyD.length) {
          diffs.push(`SEARCH ${s.name}: postern ${ps.size} hits, dovecot ${ds.size}; only postern: ${onlyP.slice(0, 5).map(describe1).join(', ')}; only dovecot: ${onlyD.slice(0, 5).map(describe1).join(', ')}`);
        }
      }
      assert.deepEqual(diffs, []);
    });
  });
}
