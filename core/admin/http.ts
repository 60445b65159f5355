// Small HTTP helpers shared by the admin server and the routes plugins register on it: typed HTTP
// errors, bounded JSON bodies validated with a schema, JSON replies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';

export const MAX_BODY = 64 * 1024;

/** An error that becomes an HTTP status and `{ "error": message }`. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The request body as JSON, at most `limit` bytes (413 beyond, 400 when it is not JSON). */
export async function readJson(req: IncomingMessage, limit = MAX_BODY): Promise<unknown> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `Request body exceeds ${limit} bytes`);
    parts.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'Request body is not valid JSON');
  }
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Parse an outside value with a schema; problems become one 400 naming each path. */
export function validated<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new HttpError(400, r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

/** Drop undefined members so optional fields stay absent (exactOptionalPropertyTypes). */
export function defined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
