// An analysis worker: loads the analyzers plugins registered, then answers one request at a time with
// the units of an intake entry (message-units.ts). Runs under the resource limits and deadline the pool
// sets; a hang or runaway allocation here ends this thread, never the gateway. Trusts the specs (they
// come from the configuration); hands on AnalysisResults, Buffers as transferable Uint8Arrays.
import { parentPort, workerData } from 'node:worker_threads';
import { open, readFile } from 'node:fs/promises';
import { errorMessage, isPosternError } from '../errors.ts';
import { analyzeEntry, analyzeWithOne, fileSource, memorySource, type LoadedAnalyzer } from './message-units.ts';
import type { AnalysisRequest, AnalysisWorkerData, AnalyzerFn, AnalyzerSpec, WorkerReply } from './analysis-types.ts';
import { packChunk } from '../storage/blob-codec.ts';
import { CHUNK_SIZE } from '../storage/kv-writer-group.ts';
import { runtimeModule } from '../app/module-url.ts';

const port = parentPort;
if (!port) throw new Error('analysis-worker-main.ts runs only as a worker thread');

async function readHead(path: string, max: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(max);
    const { bytesRead } = await fh.read(buf, 0, max, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function load(specs: AnalyzerSpec[]): Promise<LoadedAnalyzer[]> {
  const out: LoadedAnalyzer[] = [];
  for (const spec of specs) {
    const mod = (await import(runtimeModule(spec.module))) as Record<string, unknown>;
    const fn = mod[spec.exportName];
    if (typeof fn !== 'function') throw new Error(`Analyzer module "${spec.module}" of plugin "${spec.plugin}" has no function export "${spec.exportName}"`);
    out.push({ spec, fn: fn as AnalyzerFn });
  }
  return out;
}

/** The spool file is missing or unreadable (ENOENT, EACCES, EISDIR …): the entry is corrupt, not worth retrying. */
const isFileError = (err: unknown): boolean => typeof (err as NodeJS.ErrnoException).code === 'string' && /^E[A-Z]+$/.test((err as NodeJS.ErrnoException).code as string);

const post = (reply: WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(reply, transfer);

try {
  const data = workerData as AnalysisWorkerData;
  const analyzers = await load(data.specs);
  // Requests are worked through one at a time, in the order they came: the pool's deadline runs for
  // the first one it has not had a reply to.
  const waiting: AnalysisRequest[] = [];
  let working = false;
  const next = async (): Promise<void> => {
    working = true;
    for (let req = waiting.shift(); req; req = waiting.shift()) {
      try {
        await answer(req);
      } catch (err) {
        // A result that cannot be posted (an analyzer returned something not cloneable).
        post({ type: 'failed', id: req.id, error: errorMessage(err), corrupt: false });
      }
    }
    working = false;
  };
  const answer = async (req: AnalysisRequest): Promise<void> => {
    const source = 'bytes' in req.source
      ? memorySource(Buffer.from(req.source.bytes.buffer, req.source.bytes.byteOffset, req.source.bytes.byteLength))
      : fileSource(req.source.path, req.size, readHead, (p) => readFile(p));
    if (req.only !== undefined) {
      await analyzeWithOne(source, analyzers, req.only).then(
        (outcome) => post({ type: 'done-one', id: req.id, outcome }),
        (err: unknown) => post({ type: 'failed', id: req.id, error: errorMessage(err), corrupt: false }),
      );
      return;
    }
    const whole = 'bytes' in req.source ? req.source.bytes : null;
    await analyzeEntry(source, analyzers).then((result) => {
      // Unwrapped originals and packed bytes travel back without a copy.
      const transfer: ArrayBuffer[] = [];
      for (const u of result.units) {
        const bytes = u.original ?? whole;
        if (data.codec && bytes && bytes.byteLength <= CHUNK_SIZE) {
          try {
            const packed = packChunk(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), data.codec);
            if (packed.bytes) {
              packed.bytes = new Uint8Array(packed.bytes);
              transfer.push(packed.bytes.buffer as ArrayBuffer);
            }
            u.packed = packed;
          } catch {
            // Not packed: the archive compresses the unit itself (and reports what is wrong).
          }
        }
        if (u.original) {
          const copy = new Uint8Array(u.original);
          u.original = copy;
          transfer.push(copy.buffer);
        }
      }
      post({ type: 'done', id: req.id, result }, transfer);
    }, (err: unknown) => post({ type: 'failed', id: req.id, error: errorMessage(err), corrupt: isPosternError(err, 'INTAKE_CORRUPT') || isFileError(err) }));
  };
  port.on('message', (req: AnalysisRequest) => {
    waiting.push(req);
    if (!working) void next();
  });
  post({ type: 'ready' });
} catch (err) {
  post({ type: 'startup-failed', error: errorMessage(err) });
}
