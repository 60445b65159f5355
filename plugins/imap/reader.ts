// Streaming IMAP command reader: assembles one command (its line plus any {n} / {n+} literals, bytes
// kept verbatim so the tokenizer sees `{n}\r\n<bytes>`) from a socket, within bounds on line length,
// literal size and command size. Trusts nothing from the peer: an oversized synchronising literal is
// refused before the client sends it; an oversized non-synchronising literal or line ends the
// connection. A literal that never arrives only waits; the session's idle timeout ends it. Hands
// commands (or raw continuation lines) to the session one at a time, pausing the socket meanwhile.
import type { Duplex } from 'node:stream';

export interface ReaderLimits {
  maxLineBytes: number;
  maxLiteralBytes: number;
  maxCommandBytes: number;
}

export type ReadResult =
  | { kind: 'command'; data: Buffer }
  | { kind: 'line'; data: Buffer }
  /** A command that cannot be read: answer with a tagged (or untagged) reply; fatal ends the connection. */
  | { kind: 'error'; tag: string | null; status: 'BAD' | 'NO'; text: string; fatal: boolean }
  | { kind: 'end' };

const LITERAL = /\{(\d{1,20})(\+)?\}$/;
const TAG = /^[^\x00-\x20\x7f-\xff(){%*"\\+]+/;

export interface ReaderHooks {
  /** Send a continuation request ("+ …") for a synchronising literal. */
  continuation(): void;
  /** Refuse a synchronising literal before it is sent (e.g. APPEND): a reply text, or null to accept. */
  refuseLiteral(line: Buffer): { status: 'NO' | 'BAD'; text: string } | null;
}

export class CommandReader {
  private stream: Duplex | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private size = 0;
  /** Bytes of literal still expected for the command being assembled. */
  private literalLeft = 0;
  private ended = false;
  private waiter: { mode: 'command' | 'line'; resolve: (r: ReadResult) => void } | null = null;
  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.pump();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.pump();
  };

  constructor(private readonly limits: ReaderLimits, private readonly hooks: ReaderHooks) {}

  /** Read from this stream (again after STARTTLS); anything buffered from the previous stream is dropped. */
  attach(stream: Duplex): void {
    this.detach();
    this.buf = Buffer.alloc(0);
    this.parts = [];
    this.size = 0;
    this.literalLeft = 0;
    this.stream = stream;
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.pause();
  }

  detach(): void {
    if (!this.stream) return;
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream = null;
  }

  /** Bytes received but not yet handed out (STARTTLS must see none: RFC 3501 command injection). */
  pending(): number {
    return this.buf.length + this.size;
  }

  next(mode: 'command' | 'line' = 'command'): Promise<ReadResult> {
    return new Promise((resolve) => {
      this.waiter = { mode, resolve };
      this.pump();
    });
  }

  private deliver(r: ReadResult): void {
    const w = this.waiter;
    this.waiter = null;
    this.stream?.pause();
    w?.resolve(r);
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  private resetCommand(): void {
    this.parts = [];
    this.size = 0;
    this.literalLeft = 0;
  }

  private pump(): void {
    while (this.waiter) {
      const r = this.step(this.waiter.mode);
      if (r) {
        this.deliver(r);
        return;
      }
      if (this.ended) return this.deliver({ kind: 'end' });
      this.stream?.resume();
      return;
    }
  }

  /** One step of assembling; null means "need more bytes". */
  private step(mode: 'command' | 'line'): ReadResult | null {
    for (;;) {
      if (this.literalLeft > 0) {
        if (this.buf.length === 0) return null;
        const n = Math.min(this.literalLeft, this.buf.length);
        this.parts.push(this.take(n));
        this.size += n;
        this.literalLeft -= n;
        continue;
      }
      const lf = this.buf.indexOf(10);
      if (lf < 0) {
        // A line of the longest length may have its CR here and its LF still on the way.
        const max = this.limits.maxLineBytes;
        if (this.buf.length > max + 1 || (this.buf.length === max + 1 && this.buf[max] !== 13)) {
          this.resetCommand();
          this.buf = Buffer.alloc(0);
          return { kind: 'error', tag: null, status: 'BAD', text: `Line longer than ${this.limits.maxLineBytes} bytes`, fatal: true };
        }
        return null;
      }
      const line = this.take(lf + 1).subarray(0, lf);
      const text = line.length > 0 && line[line.length - 1] === 13 ? line.subarray(0, line.length - 1) : line;
      if (text.length > this.limits.maxLineBytes) {
        this.resetCommand();
        return { kind: 'error', tag: null, status: 'BAD', text: `Line longer than ${this.limits.maxLineBytes} bytes`, fatal: true };
      }
      if (mode === 'line') return { kind: 'line', data: Buffer.from(text) };
      const tail = text.subarray(Math.max(0, text.length - 24)).toString('latin1');
      const m = LITERAL.exec(tail);
      if (!m) {
        this.parts.push(text);
        const data = Buffer.concat(this.parts);
        this.resetCommand();
        return { kind: 'command', data };
      }
      const n = Number(m[1]);
      const sync = m[2] === undefined;
      const first = (this.parts[0] ?? text).toString('latin1');
      const tag = TAG.exec(first)?.[0] ?? null;
      if (n > this.limits.maxLiteralBytes || this.size + text.length + 2 + n > this.limits.maxCommandBytes) {
        this.resetCommand();
        const why = `Literal of ${n} bytes exceeds the limit of ${Math.min(this.limits.maxLiteralBytes, this.limits.maxCommandBytes)} bytes`;
        if (sync) return { kind: 'error', tag, status: 'NO', text: `[TOOBIG] ${why}`, fatal: false };
        return { kind: 'error', tag, status: 'BAD', text: `[TOOBIG] ${why}`, fatal: true };
      }
      if (sync) {
        const refusal = this.hooks.refuseLiteral(Buffer.concat([...this.parts, text]));
        if (refusal) {
          this.resetCommand();
          return { kind: 'error', tag, status: refusal.status, text: refusal.text, fatal: false };
        }
      }
      this.parts.push(text, Buffer.from('\r\n'));
      this.size += text.length + 2;
      this.literalLeft = n;
      if (sync) this.hooks.continuation();
      if (n === 0) continue;
    }
  }
}
