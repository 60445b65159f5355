// A search index reader thread: read-only SQLite connections; requests { id, sql, params } or
// { id, walk } (a newest-first search walk, walk.ts, which steps a driver statement on a second
// connection) from the main thread's IndexReader (SQL built by query-sql.ts, query-driver.ts and
// service.ts, values bound), replies with the rows or the error message. Prepared statements are cached
// per connection and SQL text (bounded).
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { ReaderReply, ReaderRequest } from './index-reader.ts';
import { walk } from './walk.ts';

const MAX_STATEMENTS = 200;
const open = (): Database.Database => {
  const d = new Database((workerData as { file: string }).file, { readonly: true, fileMustExist: true });
  d.pragma('busy_timeout = 5000');
  return d;
};
const db = open();
let driverDb: Database.Database | null = null;
const caches = new Map<Database.Database, Map<string, Database.Statement>>();

function statement(on: Database.Database, sql: string): Database.Statement {
  let statements = caches.get(on);
  if (!statements) caches.set(on, (statements = new Map()));
  let s = statements.get(sql);
  if (!s) {
    if (statements.size >= MAX_STATEMENTS) statements.delete(statements.keys().next().value as string);
    s = on.prepare(sql);
    statements.set(sql, s);
  }
  return s;
}

parentPort?.on('message', (req: ReaderRequest) => {
  let reply: ReaderReply;
  try {
    if ('walk' in req) {
      driverDb ??= open();
      reply = { id: req.id, ok: true, rows: [walk(driverDb, db, req.walk, statement)] };
    } else reply = { id: req.id, ok: true, rows: statement(db, req.sql).all(...req.params) };
  } catch (err) {
    reply = { id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(reply);
});
parentPort?.postMessage({ id: 0, ok: true, rows: [] } satisfies ReaderReply);
