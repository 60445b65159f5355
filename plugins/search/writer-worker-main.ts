// The search index's writer thread: owns the one writing SQLite connection, so trigram indexing of
// large texts (and every other write) never blocks the main thread's event loop. Requests arrive as
// { id, op, args } for the IndexDb write methods; each reply carries the result or the error message.
import { parentPort, workerData } from 'node:worker_threads';
import { IndexDb } from './index-db.ts';
import type { WriteOp, WriterReply, WriterRequest } from './index-writer.ts';

const db = new IndexDb((workerData as { dir: string }).dir);
const ops: Record<WriteOp, (args: unknown[]) => unknown> = {
  write: (a) => db.write(...(a as Parameters<IndexDb['write']>)),
  removeEntries: (a) => db.removeEntries(...(a as Parameters<IndexDb['removeEntries']>)),
  dropUser: (a) => db.dropUser(...(a as Parameters<IndexDb['dropUser']>)),
  dropAll: () => db.dropAll(),
  dropOrphans: (a) => db.dropOrphans(...(a as Parameters<IndexDb['dropOrphans']>)),
  mergeStep: (a) => db.mergeStep(...(a as Parameters<IndexDb['mergeStep']>)),
  close: () => db.close(),
};
parentPort?.on('message', (req: WriterRequest) => {
  let reply: WriterReply;
  try {
    reply = { id: req.id, ok: true, value: ops[req.op](req.args) };
  } catch (err) {
    reply = { id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(reply);
});
parentPort?.postMessage({ id: 0, ok: true, value: 'ready' } satisfies WriterReply);
