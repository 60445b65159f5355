// The upstream leg of one POP3 proxy session: connects to the configured server (plain, STLS or
// implicit TLS), reads its greeting (keeping the APOP timestamp), sends command lines and reads
// status lines. Trusts nothing the upstream says: every status line is length-bounded, must start
// with "+OK" or "-ERR" (or "+ " during AUTH), and must arrive within the upstream timeout.
// Failures are Pop3UpstreamError with a kind the session turns into "-ERR" and a metric.
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { PosternError } from '../errors.ts';
import { DotDecoder } from './dot-decoder.ts';
import { ReadError, SocketReader } from './socket-reader.ts';

export type UpstreamFailure = 'connect' | 'timeout' | 'tls' | 'malformed' | 'closed' | 'refused';

export class Pop3UpstreamError extends PosternError {
  constructor(readonly kind: UpstreamFailure, message: string, options?: { cause?: unknown }) {
    super('POP3_UPSTREAM', message, options);
  }
}

export interface UpstreamOptions {
  host: string;
  port: number;
  tls: 'none' | 'starttls' | 'implicit';
  ca: Buffer | null;
  verify: boolean;
  timeoutMs: number;
  maxLineLength: number;
  /** Further tls.connect options applied over `ca`/`verify` (e.g. the importer's pinned certificate). */
  extraTls?: ConnectionOptions;
}

export interface StatusLine {
  /** "+OK", "-ERR", or "+" for a SASL continuation. */
  kind: '+OK' | '-ERR' | '+';
  /** The line as received, without CRLF. */
  line: string;
}


const TIMESTAMP = /<[^<>\s]{1,250}>/;

export class Upstream {
  private constructor(
    private socket: Socket | TLSSocket,
    public reader: SocketReader,
    private readonly opts: UpstreamOptions,
    readonly greeting: string,
  ) {}

  /** The APOP timestamp from the greeting ("<…>"), if the upstream offered one. */
  get timestamp(): string | null {
    return TIMESTAMP.exec(this.greeting)?.[0] ?? null;
  }

  get encrypted(): boolean {
    return 'encrypted' in this.socket && this.socket.encrypted === true;
  }

