// The IMAP listeners: a plain port offering STARTTLS and an implicit-TLS port, both bounded by
// maxConnections (extra connections get "* BYE" and are closed), with a TLS context that can be
// replaced at run time (SIGHUP). Each accepted socket becomes a Session; close() says BYE to all.
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type SecureContext, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../../core/errors.ts';
import type { TlsMaterial } from '../../core/tls/dev-certificate.ts';
import { Session, type ImapDeps } from './session.ts';

export interface ImapPorts {
  port: number | null;
  tlsPort: number | null;
}

export class ImapServer {
  private context: SecureContext;
  private material: TlsMaterial;
  private plain: Server | null = null;
  private tls: TlsServer | null = null;
  private readonly sessions = new Set<Session>();
  private readonly sockets = new Set<Socket>();
  private ports: ImapPorts = { port: null, tlsPort: null };

  constructor(private readonly deps: Omit<ImapDeps, 'secureContext'>, material: TlsMaterial) {
    this.material = material;
    this.context = createSecureContext({ cert: material.cert, key: material.key });
  }

  /** Use a new certificate for connections from now on (open sessions keep theirs). */
  setTls(material: TlsMaterial): void {
    this.material = material;
    this.context = createSecureContext({ cert: material.cert, key: material.key });
    this.tls?.setSecureContext({ cert: material.cert, key: material.key });
  }

  get connections(): number {
    return this.sockets.size;
  }

  private accept(socket: Socket, secure: boolean, listener: 'imap' | 'imaps'): void {
    const { metrics, log, config } = this.deps;
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      metrics.connectionsActive.dec({ listener });
    });
    metrics.connections.inc({ listener });
    metrics.connectionsActive.inc({ listener });
    socket.on('error', () => undefined);
    if (this.sockets.size > config.maxConnections) {
      log.warn('IMAP connection refused: too many connections', { max: config.maxConnections });
      socket.end('* BYE [UNAVAILABLE] Too many connections; try again later\r\n');
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    socket.setNoDelay(true);
    const session = new Session(socket, { ...this.deps, secureContext: () => this.context }, secure, listener, socket.remoteAddress ?? '', randomBytes(6).toString('hex'));
    this.sessions.add(session);
    session.run().catch((err: unknown) => {
      log.error('IMAP session failed', { err: errorMessage(err) });
      session.close();
    }).finally(() => this.sessions.delete(session));
  }

  async listen(): Promise<ImapPorts> {
    const { config } = this.deps;
    if (config.port !== null) {
      this.plain = createServer((socket) => this.accept(socket, false, 'imap'));
      this.ports.port = await bind(this.plain, config.host, config.port);
    }
    if (config.tlsPort !== null) {
      this.tls = createTlsServer({ cert: this.material.cert, key: this.material.key, handshakeTimeout: 30000 }, (socket: TLSSocket) => this.accept(socket as unknown as Socket, true, 'imaps'));
      this.tls.on('tlsClientError', (err) => this.deps.log.debug('IMAP TLS handshake failed', { err: err.message }));
      this.ports.tlsPort = await bind(this.tls, config.host, config.tlsPort);
    }
    return this.ports;
  }

  addresses(): ImapPorts {
    return { ...this.ports };
  }

  async close(): Promise<void> {
    const closing = [this.plain, this.tls].filter((s): s is Server => s !== null).map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.sessions) {
      s.out.line('* BYE Server shutting down');
      s.close();
    }
    for (const sock of this.sockets) setTimeout(() => sock.destroy(), 500).unref();
    await Promise.race([Promise.all(closing), new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
  }
}

function bind(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
