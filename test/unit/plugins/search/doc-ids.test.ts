// Document ids follow the Date header, newest lowest (index-db.ts DOC_SLOT): the newest-first walk
// relies on FTS5's ascending rowid order being newest first, and the total estimate on docIdDate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COLUMNS, DOC_SLOT, IndexDb, docIdBase, docIdDate, type Column, type IndexDocument } from '../../../../plugins/search/index-db.ts';

test('a newer Date gets a lower id; an unknown Date sorts last; docIdDate gives the second back', () => {
  const t = Date.UTC(2024, 4, 1, 12, 0, 0, 250);
  assert.ok(docIdBase(t + 1000) < docIdBase(t));
  assert.equal(docIdBase(t + 500), docIdBase(t), 'one slot per second');
  assert.ok(docIdBase(0) > docIdBase(t));
  assert.equal(docIdBase(-5000), docIdBase(0), 'dates before 1970 count as unknown');
  assert.equal(docIdDate(docIdBase(t)), Date.UTC(2024, 4, 1, 12, 0, 0));
  assert.ok(Number.isSafeInteger(docIdBase(0) + DOC_SLOT));
});

test('documents of one second get consecutive ids in the order they are indexed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-docids-'));
  const db = new IndexDb(dir);
  try {
    const t = Date.UTC(2025, 0, 2, 3, 4, 5);
    const text = Object.fromEntries(COLUMNS.map((c) => [c, 'x'])) as Record<Column, string>;
    const doc = (id: string, date: number): IndexDocument => ({ messageId: id, date, size: 1, hasAttachment: false, complete: true, failure: null, from: '', subject: '', text });
    const docs = [doc('a', t), doc('b', t + 10), doc('c', t + 1000), doc('d', 0), doc('e', t + 999)];
    db.write('u', 'Inbox', docs, docs.map((d, i) => ({ user: 'u', folder: 'Inbox', uid: i + 1, messageId: d.messageId, date: d.date })), docs.length);
    const id = (m: string): number => db.docOf(m)?.id ?? Number.NaN;
    assert.deepEqual([id('a'), id('b'), id('e')], [docIdBase(t), docIdBase(t) + 1, docIdBase(t) + 2]);
    assert.ok(id('c') < id('a') && id('d') > id('a'));
    const order = db.db.prepare<[], { message_id: string }>('SELECT message_id FROM docs ORDER BY id').all().map((r) => r.message_id);
    assert.deepEqual(order, ['c', 'a', 'b', 'e', 'd']);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('entry counts per user follow every insert and removal (the estimate reads them instead of counting entries)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-entrycounts-'));
  const db = new IndexDb(dir);
  try {
    const text = Object.fromEntries(COLUMNS.map((c) => [c, 'x'])) as Record<Column, string>;
    const doc = (id: string): IndexDocument => ({ messageId: id, date: 1, size: 1, hasAttachment: false, complete: true, failure: null, from: '', subject: '', text });
    const counted = (): Record<string, number> => Object.fromEntries(db.db.prepare<[], { user: string; n: number }>('SELECT user, n FROM entry_counts WHERE n > 0').all().map((r) => [r.user, r.n]));
    const actual = (): Record<string, number> => Object.fromEntries(db.db.prepare<[], { user: string; n: number }>('SELECT user, count(*) AS n FROM entries GROUP BY user').all().map((r) => [r.user, r.n]));
    const docs = ['a', 'b', 'c'].map(doc);
    db.write('u', 'Inbox', docs, docs.map((d, i) => ({ user: 'u', folder: 'Inbox', uid: i + 1, messageId: d.messageId, date: 1 })), 3);
    db.write('v', 'Inbox', [], [{ user: 'v', folder: 'Inbox', uid: 1, messageId: 'a', date: 1 }], 1);
    // The same entry again is ignored by the table, and so by the count.
    db.write('u', 'Inbox', [], [{ user: 'u', folder: 'Inbox', uid: 1, messageId: 'a', date: 1 }], 3);
    assert.deepEqual(counted(), { u: 3, v: 1 });
    db.removeEntries('u', 'Inbox', [2, 99]);
    assert.deepEqual(counted(), { u: 2, v: 1 });
    db.dropUser('v');
    assert.deepEqual(counted(), actual());
    assert.deepEqual(counted(), { u: 2 });
    db.dropAll();
    assert.deepEqual(counted(), {});
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
