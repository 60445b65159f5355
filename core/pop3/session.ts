// One POP3 proxy session: a small state machine (AUTHORIZATION → TRANSACTION) between one client
// and one upstream connection. Commands are read one at a time (bounded line, idle timeout), checked
// locally (syntax, state, plaintext policy) and relayed; replies are relayed back. RETR bodies are
// captured while streamed and the final "." is released only after the intake commit; a DELE of a
// message not captured in this session first captures it without showing it to the client.
// Trusts neither peer. Never logs a password, an AUTH exchange or an APOP digest.
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { CaptureService } from '../intake/capture.ts';
import type { IntakeMeta } from '../intake/intake.ts';
import { reconcileCapa } from './capa.ts';
import type { RecentCaptures } from './recent-captures.ts';
import { flushAndDestroy, relayCaptured, relayListing, type BodyContext } from './retrieval.ts';
import { ReadError, SocketReader } from './socket-reader.ts';
import { Pop3UpstreamError, Upstream, type UpstreamOptions } from './upstream.ts';
import { upgradeClient } from './client-tls.ts';
import { decodePlainIdentity, parseCommand, type Command } from './commands.ts';
import { isLoopbackAddress } from '../config/host-port.ts';

export interface SessionDeps {
  listener: string;
  upstream: UpstreamOptions;
  secureContext: SecureContext;
  capture: CaptureService;
  users: { userByPop3User(login: string): Promise<string | null> };
  log: Logger;
  metrics: Metrics;
  limits: { maxLineLength: number; idleTimeoutMs: number; maxMessageSize: number; allowPlaintextAuth: boolean };
  recent: RecentCaptures;
}

export type SessionOutcome =
  | 'quit' | 'client_closed' | 'timeout' | 'protocol_error' | 'upstream_unavailable' | 'upstream_error' | 'capture_failed' | 'shutdown' | 'error';

const MAX_BAD_COMMANDS = 10;
const MAX_CAPA_BYTES = 64 * 1024;
const MAX_SASL_ROUNDS = 4;

export class Pop3Session {
  private socket: Socket | TLSSocket;
  private client: SocketReader;
  private upstream: Upstream | null = null;
  private state: 'authorization' | 'transaction' = 'authorization';
  private pendingUser: string | null = null;
  private login: string | null = null;
  private owner: string | null = null;
  private readonly captured = new Set<number>();
  private badCommands = 0;
  private idle = false;
  /** A multi-line body is being relayed to the client: no status line may be sent now. */
  private inBody = false;
  private stopping = false;
  private outcome: SessionOutcome = 'client_closed';
  private readonly log: Logger;
  private readonly remoteAddress: string;

  constructor(socket: Socket | TLSSocket, private readonly deps: SessionDeps, id: string) {
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? '';
    socket.on('error', () => undefined);
    // Replies are small writes (a status line, the final "."): never let Nagle hold them back.
    socket.setNoDelay(true);
    this.client = new SocketReader(socket, deps.limits.maxLineLength * 4);
    this.log = deps.log.child({ pop3: id, remote: this.remoteAddress });
  }

  private get encrypted(): boolean {
    return this.socket instanceof TLSSocket && this.socket.encrypted === true;
  }

  /** Plaintext credentials are acceptable: TLS on the client leg, a loopback client, or allowed by config. */
  private get plaintextOk(): boolean {
    return this.encrypted || isLoopbackAddress(this.remoteAddress) || this.deps.limits.allowPlaintextAuth;
  }

  /** Asks the session to end: at once when waiting for a command, else after the current one. */
  stop(): void {
    this.stopping = true;
    if (this.idle) {
      this.outcome = 'shutdown';
      this.reply('-ERR [SYS/TEMP] Postern is shutting down; try again later');
      this.socket.end();
    }
  }

  /** Destroys both connections (end of the shutdown grace period). */
  abort(): void {
    this.outcome = 'shutdown';
    this.socket.destroy();
    this.upstream?.close();
  }

