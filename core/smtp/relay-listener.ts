// The SMTP relay proxy listener (own port, default 2587), on smtp-server like the journaling
// endpoint: same limits, early-talker option, STARTTLS on the client leg. Each client session gets
// its own upstream session, opened before the greeting (an unreachable upstream → 421). EHLO
// advertises only what both ends can do (relay-capabilities.ts); AUTH is passed through to the
// upstream (its reply decides; Postern keeps no password) or verified locally against the user
// directory's passwordHash; MAIL FROM / RCPT TO go upstream with their parameters and each upstream
// reply reaches the client as is. DATA follows relay-transaction.ts (archive iff delivered).
// Trusts: the config; the client and the upstream not at all. Hands on: intake entries (listener
// "relay") with the accepted envelope and, for authenticated users, a "sent" assignment.
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { errorMessage } from '../errors.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { Assignment, Intake, IntakeRecord } from '../intake/intake.ts';
import type { ArchiveStore } from '../storage/types.ts';
import type { TlsMaterial } from '../tls/dev-certificate.ts';
import { installEarlyTalkerOption } from './early-talker.ts';
import { installPipelinedReplies } from './pipelined-replies.ts';
import { verifyPassword } from './password.ts';
import { throttledCheck } from '../auth/throttled-check.ts';
import type { SignInThrottle } from '../auth/sign-in-throttle.ts';
import { REPLIES, replyError, verdictError } from './replies.ts';
import { installEhloFilterOption, reconcileFeatures } from './relay-capabilities.ts';
import { RelaySession, type RelayUpstreamConfig } from './relay-session.ts';
import { UpstreamPool } from './relay-pool.ts';
import { relayData, UPSTREAM_UNAVAILABLE } from './relay-transaction.ts';
import { replyText, type UpstreamReply } from './relay-upstream.ts';
import { InFlight, addressParams, baseServerOptions, closeSmtp, envelopeOf, listenSmtp, sessionInfo, swapSmtpTls } from './listener-common.ts';

export interface RelayDeps {
  config: Config['relay'];
  upstream: RelayUpstreamConfig;
  hostname: string;
  tls: TlsMaterial;
  intake: Intake;
  archive: ArchiveStore;
  hooks: HookRegistry;
  log: Logger;
  metrics: Metrics;
  /** Called with each released (delivered) entry. */
  enqueue(record: IntakeRecord, inline: Buffer | null): void;
  /** The shared sign-in throttle (per account and address) for AUTH checked locally. */
  signIn?: SignInThrottle;
}

interface SessionState {
  log: Logger;
  upstream: RelaySession;
  /** The archive user the authenticated login maps to, if any. */
  archiveUser: string | null;
  /** The DATA transaction in progress: a client leaving does not cut it short. */
  dataPhase: Promise<unknown> | null;
}

const LISTENER = 'relay';




function upstreamError(reply: UpstreamReply): Error & { responseCode: number } {
  return replyError({ code: reply.code, text: replyText(reply) || 'Upstream refused the command' });
}

export class SmtpRelay {
  private server: SMTPServer | null = null;
  private closing = false;
  private readonly inFlight = new InFlight();
  private readonly sessions = new Map<string, SessionState>();
  private readonly pool: UpstreamPool | null;

  constructor(private readonly deps: RelayDeps) {
    this.pool = deps.config.upstreamPoolSize > 0 ? new UpstreamPool(deps.config.upstreamPoolSize) : null;
  }

