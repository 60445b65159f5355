// The SMTP journaling endpoint (on smtp-server). It spools each message into the durable intake and
// answers 250 only after the intake commit is on disk. Bodies are streamed; size, recipients,
// connections and idle time are bounded; smuggling-shaped line endings are refused. Plugins take
// part through the connect/helo/mailFrom/rcptTo/data/dataEnd gates and the queued/disconnect notices.
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { errorMessage } from '../errors.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { Intake, IntakeRecord } from '../intake/intake.ts';
import type { TlsMaterial } from '../tls/dev-certificate.ts';
import { parseHeaderBlock } from '../mime/headers.ts';
import { SmugglingGuard } from '../intake/smuggling-guard.ts';
import { installEarlyTalkerOption } from './early-talker.ts';
import { installPipelinedReplies } from './pipelined-replies.ts';
import { verifyPassword } from './password.ts';
import { throttledCheck } from '../auth/throttled-check.ts';
import type { SignInThrottle } from '../auth/sign-in-throttle.ts';
import { REPLIES, replyError, verdictError } from './replies.ts';
import { InFlight, addressParams, baseServerOptions, closeSmtp, envelopeOf, listenSmtp, sessionInfo, swapSmtpTls } from './listener-common.ts';

export interface ReceiverDeps {
  config: Config['smtp'];
  hostname: string;
  listener: string;
  tls: TlsMaterial;
  intake: Intake;
  hooks: HookRegistry;
  log: Logger;
  metrics: Metrics;
  /** Called after a durable commit, before the 250 is sent. */
  onQueued(record: IntakeRecord, inline: Buffer | null): void;
  /** The shared sign-in throttle (per account and address) for SMTP AUTH. */
  signIn?: SignInThrottle;
}




export class SmtpReceiver {
  private server: SMTPServer | null = null;
  private closing = false;
  private readonly inFlight = new InFlight();
  private readonly sessions = new Map<string, Logger>();

  constructor(private readonly deps: ReceiverDeps) {}

  async listen(): Promise<number> {
    installEarlyTalkerOption();
    installPipelinedReplies();
    const { config, log, metrics, listener } = this.deps;
    const authOn = config.auth.mode !== 'none';
    const server = new SMTPServer({
      ...baseServerOptions({ ...config, hostname: this.deps.hostname, banner: 'Postern journaling endpoint', tls: this.deps.tls }),
      authOptional: config.auth.mode !== 'required',
      allowInsecureAuth: config.auth.allowInsecure,
      disabledCommands: authOn ? [] : ['AUTH'],
      // Read by the early-talker patch: 0 greets at once (trusted MTAs), >0 detects early talkers.
      // noDelay reaches net.createServer: replies go out at once instead of waiting on Nagle.
      ...({ earlyTalkerDelayMs: config.earlyTalkerDelayMs, noDelay: true } as object),
      onConnect: (session, cb) => this.inFlight.track(this.onConnect(session), cb),
      onAuth: (auth, session, cb) => {
        void this.onAuth(auth.username ?? '', auth.password ?? '', session).then(
          (ok) => cb(ok ? null : replyError({ code: 535, text: '5.7.8 Authentication credentials invalid' }), ok ? { user: auth.username } : undefined),
          (err: unknown) => cb(err as Error),
        );
      },
      onMailFrom: (address, session, cb) => this.inFlight.track(this.onMailFrom(address, session), cb),
      onRcptTo: (address, session, cb) => this.inFlight.track(this.onRcptTo(address, session), cb),
      onData: (stream, session, cb) => {
        void this.inFlight.track(this.onData(stream, session), (err, reply) => (err ? cb(err) : cb(null, reply ?? 'Ok')));
      },
      onClose: (session) => {
        const slog = this.sessions.get(session.id);
        if (!slog) return; // refused before onConnect (connection limit)
        this.sessions.delete(session.id);
        metrics.connectionsActive.dec({ listener });
        slog.debug('Connection closed');
        void this.deps.hooks.notify('disconnect', { session: sessionInfo(session, listener) }, slog);
      },
    });
    server.on('error', (err) => log.error('SMTP server error', { err: errorMessage(err) }));
    this.server = server;
    const port = await listenSmtp(server, config.port, config.host);
    log.info('SMTP endpoint listening', { listener, host: config.host, port, authMode: config.auth.mode, earlyTalkerDelayMs: config.earlyTalkerDelayMs });
    return port;
  }

  /** Serve a new certificate from the next handshake on (SIGHUP); open sessions are not touched. */
  setTls(material: TlsMaterial): void {
    swapSmtpTls(this.server, material);
  }

  /** Stop accepting; in-flight DATA transactions finish (commit or tempfail) within the grace period. */
  async close(graceMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.closing = true;
    await closeSmtp(server, this.inFlight, graceMs);
    this.server = null;
  }

  private log(session: SMTPServerSession): Logger {
    return this.sessions.get(session.id) ?? this.deps.log;
  }

  private async onConnect(session: SMTPServerSession): Promise<void> {
    const { metrics, listener, hooks } = this.deps;
    const slog = this.deps.log.child({ conn: session.id, listener });
    this.sessions.set(session.id, slog);
    metrics.connections.inc({ listener });
    metrics.connectionsActive.inc({ listener });
    slog.debug('Connection opened', { remote: session.remoteAddress });
    if (this.closing) throw replyError(REPLIES.shuttingDown);
    const err = verdictError(await hooks.gate('connect', { session: sessionInfo(session, listener) }, slog));
    if (err) {
      slog.info('Connection refused by a plugin', { reply: `${err.responseCode} ${err.message}` });
      throw err;
    }
  }

