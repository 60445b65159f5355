// One client session's upstream leg for the relay proxy: opens the upstream connection (implicit
// TLS, or plain + EHLO + STARTTLS + EHLO again when required), passes AUTH through, and carries
// MAIL FROM / RCPT TO / DATA across, reconnecting (and re-authenticating with the credentials held
// in memory for this session only) when the upstream dropped an idle connection between
// transactions. Sessions come from and go back to the idle pool (relay-pool.ts) when that is safe.
// Upstream replies come back as values; transport failures as UPSTREAM_FAILED errors.
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { PosternError } from '../errors.ts';
import { UpstreamConnection, type UpstreamEndpoint, type UpstreamReply } from './relay-upstream.ts';
import type { UpstreamPool } from './relay-pool.ts';
import { NO_CAPABILITIES, mailParams, parseEhlo, rcptParams, upstreamAuthMechanism, type UpstreamCapabilities } from './relay-capabilities.ts';

export interface RelayUpstreamConfig extends UpstreamEndpoint {
  /** STARTTLS before anything else (refusing an upstream that does not offer it). */
  starttls: boolean;
  /** The name Postern gives in its EHLO to the upstream. */
  ehloName: string;
}

type Args = Record<string, string | boolean> | false | undefined;

interface Credentials {
  user: string;
  password: string;
  authzid: string;
}

export class RelaySession {
  private conn: UpstreamConnection | null = null;
  private credentials: Credentials | null = null;
  /** MAIL FROM was accepted upstream and the transaction has not ended there yet. */
  private inTransaction = false;
  /** The upstream operation in flight; close() waits for it so nothing is written into its middle. */
  private busy: Promise<unknown> = Promise.resolve();
  capabilities: UpstreamCapabilities = NO_CAPABILITIES;

  constructor(
    private readonly config: RelayUpstreamConfig,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly pool: UpstreamPool | null = null,
  ) {}