  async run(): Promise<SessionOutcome> {
    try {
      await this.serve();
    } catch (err) {
      this.failed(err);
    } finally {
      this.upstream?.close();
      this.client.detach();
      if (!this.socket.destroyed) this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
      this.deps.metrics.pop3Sessions.inc({ outcome: this.outcome });
      this.log.debug('POP3 session ended', { outcome: this.outcome });
    }
    return this.outcome;
  }

  private async serve(): Promise<void> {
    try {
      this.upstream = await Upstream.connect(this.deps.upstream);
    } catch (err) {
      const e = err instanceof Pop3UpstreamError ? err : new Pop3UpstreamError('connect', String(err));
      this.deps.metrics.pop3UpstreamErrors.inc({ kind: e.kind });
      this.log.warn('Upstream POP3 server unavailable', { kind: e.kind, err: e.message });
      this.outcome = 'upstream_unavailable';
      this.reply('-ERR [SYS/TEMP] Upstream POP3 server unavailable; try again later');
      return;
    }
    const ts = this.upstream.timestamp;
    this.reply(`+OK Postern POP3 proxy ready${ts ? ' ' + ts : ''}`);
    for (;;) {
      if (this.stopping) {
        this.outcome = 'shutdown';
        this.reply('-ERR [SYS/TEMP] Postern is shutting down; try again later');
        return;
      }
      let line: Buffer;
      this.idle = true;
      try {
        line = await this.client.readLine(this.deps.limits.maxLineLength, this.deps.limits.idleTimeoutMs);
      } catch (err) {
        if (!(err instanceof ReadError)) throw err;
        if (this.stopping) this.outcome = 'shutdown';
        else if (err.reason === 'timeout') this.closeWith('timeout', '-ERR Idle timeout; closing the connection', 'POP3 client idle timeout');
        else if (err.reason === 'too-long') this.closeWith('protocol_error', '-ERR Command line too long; closing the connection', 'POP3 client sent an overlong line');
        else this.outcome = 'client_closed';
        return;
      } finally {
        this.idle = false;
      }
      const cmd = parseCommand(line);
      if ('error' in cmd) {
        if (!this.bad(cmd.error)) return;
        continue;
      }
      if (!(await this.dispatch(cmd))) return;
    }
  }

  private reply(line: string): void {
    // Lines are latin1 strings holding the bytes as received: write them back byte for byte.
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.write(line + '\r\n', 'latin1');
  }

  /**
   * Holds the client's writes until the end of this tick: a status line and the body bytes already
   * buffered from the upstream (and the "." when nothing has to be committed) leave in one write.
   */
  private corkForTick(): void {
    const socket = this.socket;
    socket.cork();
    process.nextTick(() => socket.uncork());
  }

  private closeWith(outcome: SessionOutcome, reply: string, logMsg: string): void {
    this.outcome = outcome;
    this.reply(reply);
    this.log.warn(logMsg);
  }

  /** A refused command; false when the client has made too many and is disconnected. */
  private bad(reply: string): boolean {
    this.badCommands += 1;
    if (this.badCommands > MAX_BAD_COMMANDS) {
      this.closeWith('protocol_error', '-ERR Too many bad commands; closing the connection', 'POP3 client sent too many bad commands');
      return false;
    }
    this.reply(reply);
    return true;
  }

  private get up(): Upstream {
    if (!this.upstream) throw new Pop3UpstreamError('closed', 'No upstream connection');
    return this.upstream;
  }

  /** Runs one command; false ends the session. */
  private async dispatch(cmd: Command): Promise<boolean> {
    const authorized = this.state === 'transaction';
    switch (cmd.verb) {
      case 'CAPA':
        return this.capa();
      case 'QUIT':
        return this.quit();
      case 'STLS':
        if (authorized) return this.bad('-ERR STLS is only allowed before login');
        return this.startTls();
      case 'USER': case 'PASS': case 'APOP': case 'AUTH':
        if (authorized) return this.bad('-ERR Already logged in');
        if (cmd.verb !== 'APOP' && !this.plaintextOk) {
          return this.bad('-ERR [AUTH] Plaintext authentication is disabled without TLS; use STLS first');
        }
        if (cmd.verb === 'AUTH') return this.auth(cmd.args);
        return this.credentials(cmd);
      default:
        if (!authorized) return this.bad('-ERR Not logged in');
    }
    switch (cmd.verb) {
      case 'RETR':
        return this.retr(cmd.numbers[0] as number);
      case 'DELE':
        return this.dele(cmd.numbers[0] as number);
      default: {
        // STAT NOOP RSET LIST UIDL TOP: relay; a multi-line reply when LIST/UIDL have no argument, or TOP.
        const multi = cmd.verb === 'TOP' || ((cmd.verb === 'LIST' || cmd.verb === 'UIDL') && cmd.numbers.length === 0);
        const st = await this.forward(cmd.line, multi);
        if (st.kind === '+OK' && multi) return this.relayPlain();
        return true;
      }
    }
  }

