// Pull-style reading from one socket for the POP3 proxy: whole lines (bounded length, bounded wait)
// or raw chunks (multi-line bodies). Trusts nothing the peer sends; buffers at most `highWater` bytes
// before pausing the socket, so a fast or hostile peer cannot make the proxy hold more than that.
// Hands on Buffers; detach() gives back what was read ahead (nothing may be, before a TLS upgrade).
import type { Duplex } from 'node:stream';

export type ReadFailure = 'timeout' | 'closed' | 'too-long';

/** Why a read did not produce data. A value the session maps to a reply, not a bug. */
export class ReadError extends Error {
  constructor(readonly reason: ReadFailure, message: string) {
    super(message);
    this.name = 'ReadError';
  }
}

export class SocketReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private attached = true;

  constructor(private readonly socket: Duplex, private readonly highWater: number) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Bytes read from the peer and not yet consumed. */
  get buffered(): number {
    return this.size;
  }

  get closed(): boolean {
    return this.ended || this.failure !== null;
  }

  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size >= this.highWater) this.socket.pause();
    this.notify();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  private readonly onError = (err: Error): void => {
    this.failure ??= err;
    this.notify();
  };

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Resolves when bytes arrive or the socket ends or fails; fails on the deadline or a closed socket. */
  private waitForMore(deadline: number): Promise<void> {
    if (this.failure) return Promise.reject(new ReadError('closed', `Connection failed: ${this.failure.message}`));
    if (this.ended) return Promise.reject(new ReadError('closed', 'Connection closed by the peer'));
    const left = deadline - Date.now();
    if (left <= 0) return Promise.reject(new ReadError('timeout', 'No data before the timeout'));
    this.socket.resume();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = null;
        reject(new ReadError('timeout', 'No data before the timeout'));
      }, left);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.size);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    if (this.size < this.highWater && this.attached) this.socket.resume();
    return out;
  }

  /**
   * One line without its CRLF (a bare LF also ends a line). The whole line must arrive within
   * `timeoutMs`; a line longer than `maxLength` bytes fails with "too-long".
   */
  async readLine(maxLength: number, timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    let scanned = 0;
    for (;;) {
      if (this.size > 0) {
        if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
        const buf = this.chunks[0] as Buffer;
        const nl = buf.indexOf(10, scanned);
        if (nl !== -1) {
          if (nl > maxLength + 1) throw new ReadError('too-long', `Line longer than ${maxLength} bytes`);
          const line = this.take(nl + 1);
          const end = nl > 0 && line[nl - 1] === 13 ? nl - 1 : nl;
          return line.subarray(0, end);
        }
        scanned = buf.length;
        if (buf.length > maxLength + 1) throw new ReadError('too-long', `Line longer than ${maxLength} bytes`);
      }
      await this.waitForMore(deadline);
    }
  }

  /** Everything buffered, or the next chunk from the peer; fails when nothing arrives in `timeoutMs`. */
  async readChunk(timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.size === 0) await this.waitForMore(deadline);
    return this.take(this.size);
  }

  /** Puts bytes back in front (what followed a multi-line terminator). */
  unshift(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.chunks.unshift(bytes);
    this.size += bytes.length;
  }

  /** Stops reading from the socket (before a TLS upgrade or on close); returns the unread bytes. */
  detach(): Buffer {
    this.attached = false;
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.pause();
    const rest = this.size > 0 ? Buffer.concat(this.chunks, this.size) : Buffer.alloc(0);
    this.chunks = [];
    this.size = 0;
    this.ended = true;
    this.notify();
    return rest;
  }
}
