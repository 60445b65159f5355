// The query compiler against a plain evaluation: generated queries (AND/OR/NOT of field and text
// terms, folders, sizes) over a small generated index must find exactly the entries a direct
// substring test of each column finds, however the compiler groups text terms into FTS5 expressions.
// Paged with small bounds, the newest-first walk (query-driver.ts, walk.ts) and the full evaluation it
// falls back to must together give the same entries, newest first, with an exact or estimated total.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { COLUMNS, IndexDb, type Column, type IndexDocument } from '../../../../plugins/search/index-db.ts';
import { IndexSearch } from '../../../../plugins/search/service.ts';
import { inProcessWrites } from '../../../../plugins/search/index-writer.ts';
import { inProcessReads } from '../../../../plugins/search/index-reader.ts';
import { describeQuery, parseQuery, type QueryNode, type TextField } from '../../../../core/search/query.ts';
import { prng } from '../../../helpers/prng.ts';
import type { ArchiveStore } from '../../../../core/storage/types.ts';

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
const FIELDS: Record<Exclude<TextField, 'folder' | 'user'>, Column[] | null> = {
  text: null, from: ['sender'], to: ['rcpt_to'], cc: ['rcpt_cc'], bcc: ['rcpt_bcc'], subject: ['subject'], body: ['body'], attachment: ['attachment'],
  participant: ['sender', 'rcpt_to', 'rcpt_cc', 'rcpt_bcc', 'envelope'],
};
const N = 120;

interface Doc { text: Record<Column, string>; folder: string; size: number }
const docs: Doc[] = [];
let dir: string;
let db: IndexDb;
let search: IndexSearch;
/** The same index with tiny bounds: walks stop early, estimate totals and fall back to the full evaluation. */
let tight: IndexSearch;
const TIGHT = { countUpTo: 5, maxDocs: 12 };

before(() => {
  const rnd = prng(7);
  const words = (n: number): string => Array.from({ length: n }, () => WORDS[Math.floor(rnd() * WORDS.length)]).join(' ');
  dir = mkdtempSync(join(tmpdir(), 'postern-qsql-'));
  db = new IndexDb(dir);
  const rows: IndexDocument[] = [];
  for (let i = 0; i < N; i++) {
    const text = Object.fromEntries(COLUMNS.map((c) => [c, rnd() < 0.5 ? words(1 + Math.floor(rnd() * 3)) : ''])) as Record<Column, string>;
    const doc = { text, folder: rnd() < 0.5 ? 'Inbox' : 'Sent', size: Math.floor(rnd() * 5000) };
    docs.push(doc);
    rows.push({ messageId: `m${i}`, date: 1_700_000_000_000 + i * 1000, size: doc.size, hasAttachment: false, complete: true, failure: null, from: '', subject: '', text });
  }
  for (const folder of ['Inbox', 'Sent']) {
    const mine = rows.map((r, i) => ({ r, i })).filter(({ i }) => docs[i]?.folder === folder);
    db.write('u', folder, mine.map(({ r }) => r), mine.map(({ r, i }) => ({ user: 'u', folder, uid: i + 1, messageId: r.messageId, date: r.date })), N);
  }
  const archive = { getEntry: async (_u: string, folder: string, uid: number) => (docs[uid - 1]?.folder === folder ? { messageId: `m${uid - 1}` } : null) } as unknown as ArchiveStore;
  search = new IndexSearch(db, archive, inProcessWrites(db), inProcessReads(db));
  tight = new IndexSearch(db, archive, inProcessWrites(db), inProcessReads(db), TIGHT);
});
after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function matches(node: QueryNode, d: Doc): boolean {
  switch (node.kind) {
    case 'and': return node.items.every((n) => matches(n, d));
    case 'or': return node.items.some((n) => matches(n, d));
    case 'not': return !matches(node.item, d);
    case 'size': return node.op === 'larger' ? d.size > node.bytes : d.size < node.bytes;
    case 'has': case 'date': return false;
    case 'term': {
      if (node.field === 'folder') return d.folder.toLowerCase() === node.value.toLowerCase();
      if (node.field === 'user') return node.value === 'u';
      const cols = FIELDS[node.field] ?? [...COLUMNS];
      return cols.some((c) => d.text[c].includes(node.value.toLowerCase()));
    }
  }
}

