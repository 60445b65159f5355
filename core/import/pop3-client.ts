// The POP3 importer's client (RFC 1939, STLS from RFC 2595, UIDL): the importer's commands on top of
// the POP3 proxy's upstream leg (core/pop3/upstream.ts), which connects (plain, STLS or implicit TLS
// with the importer's TLS options, e.g. a pinned certificate), bounds every status line and wait, and
// frames multi-line bodies with the shared DotDecoder. Trusts nothing the server sends: a reply that
// is too long, malformed or late is a Pop3Error. Hands on each message's bytes exactly as the server
// stores them (dot-unstuffed, line endings untouched); an oversized one is read to its end and
// dropped (Pop3TooLarge), so the session stays in step.
import type { ConnectionOptions } from 'node:tls';
import { PosternError } from '../errors.ts';
import { Pop3UpstreamError, Upstream } from '../pop3/upstream.ts';

const MAX_LINE = 8192;
/** Bound on a UIDL listing (about a million messages). */
const MAX_UIDL_BYTES = 64 * 1024 * 1024;

export interface Pop3Options {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls' | 'none';
  tlsOptions: ConnectionOptions;
  /** Bound on connecting, the TLS handshake, each status line and each wait for body bytes. */
  timeoutMs: number;
  /** Largest message body accepted from RETR. */
  maxBytes: number;
}

/** A POP3 failure: refused command, malformed or overlong reply, timeout, closed connection. */
export class Pop3Error extends PosternError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('POP3_UPSTREAM', message, options);
    this.name = 'Pop3Error';
  }
}
/** A message over the size bound; the session is still in step and usable. */
export class Pop3TooLarge extends Pop3Error {}

export class Pop3Client {
  private up: Upstream | null = null;

  constructor(private readonly o: Pop3Options) {}

  async connect(): Promise<void> {
    const { host, port, tls, timeoutMs } = this.o;
    // verify: true is Node's default; the importer's own tlsOptions (pin, self-signed) override it.
    this.up = await this.io(() => Upstream.connect({
      host, port, tls, timeoutMs, ca: null, verify: true, maxLineLength: MAX_LINE, extraTls: this.o.tlsOptions,
    }));
  }

  /** The open session; taken before each exchange so that a concurrent close() fails the read, not the code. */
  private session(): Upstream {
    if (!this.up) throw new Pop3Error('Not connected');
    return this.up;
  }

  /** Runs one read or connect step, turning the upstream leg's failures into Pop3Error. */
  private async io<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (!(err instanceof Pop3UpstreamError)) throw err;
      const { host, timeoutMs } = this.o;
      if (err.kind === 'timeout') throw new Pop3Error(`POP3 server ${host} did not answer within ${timeoutMs} ms`, { cause: err });
      if (err.kind === 'closed') throw new Pop3Error(`POP3 server ${host} closed the connection`, { cause: err });
      throw new Pop3Error(`POP3 server ${host}: ${err.message}`, { cause: err });
    }
  }

  /** Sends one command; the text after "+OK", or a Pop3Error carrying the server's "-ERR" line. */
  async command(cmd: string): Promise<string> {
    const up = this.session();
    if (/[\r\n]/.test(cmd)) throw new PosternError('INVALID_INPUT', 'POP3 command contains a line break');
    // Commands go out as UTF-8 (a non-ASCII user name or password); send() takes a byte string.
    up.send(Buffer.from(cmd, 'utf8').toString('latin1'));
    const reply = await this.io(() => up.readStatus(false));
    if (reply.kind !== '+OK') throw new Pop3Error(`POP3 server refused: ${reply.line.slice(0, 200)}`);
    return reply.line.slice(3).trim();
  }

  async login(user: string, pass: string): Promise<void> {
    await this.command(`USER ${user}`);
    try {
      await this.command(`PASS ${pass}`);
    } catch (err) {
      throw new Pop3Error(`POP3 login as "${user}" failed`, { cause: err });
    }
  }

  async stat(): Promise<{ count: number; size: number }> {
    const text = await this.command('STAT');
    const m = /^(\d{1,15})\s+(\d{1,15})(?:\s|$)/.exec(text);
    if (!m) throw new Pop3Error(`Malformed STAT reply: ${text.slice(0, 100)}`);
    return { count: Number(m[1]), size: Number(m[2]) };
  }

  /** Message number → unique id. */
  async uidl(): Promise<Array<{ n: number; uid: string }>> {
    const up = this.session();
    await this.command('UIDL');
    const listing = (await this.io(() => up.readBody(MAX_UIDL_BYTES))).toString('latin1');
    const out: Array<{ n: number; uid: string }> = [];
    for (const entry of listing.split(/\r?\n/)) {
      const m = /^(\d{1,15})\s+(\S{1,70})$/.exec(entry);
      if (m) out.push({ n: Number(m[1]), uid: m[2] as string });
      else if (entry !== '') throw new Pop3Error(`Malformed UIDL line: ${entry.slice(0, 100)}`);
    }
    return out;
  }

  async retr(n: number): Promise<Buffer> {
    const up = this.session();
    await this.command(`RETR ${n}`);
    const body = await this.io(() => up.readBodyOrSkip(this.o.maxBytes));
    if (!body) throw new Pop3TooLarge(`POP3 message larger than ${this.o.maxBytes} bytes`);
    return body;
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
    this.up?.close();
    this.up = null;
  }
}