  async listen(): Promise<number> {
    installEarlyTalkerOption();
    installPipelinedReplies();
    installEhloFilterOption();
    const { config, log } = this.deps;
    const mode = config.auth.mode;
    const server = new SMTPServer({
      ...baseServerOptions({ ...config, hostname: this.deps.hostname, banner: 'Postern relay', tls: this.deps.tls }),
      hideREQUIRETLS: true,
      // local: Postern is the gatekeeper, so AUTH is required; passthrough: the upstream decides.
      authOptional: mode !== 'local',
      allowInsecureAuth: config.auth.allowInsecure,
      disabledCommands: mode === 'none' ? ['AUTH'] : [],
      ...({
        earlyTalkerDelayMs: config.earlyTalkerDelayMs,
        noDelay: true,
        ehloFilter: (session: SMTPServerSession, features: string[]) => {
          const state = this.sessions.get(session.id);
          return state ? reconcileFeatures(features, state.upstream.capabilities, { maxMessageSize: config.maxMessageSize, authMode: mode }) : features;
        },
      } as object),
      onConnect: (session, cb) => this.inFlight.track(this.onConnect(session), cb),
      onAuth: (auth, session, cb) => {
        void this.onAuth(auth, session).then((user) => cb(null, { user }), (err: Error) => cb(err));
      },
      onMailFrom: (address, session, cb) => this.inFlight.track(this.onMailFrom(address, session), cb),
      onRcptTo: (address, session, cb) => this.inFlight.track(this.onRcptTo(address, session), cb),
      onData: (stream, session, cb) => {
        this.inFlight.track(this.onData(stream, session), (err, reply) => (err ? cb(err) : cb(null, reply ?? 'Ok')));
      },
      onClose: (session) => {
        const state = this.sessions.get(session.id);
        if (!state) return;
        this.sessions.delete(session.id);
        this.deps.metrics.connectionsActive.dec({ listener: LISTENER });
        state.log.debug('Connection closed');
        // A message already read whole is carried to its end (delivered and archived, or neither).
        void (state.dataPhase ?? Promise.resolve()).catch(() => undefined).then(() => state.upstream.close());
        void this.deps.hooks.notify('disconnect', { session: sessionInfo(session, LISTENER) }, state.log);
      },
    });
    server.on('error', (err) => log.error('SMTP relay server error', { err: errorMessage(err) }));
    this.server = server;
    const port = await listenSmtp(server, config.port, config.host);
    const { host, port: upPort, implicitTls, starttls } = this.deps.upstream;
    log.info('SMTP relay listening', {
      listener: LISTENER, host: config.host, port, upstream: `${host}:${upPort}`,
      upstreamTls: implicitTls ? 'implicit' : starttls ? 'starttls' : 'none', authMode: mode, requireArchive: config.requireArchive,
    });
    return port;
  }

  /** Serve a new certificate from the next handshake on (SIGHUP); open sessions are not touched. */
  setTls(material: TlsMaterial): void {
    swapSmtpTls(this.server, material);
  }

  /** Stop accepting; in-flight transactions finish within the grace period. */
  async close(graceMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.closing = true;
    await closeSmtp(server, this.inFlight, graceMs);
    await Promise.allSettled([...this.sessions.values()].map((s) => s.upstream.close()));
    await this.pool?.drain();
    this.server = null;
  }

  private state(session: SMTPServerSession): SessionState {
    const state = this.sessions.get(session.id);
    if (!state) throw replyError({ code: 421, text: '4.3.0 Session state lost; try again' });
    return state;
  }

  private async onConnect(session: SMTPServerSession): Promise<void> {
    const { metrics, hooks, config } = this.deps;
    const log = this.deps.log.child({ conn: session.id, listener: LISTENER });
    const upstream = new RelaySession(this.deps.upstream, log, metrics, this.closing ? null : this.pool);
    this.sessions.set(session.id, { log, upstream, archiveUser: null, dataPhase: null });
    metrics.connections.inc({ listener: LISTENER });
    metrics.connectionsActive.inc({ listener: LISTENER });
    log.debug('Connection opened', { remote: session.remoteAddress });
    if (this.closing) throw replyError(REPLIES.shuttingDown);
    const err = verdictError(await hooks.gate('connect', { session: sessionInfo(session, LISTENER) }, log));
    if (err) {
      log.info('Connection refused by a plugin', { reply: `${err.responseCode} ${err.message}` });
      throw err;
    }
    try {
      await upstream.open();
    } catch (e) {
      metrics.relayTransactions.inc({ outcome: 'upstream_unavailable' });
      log.warn('Upstream unavailable; refusing the client with 421', { err: errorMessage(e) });
      throw replyError({ code: 421, text: UPSTREAM_UNAVAILABLE.text });
    }
    // Nothing to pass AUTH through to: do not offer it on this session.
    if (config.auth.mode === 'passthrough' && !upstream.authAvailable) session.disabledCommands = ['AUTH'];
  }

