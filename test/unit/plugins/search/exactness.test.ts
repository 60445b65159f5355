// Exactness of index-served IMAP SEARCH over the whole SpamAssassin corpus: for a few hundred
// generated keys (mid-word substrings, other case, non-ASCII, encoded-word subjects, header fields,
// words that occur nowhere), every message the scanning SEARCH matches must be among the index's
// candidates, so the indexed answer (candidates, then verified by the same scan) equals the scan's.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { loadCorpus } from '../../../helpers/corpus.ts';
import { prng } from '../../../helpers/prng.ts';
import { extract } from '../../../../plugins/search/extract.ts';
import { IndexDb, COLUMNS, type Column, type IndexDocument } from '../../../../plugins/search/index-db.ts';
import { IndexSearch } from '../../../../plugins/search/service.ts';
import { inProcessWrites } from '../../../../plugins/search/index-writer.ts';
import { inProcessReads } from '../../../../plugins/search/index-reader.ts';
import { computeImapData } from '../../../../plugins/imap/message/index.ts';
import { collectText, collectedMatches, headerSearchValues, headerValuesMatch } from '../../../../plugins/imap/message/search.ts';
import { filterHeader, readRange } from '../../../../plugins/imap/message/section.ts';
import type { ImapTextKey } from '../../../../core/app/search-service.ts';
import type { ArchiveStore } from '../../../../core/storage/types.ts';

interface Scanned {
  body: string;
  text: string;
  header: Buffer;
}

const FIELDS = ['From', 'To', 'Cc', 'Bcc', 'Subject'] as const;
const OTHER_HEADERS = ['Subject', 'From', 'Received', 'Message-ID', 'Content-Type', 'X-Mailer', 'Reply-To', 'List-Id', 'Date'];
const KEYS = 400;

describe('index-served IMAP SEARCH gives the scan\'s answer (SpamAssassin corpus)', () => {
  let dir: string;
  let db: IndexDb;
  let search: IndexSearch;
  const scanned: Scanned[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'postern-exact-'));
    db = new IndexDb(dir);
    search = new IndexSearch(db, null as unknown as ArchiveStore, inProcessWrites(db), inProcessReads(db));
    const corpus = loadCorpus();
    const docs: IndexDocument[] = [];
    for (const [i, bytes] of corpus.entries()) {
      const open = (): Promise<Readable> => Promise.resolve(Readable.from([bytes]));
      const data = await computeImapData(Readable.from([bytes]));
      const header = data.header !== undefined ? Buffer.from(data.header, 'latin1') : await readRange(open, 0, data.headerSize);
      scanned.push({
        body: (await collectText(open, data, 'BODY', 64 * 1024 * 1024)) ?? '',
        text: (await collectText(open, data, 'TEXT', 64 * 1024 * 1024)) ?? '',
        header,
      });
      const x = await extract({ headers: { fields: [], raw: Buffer.alloc(0) } as never, size: bytes.length, options: null, open: () => Readable.from([bytes]) });
      const text = Object.fromEntries(COLUMNS.map((c) => [c, ''])) as Record<Column, string>;
      Object.assign(text, { head: x.head, rawhdr: x.rawhdr, body: x.body, sender: x.sender, rcpt_to: x.rcpt_to, rcpt_cc: x.rcpt_cc, rcpt_bcc: x.rcpt_bcc, subject: x.subject, attachment: x.attachment });
      docs.push({ messageId: `m${i}`, date: 0, size: bytes.length, hasAttachment: x.hasAttachment, complete: x.complete, failure: null, from: '', subject: '', text });
    }
    db.write('u', 'Inbox', docs, docs.map((d, i) => ({ user: 'u', folder: 'Inbox', uid: i + 1, messageId: d.messageId, date: 0 })), docs.length);
  });
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const scanMatches = (m: Scanned, k: ImapTextKey): boolean => {
    if (k.key === 'BODY') return collectedMatches(m.body, k.needle);
    if (k.key === 'TEXT') return collectedMatches(m.text, k.needle);
    const field = k.key === 'HEADER' ? (k.header as string) : k.key;
    return headerValuesMatch(headerSearchValues(filterHeader(m.header, [field], false), field), k.needle);
  };

  /** Keys drawn from the corpus's own text (so most match something), varied in case and position. */
  function generateKeys(): ImapTextKey[] {
    const rnd = prng(20261207);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
    const keys: ImapTextKey[] = [];
    const substring = (s: string): string | null => {
      const clean = s.replace(/\u0000/g, ' ');
      if (clean.length < 4) return null;
      const len = 3 + Math.floor(rnd() * 10);
      const start = Math.floor(rnd() * Math.max(1, clean.length - len));
      const n = clean.slice(start, start + len);
      return n.trim().length >= 3 && !/["\\\r\n]/.test(n) ? n : null;
    };
    const vary = (s: string): string => (rnd() < 0.3 ? s.toUpperCase() : rnd() < 0.5 ? s.replace(/^./, (c) => c.toUpperCase()) : s);
    let guard = 0;
    while (keys.length < KEYS && guard++ < KEYS * 50) {
      const m = pick(scanned);
      const kind = rnd();
      if (kind < 0.3) {
        const n = substring(m.body);
        if (n) keys.push({ key: 'BODY', needle: vary(n) });
      } else if (kind < 0.45) {
        const n = substring(m.text);
        if (n) keys.push({ key: 'TEXT', needle: vary(n) });
      } else if (kind < 0.8) {
        const f = pick(FIELDS);
        const values = headerSearchValues(filterHeader(m.header, [f], false), f);
        const n = values.length > 0 ? substring(pick(values)) : null;
        if (n) keys.push({ key: f.toUpperCase() as ImapTextKey['key'], needle: vary(n) });
      } else if (kind < 0.9) {
        const f = pick(OTHER_HEADERS);
        const values = headerSearchValues(filterHeader(m.header, [f], false), f);
        const n = values.length > 0 ? substring(pick(values)) : null;
        if (n) keys.push({ key: 'HEADER', header: f, needle: vary(n) });
      } else {
        // Non-ASCII and words that occur nowhere.
        keys.push({ key: pick(['BODY', 'TEXT', 'SUBJECT'] as const), needle: pick(['für', 'ÄRGER', 'résumé', 'наличии', 'xyzzyplugh', '日本語', 'straße', 'ΣΟΦΙΑ']) });
      }
    }
    return keys;
  }

  it(`never rules out a message the scan matches (${KEYS} keys)`, async () => {
    const keys = generateKeys();
    assert.ok(keys.length >= KEYS * 0.9, `generated ${keys.length} keys`);
    let matched = 0;
    let candidates = 0;
    for (const k of keys) {
      const c = await search.imapCandidates('u', 'Inbox', k);
      assert.ok(c, `the index serves ${JSON.stringify(k)}`);
      assert.equal(c.through, scanned.length);
      for (const [i, m] of scanned.entries()) {
        if (!scanMatches(m, k)) continue;
        matched++;
        assert.ok(c.uids.has(i + 1), `message ${i + 1} matches ${JSON.stringify(k)} by scan but the index ruled it out`);
      }
      candidates += c.uids.size;
    }
    assert.ok(matched > KEYS, `the keys match something (${matched} matches)`);
    // The index must also narrow the scan: candidates are a small share of keys × messages.
    assert.ok(candidates < keys.length * scanned.length * 0.2, `candidates ${candidates} of ${keys.length * scanned.length}`);
  });
});
