// Small HTTP helpers shared by the admin server and the routes plugins register on it: typed HTTP
// errors, bounded JSON bodies validated with a schema, JSON replies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { validationMessage } from './validation-message.ts';

export const MAX_BODY = 64 * 1024;

/** An error that becomes an HTTP status and `{ "error": message }`. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * The request body as JSON, at most `limit` bytes: 413 beyond (at once when Content-Length says so;
 * the connection is then closed rather than read to its end), 400 when it is not JSON or the client
 * went away before the body was complete. Never destroys the request itself, so the server can still
 * answer and record it.
 */
export async function readJson(req: IncomingMessage, limit = MAX_BODY): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, `Request body exceeds ${limit} bytes`);
  const body = await readBody(req, limit);
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'Request body is not valid JSON');
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const finish = (err: HttpError | null): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(Buffer.concat(parts, size));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) finish(new HttpError(413, `Request body exceeds ${limit} bytes`));
      else parts.push(chunk);
    };
    const onEnd = (): void => finish(null);
    const onError = (): void => finish(new HttpError(400, 'The request body was not received completely'));
    const onClose = (): void => finish(new HttpError(400, 'The request body was not received completely'));
    if (req.readableEnded) return resolve(Buffer.alloc(0));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Parse an outside value with a schema; problems become one 400 with a sentence for each (validation-message.ts). */
export function validated<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new HttpError(400, validationMessage(r.error.issues));
  return r.data;
}

/** Drop undefined members so optional fields stay absent (exactOptionalPropertyTypes). */
export function defined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