  private async onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<string> {
    const state = this.state(session);
    const login = auth.username ?? '';
    const password = auth.password ?? '';
    if (this.deps.config.auth.mode === 'local') {
      const outcome = await throttledCheck(this.deps.signIn, login, session.remoteAddress, async () => {
        const user = await this.deps.archive.getUser(login);
        return !!user?.passwordHash && (await verifyPassword(password, user.passwordHash, { cached: true }));
      });
      if (outcome.kind === 'throttled') {
        state.log.warn('Local authentication throttled', { user: login, retryAfterMs: outcome.retryAfterMs });
        throw replyError({ code: 454, text: '4.7.0 Too many failed authentication attempts; try again later' });
      }
      const ok = outcome.kind === 'ok';
      state.log.info(ok ? 'Authenticated locally' : 'Local authentication failed', { user: login });
      if (!ok) throw replyError({ code: 535, text: '5.7.8 Authentication credentials invalid' });
      state.archiveUser = login;
      return login;
    }
    let reply: UpstreamReply;
    try {
      reply = await state.upstream.auth(login, password, auth.authzid ?? '');
    } catch (err) {
      state.log.warn('Upstream failed during AUTH', { user: login, err: errorMessage(err) });
      throw replyError({ code: 454, text: '4.7.0 Temporary authentication failure; try again later' });
    }
    if (reply.code !== 235) {
      state.log.info('Upstream refused authentication', { user: login, reply: reply.code });
      throw upstreamError(reply);
    }
    const archive = this.deps.archive;
    state.archiveUser = (await archive.getUser(login))?.name ?? (await archive.userByAddress(login));
    state.log.info('Authenticated by the upstream', { user: login, archiveUser: state.archiveUser });
    return login;
  }

  private async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const state = this.state(session);
    if (this.closing) throw replyError(REPLIES.shuttingDown);
    const info = sessionInfo(session, LISTENER);
    const helo = verdictError(await this.deps.hooks.gate('helo', { session: info, hostname: info.helo }, state.log));
    if (helo) throw helo;
    const err = verdictError(await this.deps.hooks.gate('mailFrom', { session: info, address: address.address, params: addressParams(address) }, state.log));
    if (err) {
      state.log.info('Sender refused by a plugin', { from: address.address, reply: `${err.responseCode} ${err.message}` });
      throw err;
    }
    let reply: UpstreamReply;
    try {
      reply = await state.upstream.mailFrom(address.address, address.args);
    } catch (e) {
      this.deps.metrics.relayTransactions.inc({ outcome: 'upstream_unavailable' });
      state.log.warn('Upstream unavailable at MAIL FROM', { err: errorMessage(e) });
      throw replyError(UPSTREAM_UNAVAILABLE);
    }
    if (reply.code >= 300) {
      this.deps.metrics.relayTransactions.inc({ outcome: 'rejected' });
      state.log.info('Upstream refused the sender', { from: address.address, reply: `${reply.code} ${replyText(reply)}` });
      throw upstreamError(reply);
    }
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const state = this.state(session);
    if (session.envelope.rcptTo.length >= this.deps.config.maxRecipients) {
      state.log.warn('Recipient limit reached', { limit: this.deps.config.maxRecipients });
      throw replyError(REPLIES.tooManyRecipients);
    }
    const info = sessionInfo(session, LISTENER);
    const err = verdictError(await this.deps.hooks.gate('rcptTo', { session: info, address: address.address, params: addressParams(address), envelope: envelopeOf(session) }, state.log));
    if (err) throw err;
    let reply: UpstreamReply;
    try {
      reply = await state.upstream.rcptTo(address.address, address.args);
    } catch (e) {
      state.log.warn('Upstream unavailable at RCPT TO', { err: errorMessage(e) });
      throw replyError(UPSTREAM_UNAVAILABLE);
    }
    if (reply.code >= 300) {
      state.log.info('Upstream refused a recipient', { rcpt: address.address, reply: `${reply.code} ${replyText(reply)}` });
      throw upstreamError(reply);
    }
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const state = this.state(session);
    const info = sessionInfo(session, LISTENER);
    const assign: Assignment | null = state.archiveUser && info.user
      ? { user: state.archiveUser, direction: 'sent', reason: `smtp auth ${info.user}` }
      : null;
    const phase = relayData(
      { config: this.deps.config, listener: LISTENER, intake: this.deps.intake, hooks: this.deps.hooks, metrics: this.deps.metrics, enqueue: this.deps.enqueue },
      { stream, session: info, envelope: envelopeOf(session), upstream: state.upstream, assign, log: state.log },
    );
    state.dataPhase = phase;
    return phase;
  }
}
