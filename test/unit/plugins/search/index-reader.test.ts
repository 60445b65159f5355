// The index's reader threads: queries answer from a read-only connection off the main thread; a query
// past its deadline fails with UNAVAILABLE and its thread is replaced, so the next query is answered;
// an SQL error is the index's (STORAGE_IO) unless FTS5 could not parse the expression (INVALID_INPUT).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IndexDb } from '../../../../plugins/search/index-db.ts';
import { IndexReader } from '../../../../plugins/search/index-reader.ts';
import { isPosternError } from '../../../../core/errors.ts';

test('reader threads answer, stop a query past its deadline, and keep answering after it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-reader-'));
  const db = new IndexDb(dir);
  const reader = new IndexReader(dir, { threads: 1, deadlineMs: 300 });
  try {
    assert.deepEqual(await reader.all<{ n: number }>('SELECT count(*) AS n FROM docs', []), [{ n: 0 }]);
    const endless = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) SELECT count(*) AS n FROM c';
    await assert.rejects(reader.all(endless, []), (err: unknown) => isPosternError(err, 'UNAVAILABLE') && /longer than 0.3 s/.test((err as Error).message));
    assert.deepEqual(await reader.all<{ v: number }>('SELECT ? + 1 AS v', [41]), [{ v: 42 }], 'a new thread answers the next query');
    await assert.rejects(reader.all('SELECT rowid FROM fts WHERE fts MATCH ?', ['"unterminated']), (err: unknown) => isPosternError(err, 'INVALID_INPUT'));
    await assert.rejects(reader.all('SELECT * FROM no_such_table', []), (err: unknown) => isPosternError(err, 'STORAGE_IO'));
  } finally {
    await reader.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