  /** Sends a command upstream and relays its status line (corked with the body that follows a multi-line +OK). */
  private async forward(line: string, multiLine = false): Promise<{ kind: string; line: string }> {
    this.up.send(line);
    const st = await this.up.readStatus(false);
    if (multiLine && st.kind === '+OK') this.corkForTick();
    this.reply(st.line);
    return st;
  }

  private async credentials(cmd: Command): Promise<boolean> {
    const st = await this.forward(cmd.line);
    if (cmd.verb === 'USER') this.pendingUser = st.kind === '+OK' ? cmd.args : null;
    else if (st.kind === '+OK') {
      const name = cmd.verb === 'APOP' ? (cmd.args.split(' ')[0] ?? '') : (this.pendingUser ?? '');
      await this.loggedIn(Buffer.from(name, 'latin1').toString('utf8'));
    }
    return true;
  }

  private async auth(args: string): Promise<boolean> {
    const [mech = '', initial] = args.split(' ');
    if (mech === '') return this.bad('-ERR Name a SASL mechanism; CAPA lists them');
    if (mech.toUpperCase() !== 'PLAIN') return this.bad('-ERR Unsupported SASL mechanism; only PLAIN is relayed');
    this.up.send(initial === undefined ? 'AUTH PLAIN' : `AUTH PLAIN ${initial}`);
    let response = initial ?? '';
    for (let round = 0; round < MAX_SASL_ROUNDS; round++) {
      const st = await this.up.readStatus(true);
      this.reply(st.line);
      if (st.kind === '-ERR') return true;
      if (st.kind === '+OK') {
        await this.loggedIn(decodePlainIdentity(response) ?? '');
        return true;
      }
      this.idle = true;
      try {
        response = (await this.client.readLine(this.deps.limits.maxLineLength, this.deps.limits.idleTimeoutMs)).toString('latin1');
      } catch (err) {
        if (!(err instanceof ReadError)) throw err;
        this.outcome = err.reason === 'closed' ? 'client_closed' : err.reason === 'timeout' ? 'timeout' : 'protocol_error';
        return false;
      } finally {
        this.idle = false;
      }
      if (!/^([A-Za-z0-9+/]+={0,2}|=|\*)$/.test(response)) {
        // Not a SASL response: cancel the exchange upstream rather than pass arbitrary bytes on.
        this.up.send('*');
        await this.up.readStatus(false);
        return this.bad('-ERR Invalid SASL response; authentication cancelled');
      }
      this.up.send(response);
    }
    throw new Pop3UpstreamError('malformed', 'Upstream kept the SASL exchange going beyond 4 rounds');
  }

  private async loggedIn(login: string): Promise<void> {
    this.state = 'transaction';
    this.login = login;
    this.owner = login === '' ? null : await this.deps.users.userByPop3User(login);
    this.log.info('POP3 login through the proxy', { login, archiveUser: this.owner ?? '(none: normal routing only)' });
  }

  private async capa(): Promise<boolean> {
    this.up.send('CAPA');
    const st = await this.up.readStatus(false);
    let lines: string[] | null = null;
    if (st.kind === '+OK') {
      lines = (await this.up.readBody(MAX_CAPA_BYTES)).toString('latin1').split(/\r?\n/).filter((l) => l.trim() !== '');
    }
    const caps = reconcileCapa(lines, {
      stls: this.state === 'authorization' && !this.encrypted,
      plaintextAuth: this.state === 'authorization' && this.plaintextOk,
    });
    this.reply(['+OK Capability list follows', ...caps, '.'].join('\r\n'));
    return true;
  }

