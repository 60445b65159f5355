// What the journaling endpoint (receiver.ts) and the relay proxy (relay-listener.ts) share about
// smtp-server: a session in the hook API's shapes, the listener options both configure alike, and
// listening / graceful closing with the hook calls still in flight.
// Trusts smtp-server's parsed session; hands on plain values (no smtp-server types cross into hooks).
import type { SMTPServer, SMTPServerAddress, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import type { Envelope, SessionInfo } from '../app/hook-types.ts';

export function sessionInfo(session: SMTPServerSession, listener: string): SessionInfo {
  return {
    id: session.id,
    listener,
    remoteAddress: session.remoteAddress,
    remotePort: session.remotePort,
    helo: session.hostNameAppearsAs || '',
    secure: session.secure,
    user: typeof session.user === 'string' ? session.user : null,
  };
}

/** MAIL FROM / RCPT TO parameters as strings (a bare keyword becomes ""). */
export function addressParams(address: SMTPServerAddress): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(address.args || {})) out[k] = v === true ? '' : String(v);
  return out;
}

export function envelopeOf(session: SMTPServerSession): Envelope {
  const from = session.envelope.mailFrom;
  return { mailFrom: from ? from.address : '', rcptTo: session.envelope.rcptTo.map((r) => r.address) };
}

/** The listener limits and TLS both SMTP listeners configure the same way. */
export interface ListenerBasics {
  hostname: string;
  banner: string;
  maxMessageSize: number;
  maxConnections: number;
  idleTimeoutSeconds: number;
  tls: { key: Buffer; cert: Buffer };
}

/**
 * smtp-server options shared by the journaling endpoint and the relay proxy: size, connection and idle
 * limits, TLS material, no reverse lookups or library logging, the extensions both advertise.
 */
export function baseServerOptions(b: ListenerBasics): SMTPServerOptions {
  return {
    name: b.hostname,
    banner: b.banner,
    size: b.maxMessageSize,
    maxClients: b.maxConnections,
    socketTimeout: b.idleTimeoutSeconds * 1000,
    closeTimeout: 5000,
    disableReverseLookup: true,
    logger: false,
    key: b.tls.key,
    cert: b.tls.cert,
    hidePIPELINING: false,
    hide8BITMIME: false,
    hideSMTPUTF8: false,
    hideDSN: false,
    authMethods: ['PLAIN', 'LOGIN'],
  };
}

/**
 * A new certificate for a running listener (SIGHUP): smtp-server rebuilds its contexts, which every later
 * STARTTLS or implicit-TLS handshake uses; sessions already encrypted keep theirs.
 */
export function swapSmtpTls(server: SMTPServer | null, tls: { key: Buffer; cert: Buffer }): void {
  server?.updateSecureContext({ key: tls.key, cert: tls.cert });
}

/** The callback-based hook calls smtp-server is waiting on, so a graceful close can wait for them. */
export class InFlight {
  private readonly pending = new Set<Promise<unknown>>();

  /** Run p to smtp-server's callback and remember it until it settles. */
  track<T>(p: Promise<T>, cb: (err: Error | null, value?: T) => void): void {
    this.pending.add(p);
    p.then((v) => cb(null, v), (err: Error) => cb(err)).finally(() => this.pending.delete(p));
  }

  settled(): Promise<unknown> {
    return Promise.allSettled([...this.pending]);
  }
}

/** Listen and resolve with the bound port (the configured one, or the one the OS chose for 0). */
export async function listenSmtp(server: SMTPServer, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const addr = server.server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}

/** Stop accepting; wait for in-flight transactions and the close itself, each at most graceMs. */
export async function closeSmtp(server: SMTPServer, inFlight: InFlight, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const deadline = new Promise((r) => setTimeout(r, graceMs).unref());
  await Promise.race([inFlight.settled(), deadline]);
  await Promise.race([closed, deadline]);
}