  static async connect(opts: UpstreamOptions): Promise<Upstream> {
    const socket = await openSocket(opts);
    const reader = new SocketReader(socket, Math.max(256 * 1024, opts.maxLineLength * 2));
    const up = new Upstream(socket, reader, opts, '');
    try {
      const greeting = await up.readStatus(false);
      if (greeting.kind !== '+OK') throw new Pop3UpstreamError('refused', `Upstream refused the connection: "${greeting.line.slice(0, 200)}"`);
      const ready = new Upstream(socket, reader, opts, greeting.line);
      if (opts.tls === 'starttls') await ready.startTls();
      return ready;
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  private async startTls(): Promise<void> {
    this.send('STLS');
    const reply = await this.readStatus(false);
    if (reply.kind !== '+OK') throw new Pop3UpstreamError('tls', `Upstream refused STLS: "${reply.line.slice(0, 200)}"`);
    const leftover = this.reader.detach();
    if (leftover.length > 0) throw new Pop3UpstreamError('malformed', 'Upstream sent data after its STLS reply');
    const plain = this.socket as Socket;
    this.socket = await upgrade(plain, this.opts);
    this.reader = new SocketReader(this.socket, Math.max(256 * 1024, this.opts.maxLineLength * 2));
  }

  /** Writes one command line; the string holds bytes (latin1), as parsed from the client. */
  send(line: string): void {
    this.socket.write(line + '\r\n', 'latin1');
  }

  /** One status line; `sasl` also admits a "+ …" continuation. */
  async readStatus(sasl: boolean): Promise<StatusLine> {
    let bytes: Buffer;
    try {
      bytes = await this.reader.readLine(this.opts.maxLineLength, this.opts.timeoutMs);
    } catch (err) {
      throw readFailure(err);
    }
    const line = bytes.toString('latin1');
    if (/^\+OK(?:[ \t]|$)/i.test(line)) return { kind: '+OK', line };
    if (/^-ERR(?:[ \t]|$)/i.test(line)) return { kind: '-ERR', line };
    if (sasl && /^\+(?: |$)/.test(line)) return { kind: '+', line };
    throw new Pop3UpstreamError('malformed', `Upstream sent a malformed status line: ${JSON.stringify(line.slice(0, 80))}`);
  }

  /** Reads raw body bytes (multi-line responses); fails on the upstream timeout or a closed socket. */
  async readChunk(): Promise<Buffer> {
    try {
      return await this.reader.readChunk(this.opts.timeoutMs);
    } catch (err) {
      throw readFailure(err);
    }
  }

  /** A whole multi-line body, unstuffed (small replies such as CAPA only); bounded by `maxBytes`. */
  async readBody(maxBytes: number): Promise<Buffer> {
    const body = await this.collectBody(maxBytes, false);
    if (!body) throw new Pop3UpstreamError('malformed', `Upstream multi-line reply exceeds ${maxBytes} bytes`);
    return body;
  }

  /**
   * A whole multi-line body, unstuffed, or null when it is over `maxBytes`: then it is read to its
   * terminator and dropped (never held), so the session stays in step for the next command.
   */
  readBodyOrSkip(maxBytes: number): Promise<Buffer | null> {
    return this.collectBody(maxBytes, true);
  }

  private async collectBody(maxBytes: number, drain: boolean): Promise<Buffer | null> {
    const decoder = new DotDecoder();
    const parts: Buffer[] = [];
    while (!decoder.done) {
      const part = decoder.feed(await this.readChunk());
      if (part.done) this.reader.unshift(part.rest);
      if (decoder.dataBytes <= maxBytes) parts.push(...part.data);
      else if (drain) parts.length = 0;
      else return null;
    }
    return decoder.dataBytes <= maxBytes ? Buffer.concat(parts, decoder.dataBytes) : null;
  }

  /** Drops the connection without QUIT: the upstream then never enters its UPDATE state (no deletions). */
  close(): void {
    this.reader.detach();
    this.socket.destroy();
  }
}

function readFailure(err: unknown): Pop3UpstreamError {
  if (err instanceof ReadError) {
    if (err.reason === 'timeout') return new Pop3UpstreamError('timeout', 'Upstream did not answer in time');
    if (err.reason === 'too-long') return new Pop3UpstreamError('malformed', 'Upstream sent an overlong status line');
    return new Pop3UpstreamError('closed', 'Upstream closed the connection');
  }
  if (err instanceof Pop3UpstreamError) return err;
  return new Pop3UpstreamError('closed', `Upstream connection failed: ${String(err)}`, { cause: err });
}

function tlsOptions(opts: UpstreamOptions): ConnectionOptions {
  return {
    ...(isIP(opts.host) === 0 ? { servername: opts.host } : {}),
    ...(opts.ca ? { ca: opts.ca } : {}),
    rejectUnauthorized: opts.verify,
    ...opts.extraTls,
  };
}

function openSocket(opts: UpstreamOptions): Promise<Socket | TLSSocket> {
  return new Promise((resolve, reject) => {
    const implicit = opts.tls === 'implicit';
    const socket: Socket | TLSSocket = implicit
      ? tlsConnect({ host: opts.host, port: opts.port, ...tlsOptions(opts) })
      : netConnect({ host: opts.host, port: opts.port });
    socket.setNoDelay(true);
    // Later errors surface through the reader (as a closed connection); never as an uncaught event.
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Pop3UpstreamError('timeout', `Upstream ${opts.host}:${opts.port} did not accept the connection in time`));
    }, opts.timeoutMs);
    socket.once(implicit ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      const tlsFailure = implicit && !/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ECONNRESET/.test(err.code ?? '');
      reject(new Pop3UpstreamError(tlsFailure ? 'tls' : 'connect', `Upstream ${opts.host}:${opts.port} is unreachable: ${err.code ?? err.message}`, { cause: err }));
    });
  });
}

function upgrade(plain: Socket, opts: UpstreamOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ socket: plain, ...tlsOptions(opts) });
    secure.on('error', () => undefined);
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new Pop3UpstreamError('timeout', 'Upstream TLS handshake timed out'));
    }, opts.timeoutMs);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(secure);
    });
    secure.once('error', (err) => {
      clearTimeout(timer);
      secure.destroy();
      reject(new Pop3UpstreamError('tls', `Upstream TLS handshake failed: ${err.message}`, { cause: err }));
    });
  });
}
