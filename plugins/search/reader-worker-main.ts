// A search index reader thread: one read-only SQLite connection; requests { id, sql, params } from
// the main thread's IndexReader (SQL built by query-sql.ts and service.ts, values bound), replies
// with the rows or the error message. Prepared statements are cached per SQL text (bounded).
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { ReaderReply, ReaderRequest } from './index-reader.ts';

const MAX_STATEMENTS = 200;
const db = new Database((workerData as { file: string }).file, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
const statements = new Map<string, Database.Statement>();

function statement(sql: string): Database.Statement {
  let s = statements.get(sql);
  if (!s) {
    if (statements.size >= MAX_STATEMENTS) statements.delete(statements.keys().next().value as string);
    s = db.prepare(sql);
    statements.set(sql, s);
  }
  return s;
}

parentPort?.on('message', (req: ReaderRequest) => {
  let reply: ReaderReply;
  try {
    reply = { id: req.id, ok: true, rows: statement(req.sql).all(...req.params) };
  } catch (err) {
    reply = { id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(reply);
});
parentPort?.postMessage({ id: 0, ok: true, rows: [] } satisfies ReaderReply);
