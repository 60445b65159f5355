// The newest-first walk of a search (run where the index's connections are: a reader thread, or in
// process for tests): reads document ids from the query's driver (query-driver.ts) on one connection,
// lazily, and in growing batches looks up their entries under the rest of the query on a second
// connection (SQLite cannot run a statement while another is being stepped on the same connection).
// Stops when enough hits are counted, when `maxDocs` documents were read, or when the driver ends.
// Trusts its SQL (built by service.ts from query-driver.ts); bounded by `maxDocs`.
import type Database from 'better-sqlite3';

type SqlParam = string | number;

export interface WalkRequest {
  driver: { sql: string; params: SqlParam[] };
  /** Entry rows of a batch of documents: its first parameter is the batch as a JSON array; rows in page order. */
  rows: { sql: string; params: SqlParam[] };
  /** The number of those rows (same parameters): used once the page is full. */
  count: string;
  /** Rows to return (a page and one more). */
  want: number;
  /** Stop once this many rows matched (the total is exact below it). */
  countUpTo: number;
  /** Stop after reading this many documents from the driver. */
  maxDocs: number;
}

export interface WalkResult {
  rows: unknown[];
  /** Entry rows that matched in the documents read. */
  hits: number;
  /** Documents read from the driver. */
  docs: number;
  /** The last (oldest) document read, or null. */
  lastDoc: number | null;
  /** True when the driver ended: `hits` is every match. */
  exhausted: boolean;
}

const FIRST_BATCH = 32;
const MAX_BATCH = 1024;

export function walk(driverDb: Database.Database, rowsDb: Database.Database, req: WalkRequest, prepare: (db: Database.Database, sql: string) => Database.Statement): WalkResult {
  const rowsStmt = prepare(rowsDb, req.rows.sql);
  const countStmt = prepare(rowsDb, req.count).pluck(true);
  const docs = prepare(driverDb, req.driver.sql).pluck(true).iterate(...req.driver.params) as IterableIterator<number>;
  const rows: unknown[] = [];
  let hits = 0;
  let read = 0;
  let lastDoc: number | null = null;
  let exhausted = false;
  let batch: number[] = [];
  let size = FIRST_BATCH;
  const flush = (): void => {
    if (rows.length < req.want) {
      const found = rowsStmt.all(JSON.stringify(batch), ...req.rows.params);
      for (const r of found) if (rows.length < req.want) rows.push(r);
      hits += found.length;
    } else hits += countStmt.get(JSON.stringify(batch), ...req.rows.params) as number;
    batch = [];
    size = nextSize();
  };
  // While the page fills, batches grow fourfold. Once it is full and only counting remains, the next
  // batch is sized to the matches still to count at the rate seen so far (and a tenth more), so the
  // driver is not read far past the count bound (a fourfold batch read up to 70 % more documents).
  const nextSize = (): number => {
    if (rows.length < req.want || hits === 0) return Math.min(MAX_BATCH, size * 4);
    const perDoc = hits / read;
    return Math.max(1, Math.min(MAX_BATCH, Math.ceil(((req.countUpTo - hits) / perDoc) * 1.1)));
  };
  try {
    for (;;) {
      const next = docs.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      batch.push(next.value);
      lastDoc = next.value;
      read++;
      if (batch.length >= size) {
        flush();
        if (hits >= req.countUpTo || read >= req.maxDocs) break;
      }
    }
    if (batch.length > 0) flush();
  } finally {
    docs.return?.();
  }
  return { rows, hits, docs: read, lastDoc, exhausted };
}
