// The session's writer: response lines (gathered into one socket write per command or event-loop turn)
// and streamed message bodies to the current socket (plain, or TLS after STARTTLS), waiting for 'drain' whenever the socket's buffer is full so a slow reader never
// makes the server hold a mailbox worth of bytes. Counts what it sends.
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { Duplex } from 'node:stream';

/** The output framing is broken (a literal announced but not completed): only closing is safe. */
export class FramingError extends Error {}

/** Response text is gathered up to this size (or the end of the event-loop turn) into one socket write. */
const GATHER_BYTES = 16 * 1024;

export class Output {
  private closed = false;
  /** Gathered text and small buffers, written as one buffer (one syscall) per flush. */
  private pending: Array<string | Buffer> = [];
  private pendingSize = 0;
  private scheduled = false;

  constructor(private socket: Duplex) {
    socket.once('close', () => {
      this.closed = true;
    });
  }

  switchTo(socket: Duplex): void {
    this.flush();
    this.socket = socket;
    socket.once('close', () => {
      this.closed = true;
    });
  }

  get isClosed(): boolean {
    return this.closed || this.socket.destroyed;
  }

  /**
   * Write text (a response line must end with CRLF) or bytes; returns false when the caller should
   * drain. Text and small buffers are gathered; a buffer of GATHER_BYTES or more goes out at once.
   */
  write(chunk: string | Buffer): boolean {
    if (this.isClosed) return false;
    if (typeof chunk !== 'string' && chunk.length >= GATHER_BYTES) {
      this.flush();
      return this.socket.write(chunk);
    }
    this.pending.push(chunk);
    this.pendingSize += chunk.length;
    if (this.pendingSize >= GATHER_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return !this.socket.writableNeedDrain;
  }

  /** Hand gathered output to the socket now. */
  flush(): void {
    this.scheduled = false;
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    this.pendingSize = 0;
    if (this.isClosed) return;
    if (pending.length === 1) {
      this.socket.write(pending[0] as string | Buffer);
      return;
    }
    if (pending.every((p) => typeof p === 'string')) {
      this.socket.write((pending as string[]).join(''));
      return;
    }
    this.socket.write(Buffer.concat(pending.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
  }

  line(text: string): boolean {
    return this.write(text + '\r\n');
  }

  async drain(): Promise<void> {
    this.flush();
    if (this.isClosed || !this.socket.writableNeedDrain) return;
    await Promise.race([once(this.socket, 'drain'), once(this.socket, 'close')]);
  }

  /**
   * Copy exactly `size` bytes of a stream (the body of a literal already announced). The stream is read
   * to its end rather than left early (sections end exactly at their size): leaving a Readable's
   * iterator early builds an AbortError with a stack trace, a measurable cost per FETCH.
   */
  async pipe(stream: Readable, size: number): Promise<void> {
    let sent = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (this.isClosed) throw new FramingError('Connection closed while sending a message');
        if (sent >= size) continue;
        const part = sent + chunk.length > size ? chunk.subarray(0, size - sent) : chunk;
        sent += part.length;
        if (!this.write(part)) await this.drain();
      }
    } catch (err) {
      throw err instanceof FramingError ? err : new FramingError(`Reading the message failed mid-literal: ${(err as Error).message}`);
    } finally {
      stream.destroy();
    }
    if (sent !== size) throw new FramingError(`Message section ended after ${sent} of ${size} announced bytes`);
  }
}
