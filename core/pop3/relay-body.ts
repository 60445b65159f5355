// Relays one multi-line POP3 response body from the upstream: the dot-stuffed bytes go to the client
// as they arrive, and (for RETR) the dot-unstuffed bytes go into capture.submit: held in memory up to
// 256 KiB (the intake's own inline size) and submitted whole, or beyond that streamed into the intake
// with backpressure (the upstream is read only as fast as the client and the intake drain). The
// terminating "." is NOT sent here: the caller sends it only after the capture is durable, and the
// body's last bytes are left corked so that "." leaves with them (uncorkAll). A body whose
// bytes the owner already has durably (same SHA-256) is not committed again. Bounded by the size
// limit, the upstream timeout per read and the client write timeout.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, type Writable } from 'node:stream';
import type { CaptureService } from '../intake/capture.ts';
import type { IntakeMeta, IntakeRecord } from '../intake/intake.ts';
import { DotDecoder } from './dot-decoder.ts';
import type { Upstream } from './upstream.ts';

/** Why a relay stopped before the body was complete and durable (not a bug: the session closes). */
export class RelayStopped extends Error {
  constructor(readonly reason: 'capture' | 'client' | 'too-large', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RelayStopped';
  }
}

export interface RelayTarget {
  upstream: Upstream;
  /** Where the stuffed bytes go; null for a retrieval the client does not see (DELE guard). */
  client: Writable | null;
  clientWriteTimeoutMs: number;
  /** Unstuffed bytes beyond this fail the relay (and the capture). */
  maxBytes: number;
  /** Capture the unstuffed body under this meta (RETR); null relays only. */
  capture: {
    service: CaptureService;
    meta: IntakeMeta;
    /** True when these exact bytes are already durably captured for this owner: no second commit. */
    alreadyCaptured?: (sha256: string) => boolean;
  } | null;
}

export interface RelayResult {
  /** Unstuffed bytes of the body. */
  bytes: number;
  /** The committed intake record when captured (null: not captured, or already durable before). */
  record: IntakeRecord | null;
  /** SHA-256 (hex) of the unstuffed bytes, when captured. */
  sha256: string | null;
}

class AlreadyCaptured extends Error {}

const CAPTURE_HIGH_WATER = 256 * 1024;
/** A body up to this size is held in memory and submitted whole (as the intake would hold it anyway). */
const HOLD_LIMIT = 256 * 1024;

interface Streaming {
  body: PassThrough;
  submitted: Promise<IntakeRecord>;
  error: { value: unknown } | null;
}

function startStreaming(c: NonNullable<RelayTarget['capture']>, maxBytes: number, parts: Buffer[]): Streaming {
  const body = new PassThrough({ highWaterMark: CAPTURE_HIGH_WATER });
  const s: Streaming = { body, submitted: c.service.submit(body, c.meta, { maxBytes }), error: null };
  s.submitted.catch((err: unknown) => {
    s.error = { value: err };
  });
  for (const p of parts) body.write(p);
  return s;
}

function captureFailed(err: unknown): RelayStopped {
  return new RelayStopped('capture', `Capture failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

export async function relayBody(t: RelayTarget): Promise<RelayResult> {
  const decoder = new DotDecoder();
  const capture = t.capture;
  // Small bodies are held and submitted whole at the end; a larger one switches to a streaming
  // submit (the held part first), so memory stays bounded by HOLD_LIMIT plus the stream buffers.
  let held: Buffer[] = [];
  let heldBytes = 0;
  let streaming: Streaming | null = null;
  const hash = capture ? createHash('sha256') : null;
  try {
    while (!decoder.done) {
      const chunk = await t.upstream.readChunk();
      const part = decoder.feed(chunk);
      if (decoder.dataBytes > t.maxBytes) throw new RelayStopped('too-large', `Response body exceeds ${t.maxBytes} bytes`);
      if (t.client) {
        if (part.done) {
          // The last bytes stay corked: the caller's "." joins them in one write (endCorked).
          t.client.cork();
          for (const raw of part.raw) t.client.write(raw);
        } else {
          for (const raw of part.raw) {
            if (!t.client.write(raw)) await clientDrain(t.client, t.clientWriteTimeoutMs);
          }
        }
      }
      if (capture && hash) {
        for (const d of part.data) {
          hash.update(d);
          if (streaming) {
            if (!streaming.body.write(d)) await captureDrain(streaming.body, streaming.submitted);
            if (streaming.error) throw captureFailed(streaming.error.value);
          } else {
            held.push(d);
            heldBytes += d.length;
            if (heldBytes > HOLD_LIMIT) {
              streaming = startStreaming(capture, t.maxBytes, held);
              held = [];
            }
          }
        }
      }
      if (part.done) t.upstream.reader.unshift(part.rest);
    }
    if (!capture || !hash) return { bytes: decoder.dataBytes, record: null, sha256: null };
    const sha256 = hash.digest('hex');
    if (capture.alreadyCaptured?.(sha256)) {
      // Durable since an earlier retrieval: drop this copy instead of committing it again.
      if (streaming) {
        streaming.body.destroy(new AlreadyCaptured());
        await streaming.submitted.catch(() => undefined);
      }
      return { bytes: decoder.dataBytes, record: null, sha256 };
    }
    let record: IntakeRecord;
    try {
      if (streaming) {
        streaming.body.end();
        record = await streaming.submitted;
      } else {
        record = await capture.service.submit(Buffer.concat(held, heldBytes), capture.meta, { maxBytes: t.maxBytes });
      }
    } catch (err) {
      throw captureFailed(err);
    }
    return { bytes: decoder.dataBytes, record, sha256 };
  } catch (err) {
    if (streaming) {
      if (!streaming.body.destroyed) streaming.body.destroy(err instanceof Error ? err : new Error(String(err)));
      await streaming.submitted.catch(() => undefined);
    }
    throw err;
  }
}

/** Releases every cork on the client: what a relay left corked (and anything written since) goes out. */
export function uncorkAll(client: Writable): void {
  while (client.writableCorked > 0) client.uncork();
}

async function clientDrain(client: Writable, timeoutMs: number): Promise<void> {
  if (client.destroyed || client.writableEnded) throw new RelayStopped('client', 'Client disconnected during the response');
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    await Promise.race([
      once(client, 'drain', { signal: ac.signal }),
      once(client, 'close', { signal: ac.signal }).then(() => {
        throw new RelayStopped('client', 'Client disconnected during the response');
      }),
    ]);
  } catch (err) {
    if (err instanceof RelayStopped) throw err;
    throw new RelayStopped('client', 'Client stopped reading the response', { cause: err });
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

async function captureDrain(body: PassThrough, submitted: Promise<IntakeRecord>): Promise<void> {
  const ac = new AbortController();
  try {
    await Promise.race([once(body, 'drain', { signal: ac.signal }), submitted.then(() => undefined, () => undefined)]);
  } catch {
    // aborted below, or the stream was destroyed: the caller checks the capture outcome
  } finally {
    ac.abort();
  }
}
