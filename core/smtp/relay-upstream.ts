// A small SMTP client for the relay proxy's upstream leg, over node:net / node:tls. It reads replies
// with bounded lines (length and count per reply) and a timeout per reply, upgrades with STARTTLS
// (refusing bytes pipelined after the 220: response injection), and dot-stuffs message data while
// streaming it with backpressure. It trusts nothing the upstream sends: a malformed reply line, an
// over-long line, a reply that never comes or a closed socket become an UPSTREAM_FAILED error, and
// the connection is unusable afterwards. Credentials it is given are sent, never logged or kept.
import { once } from 'node:events';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { PosternError } from '../errors.ts';

export interface UpstreamReply {
  code: number;
  /** The text of each reply line, without the code and separator. */
  lines: string[];
}

export interface UpstreamTlsOptions {
  rejectUnauthorized: boolean;
  ca?: Buffer;
  servername?: string;
}

export interface UpstreamEndpoint {
  host: string;
  port: number;
  /** implicit = TLS from the first byte; starttls is handled by the caller (see starttls()). */
  implicitTls: boolean;
  tls: UpstreamTlsOptions;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  dataTimeoutMs: number;
  maxLineBytes?: number;
  maxReplyLines?: number;
}

const LF = 0x0a;
const DOT = 0x2e;
const REPLY_LINE = /^([2-5]\d\d)(?:([ -])(.*))?$/s;

export function replyText(reply: UpstreamReply): string {
  return reply.lines.map((l) => l.trim()).filter((l) => l !== '').join(' ');
}

function failure(message: string, cause?: unknown): PosternError {
  return new PosternError('UPSTREAM_FAILED', message, cause === undefined ? undefined : { cause });
}

/** Re-applies SMTP dot-stuffing to unstuffed message bytes, across chunk boundaries. */
export class DotStuffer {
  private atLineStart = true;
  private empty = true;

  stuff(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    this.empty = false;
    const parts: Buffer[] = [];
    let start = 0;
    let pos = this.atLineStart ? 0 : chunk.indexOf(LF) + 1 || -1;
    while (pos >= 0 && pos < chunk.length) {
      if (chunk[pos] === DOT) {
        parts.push(chunk.subarray(start, pos), Buffer.from('.'));
        start = pos;
      }
      const lf = chunk.indexOf(LF, pos);
      if (lf < 0) break;
      pos = lf + 1;
    }
    this.atLineStart = chunk[chunk.length - 1] === LF;
    if (parts.length === 0) return chunk;
    parts.push(chunk.subarray(start));
    return Buffer.concat(parts);
  }

  /** The end-of-data marker, with a CRLF first when the data did not end with one. */
  terminator(): Buffer {
    return Buffer.from(this.empty || this.atLineStart ? '.\r\n' : '\r\n.\r\n');
  }
}

/** Verification settings; the name checked is the configured servername, else the host (an IP is checked as such). */
function tlsOptions(endpoint: UpstreamEndpoint): ConnectionOptions {
  const name = endpoint.tls.servername ?? endpoint.host;
  return {
    rejectUnauthorized: endpoint.tls.rejectUnauthorized,
    ...(endpoint.tls.ca ? { ca: endpoint.tls.ca } : {}),
    // SNI must not carry an IP address (RFC 6066); Node still verifies the certificate against the host.
    ...(isIP(name) === 0 ? { servername: name } : {}),
  };
}

export class UpstreamConnection {
  private socket: Socket | TLSSocket;
  private buffer: Buffer = Buffer.alloc(0);
  private lines: string[] = [];
  private readonly replies: UpstreamReply[] = [];
  private waiter: (() => void) | null = null;
  private failed: PosternError | null = null;
  secure: boolean;

  private constructor(socket: Socket | TLSSocket, private readonly endpoint: UpstreamEndpoint, secure: boolean) {
    this.socket = socket;
    this.secure = secure;
    this.attach(socket);
  }