  private async timed<T>(phase: 'connect' | 'command' | 'data', fn: () => Promise<T>): Promise<T> {
    const started = process.hrtime.bigint();
    try {
      return await fn();
    } finally {
      this.metrics.relayUpstreamDuration.observe({ phase }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /** An idle pooled session, or connect, read the greeting, EHLO (HELO as fallback), STARTTLS when configured. */
  open(): Promise<void> {
    return this.track(this.doOpen());
  }

  private async doOpen(): Promise<void> {
    this.conn?.close();
    this.conn = null;
    this.inTransaction = false;
    const pooled = this.pool?.take();
    if (pooled) {
      this.conn = pooled.conn;
      this.capabilities = pooled.capabilities;
      this.log.debug('Upstream session reused from the pool');
      return;
    }
    const conn = await this.timed('connect', async () => {
      const c = await UpstreamConnection.connect(this.config);
      try {
        const greeting = await c.read(this.config.connectTimeoutMs);
        if (greeting.code !== 220) throw new PosternError('UPSTREAM_FAILED', `Upstream greeted with ${greeting.code} ${greeting.lines.join(' ')}`);
        await this.hello(c);
        if (this.config.starttls && !c.secure) {
          if (!this.capabilities.starttls) throw new PosternError('UPSTREAM_FAILED', 'Upstream does not offer STARTTLS, which the configuration requires');
          const r = await c.starttls();
          if (r.code !== 220) throw new PosternError('UPSTREAM_FAILED', `Upstream refused STARTTLS: ${r.code} ${r.lines.join(' ')}`);
          await this.hello(c);
        }
        return c;
      } catch (err) {
        c.close();
        throw err;
      }
    });
    this.conn = conn;
    this.log.debug('Upstream session open', { secure: conn.secure, esmtp: this.capabilities.esmtp, authMechanisms: this.capabilities.auth });
  }

  private async hello(c: UpstreamConnection): Promise<void> {
    const ehlo = await c.command(`EHLO ${this.config.ehloName}`);
    if (ehlo.code === 250) {
      this.capabilities = parseEhlo(ehlo.lines);
      return;
    }
    const helo = await c.command(`HELO ${this.config.ehloName}`);
    if (helo.code !== 250) throw new PosternError('UPSTREAM_FAILED', `Upstream refused EHLO and HELO: ${helo.code} ${helo.lines.join(' ')}`);
    this.capabilities = { ...NO_CAPABILITIES };
  }

  /** The open connection, reopened (and re-authenticated) when the upstream dropped it. */
  private async ensure(): Promise<UpstreamConnection> {
    if (this.conn?.usable) return this.conn;
    this.log.info('Upstream connection was closed; reconnecting');
    await this.doOpen();
    if (this.credentials) {
      const r = await this.authenticate(this.credentials);
      if (r.code !== 235) throw new PosternError('UPSTREAM_FAILED', `Upstream refused the session's credentials after a reconnect: ${r.code}`);
    }
    return this.conn as UpstreamConnection;
  }

  get authAvailable(): boolean {
    return upstreamAuthMechanism(this.capabilities) !== null;
  }

  /** AUTH with the client's credentials; the upstream's reply decides. Kept in memory for reconnects only. */
  private track<T>(p: Promise<T>): Promise<T> {
    this.busy = p.catch(() => undefined);
    return p;
  }

  auth(user: string, password: string, authzid: string): Promise<UpstreamReply> {
    return this.track(this.doAuth(user, password, authzid));
  }

  private async doAuth(user: string, password: string, authzid: string): Promise<UpstreamReply> {
    await this.ensure();
    const creds = { user, password, authzid };
    const reply = await this.authenticate(creds);
    if (reply.code === 235) this.credentials = creds;
    return reply;
  }

  private async authenticate(c: Credentials): Promise<UpstreamReply> {
    const conn = this.conn as UpstreamConnection;
    const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
    return this.timed('command', async () => {
      const mechanism = upstreamAuthMechanism(this.capabilities);
      if (mechanism === 'PLAIN') return conn.command(`AUTH PLAIN ${b64(`${c.authzid === c.user ? '' : c.authzid}\u0000${c.user}\u0000${c.password}`)}`);
      if (mechanism === 'LOGIN') {
        const start = await conn.command('AUTH LOGIN');
        if (start.code !== 334) return start;
        const user = await conn.command(b64(c.user));
        if (user.code !== 334) return user;
        return conn.command(b64(c.password));
      }
      return { code: 504, lines: ['5.5.4 The upstream server offers no authentication Postern can pass through'] };
    });
  }

  mailFrom(address: string, args: Args): Promise<UpstreamReply> {
    return this.track(this.doMailFrom(address, args));
  }

  private async doMailFrom(address: string, args: Args): Promise<UpstreamReply> {
    const conn = await this.ensure();
    if (this.inTransaction) {
      // The client reset (RSET, EHLO) on its side; reset upstream too before a new transaction.
      this.inTransaction = false;
      await this.timed('command', () => conn.command('RSET'));
    }
    const params = mailParams(args, this.capabilities);
    if (params.dropped.length) this.log.debug('MAIL FROM parameters not forwarded', { dropped: params.dropped });
    const reply = await this.timed('command', () => conn.command(`MAIL FROM:<${address}>${params.text ? ' ' + params.text : ''}`));
    if (reply.code >= 200 && reply.code < 300) this.inTransaction = true;
    return reply;
  }

  rcptTo(address: string, args: Args): Promise<UpstreamReply> {
    return this.track(this.doRcptTo(address, args));
  }

  private async doRcptTo(address: string, args: Args): Promise<UpstreamReply> {
    if (!this.conn?.usable) throw new PosternError('UPSTREAM_FAILED', 'Upstream connection was lost during the transaction');
    const conn = this.conn;
    const params = rcptParams(args, this.capabilities);
    if (params.dropped.length) this.log.debug('RCPT TO parameters not forwarded', { dropped: params.dropped });
    return this.timed('command', () => conn.command(`RCPT TO:<${address}>${params.text ? ' ' + params.text : ''}`));
  }

  /**
   * Sends DATA at once (so its round trip overlaps the intake commit); pass the result to data().
   * The promise never rejects: a failure is returned as a value and handled by data().
   */
  startData(): Promise<UpstreamReply | { error: unknown }> {
    const conn = this.conn;
    if (!conn?.usable) return Promise.resolve({ error: new PosternError('UPSTREAM_FAILED', 'Upstream connection was lost during the transaction') });
    return this.track(this.timed('command', () => conn.command('DATA')).catch((error: unknown) => ({ error })));
  }

  /** Give up on a started DATA without sending the end marker: the upstream discards the transaction. */
  abortData(): void {
    this.inTransaction = false;
    this.conn?.close();
  }

  /**
   * The message after startData(). The result says whether the end marker reached the upstream
   * before a failure: after that point the upstream may have delivered even without a reply.
   */
  data(started: Promise<UpstreamReply | { error: unknown }>, source: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<{ reply: UpstreamReply } | { error: unknown; afterEnd: boolean }> {
    return this.track(this.doData(started, source));
  }

  private async doData(started: Promise<UpstreamReply | { error: unknown }>, source: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<{ reply: UpstreamReply } | { error: unknown; afterEnd: boolean }> {
    let afterEnd = false;
    try {
      const go = await started;
      if ('error' in go) throw go.error;
      if (go.code !== 354) return { reply: go }; // still in the transaction upstream: the next MAIL resets it
      const conn = this.conn;
      if (!conn?.usable) throw new PosternError('UPSTREAM_FAILED', 'Upstream connection was lost during the transaction');
      const reply = await this.timed('data', () => conn.sendData(source, () => {
        afterEnd = true;
      }));
      this.inTransaction = false;
      return { reply };
    } catch (err) {
      this.inTransaction = false;
      this.conn?.close();
      return { error: err, afterEnd };
    }
  }

  /** The transaction ended on the client side without DATA completing (refused locally). */
  async abandonTransaction(): Promise<void> {
    if (!this.inTransaction || !this.conn?.usable) return;
    this.inTransaction = false;
    const conn = this.conn;
    await this.track(this.timed('command', () => conn.command('RSET')).catch(() => conn.close()));
  }

  /** The client left: keep the upstream session for the next client when that is safe, else QUIT. */
  async close(): Promise<void> {
    // Let the operation in flight finish (each is bounded by its own timeout): a QUIT written into
    // the middle of message data would become part of the message.
    for (let seen = this.busy; ; seen = this.busy) {
      await seen;
      if (seen === this.busy) break;
    }
    const conn = this.conn;
    this.conn = null;
    const poolable = this.pool && conn?.usable && !this.credentials && !this.inTransaction;
    this.credentials = null;
    if (poolable && conn) this.pool?.give({ conn, capabilities: this.capabilities });
    else if (this.inTransaction) conn?.close(); // no end marker, no QUIT: the upstream drops the transaction
    else await conn?.quit();
  }
}