  private async quit(): Promise<boolean> {
    await this.forward('QUIT');
    this.outcome = 'quit';
    return false;
  }

  private async startTls(): Promise<boolean> {
    if (this.encrypted) return this.bad('-ERR Already using TLS');
    this.reply('+OK Begin TLS negotiation');
    const early = this.client.detach();
    if (early.length > 0) {
      // Anything sent after STLS but before the handshake could be injected plaintext.
      this.closeWith('protocol_error', '-ERR Data after STLS; closing the connection', 'POP3 client sent data after STLS before the TLS handshake');
      return false;
    }
    const { secure, ok } = await upgradeClient(this.socket as Socket, this.deps.secureContext, this.deps.limits.idleTimeoutMs);
    this.socket = secure;
    this.client = new SocketReader(secure, this.deps.limits.maxLineLength * 4);
    if (!ok) {
      this.outcome = 'protocol_error';
      this.log.warn('POP3 client STLS handshake failed');
      secure.destroy();
      return false;
    }
    // RFC 2595: the client must forget what it learned before; so does the proxy.
    this.pendingUser = null;
    return true;
  }

  private captureMeta(): IntakeMeta {
    const meta: IntakeMeta = {
      listener: this.deps.listener,
      envelope: { mailFrom: '', rcptTo: [] },
      session: { remoteAddress: this.remoteAddress, helo: '', user: this.login },
    };
    if (this.owner) meta.assign = { user: this.owner, direction: 'received', reason: `pop3 login ${this.login ?? ''}` };
    return meta;
  }

  private async retr(n: number): Promise<boolean> {
    const st = await this.forward(`RETR ${n}`, true);
    if (st.kind !== '+OK') return true;
    return this.capturedRelay(n, true);
  }

  private async dele(n: number): Promise<boolean> {
    if (!this.captured.has(n)) {
      // Never let a client delete upstream what the archive does not have: capture it first, unseen.
      this.up.send(`RETR ${n}`);
      const st = await this.up.readStatus(false);
      if (st.kind !== '+OK') {
        this.reply(`-ERR [SYS/TEMP] Message ${n} could not be archived before deletion; not deleted`);
        return true;
      }
      if (!(await this.capturedRelay(n, false))) return false;
    }
    await this.forward(`DELE ${n}`);
    return true;
  }

  /** Streams a RETR body (to the client, or unseen) into the capture; the "." only after the commit. */
  private async capturedRelay(n: number, shown: boolean): Promise<boolean> {
    this.inBody = shown;
    const stopped = await relayCaptured(this.bodyContext(), n, this.captureMeta(), shown);
    this.inBody = false;
    if (stopped === null) this.captured.add(n);
    else this.outcome = stopped;
    return stopped === null;
  }

  private async relayPlain(): Promise<boolean> {
    this.inBody = true;
    const stopped = await relayListing(this.bodyContext());
    this.inBody = false;
    if (stopped !== null) this.outcome = stopped;
    return stopped === null;
  }

  private bodyContext(): BodyContext {
    const { capture, metrics, limits, recent } = this.deps;
    return { upstream: this.up, client: this.socket, reply: (l) => this.reply(l), log: this.log, metrics, capture, limits, recent };
  }

  private failed(err: unknown): void {
    if (err instanceof Pop3UpstreamError) {
      this.outcome = 'upstream_error';
      this.deps.metrics.pop3UpstreamErrors.inc({ kind: err.kind });
      this.log.warn('Upstream POP3 server failed; closing the session', { kind: err.kind, err: err.message });
      // Mid-body there is no safe way to say so: the withheld terminator and the close tell the client.
      if (!this.inBody) this.reply(`-ERR [SYS/TEMP] Upstream POP3 server failed: ${err.message}`);
      flushAndDestroy(this.socket);
      return;
    }
    this.outcome = 'error';
    this.log.error('POP3 session failed', { err: err instanceof Error ? err.message : String(err) });
    flushAndDestroy(this.socket);
  }
}

