// The capture service: how anything that is not the SMTP endpoint (POP3 proxy, relay proxy,
// importers) hands a message to the archiving half. It streams the bytes into the durable intake,
// commits (fsync'd), queues the entry for archiving and only then resolves: a caller may delete a
// source message or acknowledge a client once submit() has returned.
import type { Readable } from 'node:stream';
import type { Intake, IntakeMeta, IntakeRecord } from './intake.ts';
import { PosternError } from '../errors.ts';

export interface CaptureOptions {
  /** Refuse (and discard) messages larger than this many bytes. */
  maxBytes?: number;
  /** Called once every byte is spooled, before the commit; throwing discards the message. */
  beforeCommit?(complete: { sha256: string; size: number }): Promise<void>;
}

export interface CaptureService {
  /** Spool one message durably and queue it for archiving; resolves after the intake commit. */
  submit(bytes: Buffer | Readable | AsyncIterable<Buffer>, meta: IntakeMeta, options?: CaptureOptions): Promise<IntakeRecord>;
  /** Entries waiting to be archived (active + deferred): importers throttle on this. */
  depth(): number;
}

export function createCaptureService(intake: Intake, enqueue: (record: IntakeRecord, inline: Buffer | null) => void): CaptureService {
  return {
    async submit(bytes, meta, options = {}) {
      const writer = intake.writer();
      try {
        const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(bytes) ? [bytes] : bytes;
        for await (const chunk of chunks) {
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
          if (options.maxBytes !== undefined && writer.bytes + buf.length > options.maxBytes) {
            throw new PosternError('TOO_LARGE', `Message exceeds ${options.maxBytes} bytes`);
          }
          await writer.write(buf);
        }
        await options.beforeCommit?.({ sha256: writer.sha256(), size: writer.bytes });
        const { record, inline } = await writer.commit(meta);
        enqueue(record, inline);
        return record;
      } catch (err) {
        await writer.abort();
        throw err;
      }
    },
    depth() {
      const c = intake.counts();
      return c.active + c.deferred;
    },
  };
}