const term = fc.record({
  field: fc.constantFrom<Exclude<TextField, 'user'>>('text', 'from', 'to', 'cc', 'subject', 'body', 'participant', 'attachment', 'folder'),
  word: fc.constantFrom(...WORDS, 'lph', 'rav', 'zulu', 'Inbox', 'Sent'),
}).map(({ field, word }): QueryNode => ({ kind: 'term', field, value: field === 'folder' ? (word === 'Sent' ? 'Sent' : 'Inbox') : word, phrase: false, prefix: false, pos: 0 }));
const size = fc.record({ op: fc.constantFrom<'larger' | 'smaller'>('larger', 'smaller'), bytes: fc.integer({ min: 0, max: 5000 }) }).map(({ op, bytes }): QueryNode => ({ kind: 'size', op, bytes, pos: 0 }));
const query = fc.letrec<{ node: QueryNode }>((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    term, term, size,
    fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((items): QueryNode => ({ kind: 'and', items })),
    fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((items): QueryNode => ({ kind: 'or', items })),
    tie('node').map((item): QueryNode => ({ kind: 'not', item }))),
})).node;

const check = async (node: QueryNode): Promise<void> => {
  const text = describeQuery(node);
  const page = await search.search(text, { users: 'all', limit: 1000 });
  const got = page.hits.map((h) => h.uid).sort((a, b) => a - b);
  const want = docs.map((d, i) => (matches(node, d) ? i + 1 : 0)).filter((u) => u > 0);
  assert.deepEqual(got, want, text);
};

test('hand-picked shapes: several exclusions, mixed OR, NOT of groups, folders and sizes', async () => {
  for (const q of [
    'alpha -bravo -charlie', 'alpha NOT (bravo OR charlie)', 'from:alpha -to:bravo -subject:charlie -body:delta',
    '(alpha OR from:bravo) -subject:echo folder:Sent', 'alpha OR (bravo -charlie) OR smaller:100', '-alpha -bravo',
    'NOT (alpha bravo)', '(alpha OR bravo) (charlie OR delta) -echo', 'participant:golf OR attachment:hotel folder:Inbox',
  ]) await check(parseQuery(q));
});

test('compiled queries find exactly what a direct evaluation finds', async () => {
  await fc.assert(fc.asyncProperty(query, check), { numRuns: 300, seed: 20261207 });
});

/** Every page of a query at `limit` hits; the first page's total. */
async function pages(on: IndexSearch, text: string, limit: number): Promise<{ uids: number[]; total: number; exact: boolean }> {
  const uids: number[] = [];
  let cursor: string | undefined;
  let first: { total: number; exact: boolean } | undefined;
  for (let n = 0; n < 200; n++) {
    const page = await on.search(text, { users: 'all', limit, ...(cursor ? { cursor } : {}) });
    first ??= { total: page.total, exact: page.totalExact };
    uids.push(...page.hits.map((h) => h.uid));
    if (!page.nextCursor) return { uids, ...first };
    cursor = page.nextCursor;
  }
  throw new Error(`${text}: more than 200 pages`);
}

test('paged with small bounds: newest first, nothing lost or repeated, totals exact or estimated past the bound', async () => {
  let estimated = 0;
  await fc.assert(fc.asyncProperty(query, fc.integer({ min: 1, max: 6 }), async (node, limit) => {
    const text = describeQuery(node);
    // Later dates have higher UIDs here: newest first is UID descending.
    const want = docs.map((d, i) => (matches(node, d) ? i + 1 : 0)).filter((u) => u > 0).reverse();
    const got = await pages(tight, text, limit);
    assert.deepEqual(got.uids, want, text);
    if (got.exact) assert.equal(got.total, want.length, text);
    else {
      estimated++;
      assert.ok(want.length > limit && got.total >= TIGHT.countUpTo, `${text}: an estimate only past a full page and the bound (${got.total}, ${want.length} matches)`);
    }
  }), { numRuns: 200, seed: 20261208 });
  assert.ok(estimated > 0, 'some totals were estimated');
});

test('a broad word stops early with an estimate near the truth; a narrow one is counted exactly', async () => {
  const want = docs.filter((d) => COLUMNS.some((c) => d.text[c].includes('alpha'))).length;
  const broad = await tight.search('alpha', { users: 'all', limit: 3 });
  assert.equal(broad.totalExact, false);
  assert.ok(broad.total >= want / 2 && broad.total <= want * 2, `estimate ${broad.total} for ${want}`);
  const exact = await search.search('alpha', { users: 'all', limit: 3 });
  assert.equal(exact.totalExact, true);
  assert.equal(exact.total, want);
  const narrow = await tight.search('subject:alpha body:bravo from:charlie', { users: 'all', limit: 50 });
  assert.equal(narrow.totalExact, true);
});
