// A small POP3 client (RFC 1939, STLS from RFC 2595, UIDL) for the POP3 importer: one command at a
// time, bounded reply lines and multi-line bodies, a timeout on every reply, dot-unstuffing that
// restores each message's bytes with CRLF line endings as the server sent them. Trusts nothing the
// server sends: a reply that is too long, malformed or late is an error.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { PosternError } from '../errors.ts';

const MAX_LINE = 8192;

export interface Pop3Options {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls' | 'none';
  tlsOptions: ConnectionOptions;
  timeoutMs: number;
  /** Largest message body accepted from RETR. */
  maxBytes: number;
}

export class Pop3Error extends Error {}
/** A message over the size bound; the session is still in step and usable. */
export class Pop3TooLarge extends Pop3Error {}

export class Pop3Client {
  private socket: Socket | TLSSocket | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(private readonly o: Pop3Options) {}

  async connect(): Promise<void> {
    const { host, port } = this.o;
    const sock = this.o.tls === 'implicit'
      ? tlsConnect({ host, port, ...this.o.tlsOptions })
      : netConnect({ host, port });
    this.attach(sock);
    await new Promise<void>((resolve, reject) => {
      sock.once(this.o.tls === 'implicit' ? 'secureConnect' : 'connect', resolve);
      sock.once('error', reject);
    });
    await this.expectOk(await this.line());
    if (this.o.tls === 'starttls') {
      await this.command('STLS');
      const plain = this.socket as Socket;
      plain.removeAllListeners('data');
      plain.setTimeout(0);
      const secure = tlsConnect({ socket: plain, ...this.o.tlsOptions });
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', reject);
      });
      this.buf = Buffer.alloc(0);
      this.attach(secure);
    }
  }

  private attach(sock: Socket | TLSSocket): void {
    this.socket = sock;
    sock.setTimeout(this.o.timeoutMs, () => sock.destroy(new Pop3Error(`POP3 server ${this.o.host} did not answer within ${this.o.timeoutMs} ms`)));
    sock.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.wake();
    });
    sock.on('error', (e) => {
      this.failure ??= e;
      this.wake();
    });
    sock.on('close', () => {
      this.failure ??= new Pop3Error(`POP3 server ${this.o.host} closed the connection`);
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private async more(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve) => (this.waiter = resolve));
    if (this.failure && this.buf.length === 0) throw this.failure;
  }

  /** One reply line without its CRLF. */
  private async line(limit = MAX_LINE): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0) {
        if (nl > limit) throw new Pop3Error('POP3 reply line too long');
        const line = this.buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        this.buf = this.buf.subarray(nl + 1);
        return line;
      }
      if (this.buf.length > limit) throw new Pop3Error('POP3 reply line too long');
      await this.more();
    }
  }

  private async expectOk(line: string): Promise<string> {
    if (line.startsWith('+OK')) return line.slice(3).trim();
    throw new Pop3Error(`POP3 server refused: ${line.slice(0, 200)}`);
  }

  async command(cmd: string): Promise<string> {
    if (!this.socket) throw new Pop3Error('Not connected');
    if (/[\r\n]/.test(cmd)) throw new PosternError('INVALID_INPUT', 'POP3 command contains a line break');
    this.socket.write(cmd + '\r\n');
    return this.expectOk(await this.line());
  }

  /**
   * A multi-line body after +OK, dot-unstuffed; lines keep their CRLF, the final "." is dropped. A body
   * over the limit is read to its end and discarded (the session stays usable), then refused.
   */
  private async multiline(limit: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    let start = 0;
    let over = false;
    let midLine = false;
    for (;;) {
      const nl = this.buf.indexOf(0x0a, start);
      if (nl < 0) {
        const pending = this.buf.length - start;
        if (pending > MAX_LINE * 8) {
          // A very long line: count and drop what we have, so the buffer stays bounded.
          if (!over && !midLine) {
            const head = this.buf.subarray(start, start + 1);
            if (head[0] === 0x2e) start++;
          }
          size += this.buf.length - start;
          over ||= size > limit;
          if (!over) parts.push(Buffer.from(this.buf.subarray(start)));
          midLine = true;
          this.buf = Buffer.alloc(0);
        } else {
          this.buf = this.buf.subarray(start);
        }
        start = 0;
        await this.more();
        continue;
      }
      let line = this.buf.subarray(start, nl + 1);
      start = nl + 1;
      if (!midLine && ((line.length === 3 && line[0] === 0x2e && line[1] === 0x0d) || (line.length === 2 && line[0] === 0x2e))) {
        this.buf = this.buf.subarray(start);
        if (over) throw new Pop3TooLarge(`POP3 message larger than ${limit} bytes`);
        return Buffer.concat(parts, size);
      }
      if (!midLine && line[0] === 0x2e) line = line.subarray(1);
      midLine = false;
      size += line.length;
      if (size > limit) {
        over = true;
        parts.length = 0;
      }
      if (!over) parts.push(Buffer.from(line));
    }
  }

  async login(user: string, pass: string): Promise<void> {
    await this.command(`USER ${user}`);
    try {
      await this.command(`PASS ${pass}`);
    } catch {
      throw new Pop3Error(`POP3 login as "${user}" failed`);
    }
  }

  async stat(): Promise<{ count: number; size: number }> {
    const [c, s] = (await this.command('STAT')).split(/\s+/);
    return { count: Number(c), size: Number(s) };
  }

  /** Message number → unique id. */
  async uidl(): Promise<Array<{ n: number; uid: string }>> {
    await this.command('UIDL');
    const body = (await this.multiline(64 * 1024 * 1024)).toString('latin1');
    const out: Array<{ n: number; uid: string }> = [];
    for (const l of body.split(/\r?\n/)) {
      const m = /^(\d+)\s+(\S{1,70})$/.exec(l);
      if (m) out.push({ n: Number(m[1]), uid: m[2] as string });
      else if (l !== '') throw new Pop3Error(`Malformed UIDL line: ${l.slice(0, 100)}`);
    }
    return out;
  }

  async retr(n: number): Promise<Buffer> {
    await this.command(`RETR ${n}`);
    return this.multiline(this.o.maxBytes);
  }

  async dele(n: number): Promise<void> {
    await this.command(`DELE ${n}`);
  }

  /** QUIT commits deletions (UPDATE state); close() without it leaves the mailbox unchanged. */
  async quit(): Promise<void> {
    try {
      await this.command('QUIT');
    } finally {
      this.close();
    }
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}
