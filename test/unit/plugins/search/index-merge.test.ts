// The field tables are merged into one segment each once the index has grown enough (IndexDb.mergeStep):
// step by step, resumable, not before it is due, and without changing any answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COLUMNS, IndexDb, mergeDue, type Column, type IndexDocument } from '../../../../plugins/search/index-db.ts';

function docOf(i: number): IndexDocument {
  const text = Object.fromEntries(COLUMNS.map((c) => [c, ''])) as Record<Column, string>;
  text.sender = `person${i % 97}@example${i % 13}.test`;
  text.subject = `report ${i % 7 === 0 ? 'quarterly budget review' : 'weekly'} ${i}`;
  text.attachment = i % 5 === 0 ? `scan_${i}.pdf application/pdf` : '';
  text.body = `body ${i}`;
  return { messageId: `m${i}`, date: 1_600_000_000_000 + i * 1000, size: 100, hasAttachment: i % 5 === 0, complete: true, failure: null, from: text.sender, subject: text.subject, text };
}

test('field tables merge step by step once due, and every query answers the same after', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-merge-'));
  const db = new IndexDb(dir);
  try {
    let uid = 0;
    const add = (n: number): void => {
      // Many small transactions: FTS5 writes a segment for each.
      for (let b = 0; b < n; b += 50) {
        const docs = Array.from({ length: Math.min(50, n - b) }, () => docOf(++uid));
        db.write('u', 'Inbox', docs, docs.map((d, k) => ({ user: 'u', folder: 'Inbox', uid: uid - docs.length + k + 1, messageId: d.messageId, date: d.date })), uid);
      }
    };
    const answers = (): number[][] => ['{subject} : "quarterly budget"', '{sender} : "person4@example"', '"scan_1"', '{subject} : "weekly"']
      .map((q) => db.db.prepare<[string], { r: number }>(`SELECT rowid AS r FROM ${q.startsWith('"scan') ? 'att' : 'hdr'} WHERE ${q.startsWith('"scan') ? 'att' : 'hdr'} MATCH ? ORDER BY rowid`).all(q).map((r) => r.r));
    add(4000);
    assert.equal(db.mergeStep(50), false, 'not due below the minimum growth');
    add(2000);
    const before = answers();
    let steps = 0;
    while (db.mergeStep(50)) steps++;
    assert.ok(steps >= 2, `the merge took several bounded steps (${steps})`);
    assert.deepEqual(answers(), before);
    assert.equal(db.mergeStep(50), false, 'done: not due again until the index grows');
    add(1000);
    assert.equal(db.mergeStep(50), false, 'a small growth is not enough');
    assert.deepEqual(answers().map((a) => a.length > 0), [true, true, true, true]);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a full merge is due after 25 % growth and at least 5,000 entries, or while one is under way', () => {
  assert.equal(mergeDue({ entries: 0, running: false }, 4999), false);
  assert.equal(mergeDue({ entries: 0, running: false }, 5000), true);
  assert.equal(mergeDue({ entries: 100_000, running: false }, 124_999), false);
  assert.equal(mergeDue({ entries: 100_000, running: false }, 125_000), true);
  assert.equal(mergeDue({ entries: 100_000, running: true }, 100_000), true);
});