  /** Connects (TLS first when implicit) within the connect timeout. The greeting is read with read(). */
  static async connect(endpoint: UpstreamEndpoint): Promise<UpstreamConnection> {
    const socket = endpoint.implicitTls
      ? tlsConnect({ host: endpoint.host, port: endpoint.port, ...tlsOptions(endpoint) })
      : netConnect({ host: endpoint.host, port: endpoint.port });
    socket.setNoDelay(true);
    const ready = endpoint.implicitTls ? 'secureConnect' : 'connect';
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(failure(`Connecting to upstream "${endpoint.host}:${endpoint.port}" timed out`)), endpoint.connectTimeoutMs);
        socket.once(ready, () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('error', (err) => {
          clearTimeout(timer);
          reject(failure(`Connecting to upstream "${endpoint.host}:${endpoint.port}" failed: ${err.message}`, err));
        });
      });
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return new UpstreamConnection(socket, endpoint, endpoint.implicitTls);
  }

  get usable(): boolean {
    return this.failed === null && !this.socket.destroyed;
  }

  private attach(socket: Socket | TLSSocket): void {
    // A backstop only: every read has its own, shorter timer.
    socket.setTimeout(Math.max(this.endpoint.commandTimeoutMs, this.endpoint.dataTimeoutMs) + 1000, () => this.fail(failure('Upstream connection idle for too long')));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(failure(`Upstream connection failed: ${err.message}`, err)));
    socket.on('close', () => this.fail(failure('Upstream closed the connection')));
  }

  private onData(chunk: Buffer): void {
    if (this.failed) return;
    const max = this.endpoint.maxLineBytes ?? 4096;
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    let lf: number;
    while ((lf = this.buffer.indexOf(LF)) >= 0) {
      if (lf > max) return this.fail(failure(`Upstream sent a reply line longer than ${max} bytes`));
      const end = lf > 0 && this.buffer[lf - 1] === 0x0d ? lf - 1 : lf;
      const line = this.buffer.subarray(0, end).toString('utf8');
      this.buffer = this.buffer.subarray(lf + 1);
      if (!this.onLine(line)) return;
    }
    if (this.buffer.length > max) this.fail(failure(`Upstream sent a reply line longer than ${max} bytes`));
  }

  /** One reply line; false when the connection failed on it. */
  private onLine(line: string): boolean {
    const m = REPLY_LINE.exec(line);
    if (!m) {
      this.fail(failure(`Upstream sent a malformed reply line: ${JSON.stringify(line.slice(0, 80))}`));
      return false;
    }
    const first = this.lines.length === 0 ? null : Number(this.lines[0]?.slice(0, 3));
    if (first !== null && first !== Number(m[1])) {
      this.fail(failure(`Upstream changed the reply code inside a multi-line reply (${first} then ${m[1]})`));
      return false;
    }
    this.lines.push(line);
    if (this.lines.length > (this.endpoint.maxReplyLines ?? 200)) {
      this.fail(failure(`Upstream sent a reply of more than ${this.endpoint.maxReplyLines ?? 200} lines`));
      return false;
    }
    if (m[2] === '-') return true;
    this.replies.push({ code: Number(m[1]), lines: this.lines.map((l) => l.slice(4)) });
    this.lines = [];
    if (this.replies.length > 16) {
      this.replies.length = 0;
      this.fail(failure('Upstream sent replies nobody asked for'));
      return false;
    }
    this.waiter?.();
    return true;
  }

  private fail(err: PosternError): void {
    if (this.failed) return;
    this.failed = err;
    this.socket.destroy();
    this.waiter?.();
  }

  /** The next complete reply, or UPSTREAM_FAILED after timeoutMs (default: the command timeout). */
  async read(timeoutMs = this.endpoint.commandTimeoutMs): Promise<UpstreamReply> {
    const queued = this.replies.shift();
    if (queued) return queued;
    if (this.failed) throw this.failed;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.fail(failure(`Upstream did not reply within ${Math.round(timeoutMs / 100) / 10} s`));
      }, timeoutMs);
      this.waiter = () => {
        clearTimeout(timer);
        this.waiter = null;
        resolve();
      };
    });
    const reply = this.replies.shift();
    if (reply) return reply;
    throw this.failed ?? failure('Upstream reply missing');
  }

  write(data: string | Buffer): void {
    if (this.failed) throw this.failed;
    this.socket.write(data);
  }

  async command(line: string, timeoutMs?: number): Promise<UpstreamReply> {
    if (/[\r\n]/.test(line)) throw new PosternError('INVALID_INPUT', 'An SMTP command must not contain CR or LF');
    this.write(line + '\r\n');
    return this.read(timeoutMs);
  }

  /** STARTTLS on this connection; any byte the server sent after its 220 is an injection and fails. */
  async starttls(): Promise<UpstreamReply> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) return reply;
    if (this.buffer.length > 0 || this.replies.length > 0) {
      this.fail(failure('Upstream sent data after its STARTTLS reply (possible response injection)'));
      throw this.failed as PosternError;
    }
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    plain.setTimeout(0);
    const secure = tlsConnect({ socket: plain, ...tlsOptions(this.endpoint) });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(failure('Upstream TLS handshake timed out')), this.endpoint.connectTimeoutMs);
        secure.once('secureConnect', () => {
          clearTimeout(timer);
          resolve();
        });
        secure.once('error', (err) => {
          clearTimeout(timer);
          reject(failure(`Upstream TLS handshake failed: ${err.message}`, err));
        });
      });
    } catch (err) {
      secure.destroy();
      this.fail(err as PosternError);
      throw err;
    }
    this.socket = secure;
    this.secure = true;
    this.attach(secure);
    return reply;
  }

  /**
   * Streams unstuffed message bytes (dot-stuffed here) and the end marker, then reads the final reply
   * within the data timeout. `sent` is called once the end marker has been handed to the socket.
   */
  async sendData(source: Iterable<Buffer> | AsyncIterable<Buffer>, sent: () => void): Promise<UpstreamReply> {
    const stuffer = new DotStuffer();
    // Each chunk is written when the next arrives, so the last one and the end marker leave in one
    // write (cork) — a small message costs one system call.
    let pending: Buffer | null = null;
    for await (const chunk of source) {
      if (this.failed) throw this.failed;
      if (pending && !this.socket.write(pending)) await this.drained();
      pending = stuffer.stuff(chunk);
    }
    if (this.failed) throw this.failed;
    this.socket.cork();
    if (pending) this.socket.write(pending);
    this.socket.write(stuffer.terminator());
    this.socket.uncork();
    sent();
    return this.read(this.endpoint.dataTimeoutMs);
  }

  private async drained(): Promise<void> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.endpoint.dataTimeoutMs);
    try {
      await Promise.race([once(this.socket, 'drain', { signal: ac.signal }), once(this.socket, 'close', { signal: ac.signal })]);
    } catch {
      this.fail(failure('Upstream stopped reading message data'));
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
    if (this.failed) throw this.failed;
  }

  /** QUIT politely (briefly), then close. Never throws. */
  async quit(): Promise<void> {
    if (this.usable) {
      try {
        this.write('QUIT\r\n');
        await Promise.race([this.read(), new Promise((r) => setTimeout(r, 1000).unref())]);
      } catch {
        // closing anyway
      }
    }
    this.close();
  }

  close(): void {
    this.fail(failure('Upstream connection closed by Postern'));
  }
}