  private async onAuth(username: string, password: string, session: SMTPServerSession): Promise<boolean> {
    const outcome = await throttledCheck(this.deps.signIn, username, session.remoteAddress, async () => {
      const hash = Object.hasOwn(this.deps.config.auth.users, username) ? this.deps.config.auth.users[username] : undefined;
      return hash !== undefined && (await verifyPassword(password, hash, { cached: true }));
    });
    if (outcome.kind === 'throttled') {
      this.log(session).warn('Authentication throttled', { user: username, retryAfterMs: outcome.retryAfterMs });
      throw replyError({ code: 454, text: '4.7.0 Too many failed authentication attempts; try again later' });
    }
    this.log(session).info(outcome.kind === 'ok' ? 'Authenticated' : 'Authentication failed', { user: username });
    return outcome.kind === 'ok';
  }

  private async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const slog = this.log(session);
    if (this.closing) throw replyError(REPLIES.shuttingDown);
    const info = sessionInfo(session, this.deps.listener);
    const helo = verdictError(await this.deps.hooks.gate('helo', { session: info, hostname: info.helo }, slog));
    if (helo) throw helo;
    const err = verdictError(await this.deps.hooks.gate('mailFrom', { session: info, address: address.address, params: addressParams(address) }, slog));
    if (err) {
      slog.info('Sender refused by a plugin', { from: address.address, reply: `${err.responseCode} ${err.message}` });
      throw err;
    }
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const slog = this.log(session);
    if (session.envelope.rcptTo.length >= this.deps.config.maxRecipients) {
      slog.warn('Recipient limit reached', { limit: this.deps.config.maxRecipients });
      throw replyError(REPLIES.tooManyRecipients);
    }
    const info = sessionInfo(session, this.deps.listener);
    const err = verdictError(await this.deps.hooks.gate('rcptTo', { session: info, address: address.address, params: addressParams(address), envelope: envelopeOf(session) }, slog));
    if (err) throw err;
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const { metrics, listener, config, hooks, intake } = this.deps;
    const slog = this.log(session);
    const info = sessionInfo(session, listener);
    const envelope = envelopeOf(session);
    const reject = (reply: { code: number; text: string }, reason: string, temporary: boolean): never => {
      (temporary ? metrics.messagesTempfailed : metrics.messagesRejected).inc({ listener, reason });
      slog.warn('Message refused', { reason, reply: `${reply.code} ${reply.text}`, from: envelope.mailFrom, rcpts: envelope.rcptTo.length });
      throw replyError(reply);
    };

    const gate = await hooks.gate('data', { session: info, envelope }, slog);
    const writer = intake.writer();
    const guard = new SmugglingGuard();
    let received = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (gate || received > config.maxMessageSize) continue; // keep reading to stay in sync; store nothing
        guard.scan(chunk);
        await writer.write(chunk);
      }
    } catch (err) {
      await writer.abort();
      slog.warn('Reading message data failed', { err: errorMessage(err) });
      throw replyError(REPLIES.intakeFailed);
    }
    guard.end();
    const gateErr = verdictError(gate);
    if (gateErr) {
      await writer.abort();
      return reject({ code: gateErr.responseCode, text: gateErr.message }, 'plugin', gateErr.responseCode < 500);
    }
    if (stream.sizeExceeded || received > config.maxMessageSize) {
      await writer.abort();
      return reject(REPLIES.messageTooBig(config.maxMessageSize), 'size', false);
    }
    if (guard.smuggling) {
      await writer.abort();
      return reject(REPLIES.smuggling, 'smuggling', false);
    }
    if (guard.bareLineEnding) {
      if (config.bareLineEndings === 'reject') {
        await writer.abort();
        return reject(REPLIES.bareLineEnding, 'bare_line_ending', false);
      }
      metrics.bareLineEndings.inc({ listener });
      slog.info('Message contains bare CR or LF; archived unaltered');
    }
    // Header parsing is the archiving half's work; do it here only when a plugin gates on dataEnd.
    const end = hooks.has('dataEnd') ? await hooks.gate('dataEnd', { session: info, envelope, size: writer.bytes, headers: parseHeaderBlock(writer.head()) }, slog) : null;
    const endErr = verdictError(end);
    if (endErr) {
      await writer.abort();
      return reject({ code: endErr.responseCode, text: endErr.message }, 'plugin', endErr.responseCode < 500);
    }
    let committed: { record: IntakeRecord; inline: Buffer | null };
    try {
      committed = await writer.commit({
        listener,
        envelope,
        session: { remoteAddress: info.remoteAddress, helo: info.helo, user: info.user },
      });
    } catch (err) {
      await writer.abort();
      slog.error('Intake commit failed; answering with a temporary failure', { err: errorMessage(err) });
      return reject(REPLIES.intakeFailed, 'intake', true);
    }
    const { record, inline } = committed;
    metrics.messagesAccepted.inc({ listener });
    metrics.receivedBytes.inc({ listener }, record.size);
    slog.info('Message queued', { intakeId: record.id, remote: info.remoteAddress, size: record.size, from: envelope.mailFrom, rcpts: envelope.rcptTo.length });
    this.deps.onQueued(record, inline);
    void hooks.notify('queued', { session: info, envelope, intakeId: record.id, size: record.size }, slog);
    return `2.0.0 Ok: queued as ${record.id}`;
  }
}
