// The POP3 proxy listeners: plain POP3 (with STLS) and implicit-TLS POP3S, both on the configured
// host. Each accepted connection becomes a Pop3Session with its own upstream connection. Bounds the
// number of concurrent sessions across both listeners; on close stops accepting, lets running
// commands finish within the grace period (idle sessions are told and closed at once), then aborts.
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { CaptureService } from '../intake/capture.ts';
import type { TlsMaterial } from '../tls/dev-certificate.ts';
import { PosternError } from '../errors.ts';
import { RecentCaptures } from './recent-captures.ts';
import { Pop3Session, type SessionDeps } from './session.ts';
import type { UpstreamOptions } from './upstream.ts';
import { parseHostPort } from '../config/host-port.ts';

export type Pop3Config = Config['pop3'];

export interface Pop3ProxyDeps {
  config: Pop3Config;
  tls: TlsMaterial;
  capture: CaptureService;
  users: SessionDeps['users'];
  log: Logger;
  metrics: Metrics;
  listener?: string;
}

export interface Pop3Ports {
  port: number;
  /** The implicit-TLS port, or null when `tlsPort` is 0. */
  tlsPort: number | null;
}

/** The upstream settings from the config; throws CONFIG_INVALID on a bad address or CA file. */
export function upstreamOptions(config: Pop3Config): UpstreamOptions {
  const hp = parseHostPort(config.upstream);
  if (!hp) throw new PosternError('CONFIG_INVALID', `pop3.upstream "${config.upstream}" must be "host:port"`);
  let ca: Buffer | null = null;
  if (config.upstreamCa !== '') {
    try {
      ca = readFileSync(config.upstreamCa);
    } catch (err) {
      throw new PosternError('CONFIG_INVALID', `pop3.upstreamCa "${config.upstreamCa}" cannot be read: ${(err as Error).message}`);
    }
  }
  return {
    ...hp, tls: config.upstreamTls, ca, verify: config.upstreamVerify,
    timeoutMs: config.upstreamTimeoutSeconds * 1000, maxLineLength: config.maxLineLength,
  };
}

export class Pop3Proxy {
  private plain: Server | null = null;
  private secure: TlsServer | null = null;
  private readonly sessions = new Set<Pop3Session>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly sessionDeps: SessionDeps;
  private readonly listener: string;
  private seq = 0;
  private closing = false;

  constructor(private readonly deps: Pop3ProxyDeps) {
    this.listener = deps.listener ?? 'pop3';
    const c = deps.config;
    this.sessionDeps = {
      listener: this.listener,
      upstream: upstreamOptions(c),
      secureContext: createSecureContext({ cert: deps.tls.cert, key: deps.tls.key }),
      capture: deps.capture,
      users: deps.users,
      log: deps.log,
      metrics: deps.metrics,
      limits: {
        maxLineLength: c.maxLineLength, idleTimeoutMs: c.idleTimeoutSeconds * 1000,
        maxMessageSize: c.maxMessageSize, allowPlaintextAuth: c.allowPlaintextAuth,
      },
      recent: new RecentCaptures(),
    };
  }

  async listen(): Promise<Pop3Ports> {
    const c = this.deps.config;
    this.plain = createServer((socket) => this.accept(socket));
    const port = await listenOn(this.plain, c.host, c.port);
    let tlsPort: number | null = null;
    if (c.tlsPort !== 0) {
      this.secure = createTlsServer({ cert: this.deps.tls.cert, key: this.deps.tls.key, handshakeTimeout: 30_000 }, (socket) => this.accept(socket));
      this.secure.on('tlsClientError', (err) => this.deps.log.debug('POP3S handshake failed', { err: err.message }));
      tlsPort = await listenOn(this.secure, c.host, c.tlsPort);
    }
    this.deps.log.info('POP3 proxy listening', { host: c.host, port, tlsPort, upstream: c.upstream, upstreamTls: c.upstreamTls });
    return { port, tlsPort };
  }

  private accept(socket: Socket | TLSSocket): void {
    const { metrics, log } = this.deps;
    socket.on('error', () => undefined);
    if (this.closing || this.sessions.size >= this.deps.config.maxConnections) {
      socket.end(this.closing ? '-ERR [SYS/TEMP] Postern is shutting down\r\n' : '-ERR [SYS/TEMP] Too many connections; try again later\r\n');
      setTimeout(() => socket.destroy(), 1000).unref();
      metrics.pop3Sessions.inc({ outcome: 'refused' });
      if (!this.closing) log.warn('POP3 connection refused: pop3.maxConnections reached', { max: this.deps.config.maxConnections });
      return;
    }
    metrics.connections.inc({ listener: this.listener });
    metrics.connectionsActive.inc({ listener: this.listener });
    const session = new Pop3Session(socket, this.sessionDeps, `${process.pid.toString(36)}.${(++this.seq).toString(36)}`);
    this.sessions.add(session);
    const done = session.run().finally(() => {
      this.sessions.delete(session);
      this.running.delete(done);
      metrics.connectionsActive.dec({ listener: this.listener });
    });
    this.running.add(done);
  }

  /**
   * Serve a new certificate from the next handshake on (SIGHUP): STLS upgrades read the session
   * dependencies' context when they start, POP3S handshakes the server's; open sessions keep theirs.
   */
  setTls(material: TlsMaterial): void {
    this.sessionDeps.secureContext = createSecureContext({ cert: material.cert, key: material.key });
    this.secure?.setSecureContext({ cert: material.cert, key: material.key });
  }

  /** Stops accepting; sessions finish their current command within `graceMs`, then are aborted. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const closed = [this.plain, this.secure].map((s) => new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve())));
    for (const s of this.sessions) s.stop();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), graceMs);
    });
    const result = await Promise.race([Promise.allSettled([...this.running]).then(() => 'done' as const), expired]);
    clearTimeout(timer);
    if (result === 'expired') {
      this.deps.log.warn('POP3 sessions still busy after the grace period; closing them', { sessions: this.sessions.size });
      for (const s of this.sessions) s.abort();
      await Promise.allSettled([...this.running]);
    }
    await Promise.all(closed);
  }
}

function listenOn(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}
