// TLS settings for import sources: normal verification, "accept a self-signed certificate", or a
// pinned SHA-256 fingerprint. A pin is checked before any credential is sent: a probe connection
// fetches the certificate (through STARTTLS/STLS when asked), compares its fingerprint, and the real
// connection then trusts exactly that certificate. Trusts nothing the server says until then.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { PosternError } from '../errors.ts';

export interface TlsChoice {
  tls: 'implicit' | 'starttls' | 'none';
  acceptSelfSigned: boolean;
  fingerprint?: string | undefined;
}

const normal = (fp: string): string => fp.replace(/:/g, '').toUpperCase();

/** Read one CRLF line from a plain socket (bounded), for the STARTTLS exchange of the probe. */
function readLine(socket: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = (err: Error | null, line?: string): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onErr);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(line ?? '');
    };
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        socket.pause();
        const rest = buf.slice(nl + 1);
        if (rest) socket.unshift(Buffer.from(rest, 'latin1'));
        done(null, buf.slice(0, nl).replace(/\r$/, ''));
      } else if (buf.length > 8192) done(new PosternError('INVALID_INPUT', 'Server line too long during the certificate probe'));
    };
    const onErr = (e: Error): void => done(e);
    const onClose = (): void => done(new PosternError('UNAVAILABLE', 'Server closed the connection during the certificate probe'));
    const timer = setTimeout(() => done(new PosternError('UNAVAILABLE', 'Certificate probe timed out')), timeoutMs);
    socket.on('data', onData);
    socket.once('error', onErr);
    socket.once('close', onClose);
    socket.resume();
  });
}

async function probe(host: string, port: number, mode: 'implicit' | 'starttls', protocol: 'imap' | 'pop3', timeoutMs: number): Promise<PeerCertificate> {
  let plain: Socket | undefined;
  if (mode === 'starttls') {
    const s = netConnect({ host, port });
    plain = s;
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
      setTimeout(() => reject(new PosternError('UNAVAILABLE', 'Certificate probe timed out')), timeoutMs).unref();
    });
    await readLine(s, timeoutMs);
    s.write(protocol === 'imap' ? 'P1 STARTTLS\r\n' : 'STLS\r\n');
    for (;;) {
      const line = await readLine(s, timeoutMs);
      if (protocol === 'pop3' || line.startsWith('P1 ')) {
        if (!/^(P1 OK|\+OK)/i.test(line)) throw new PosternError('UNAVAILABLE', `Server refused STARTTLS: ${line.slice(0, 200)}`);
        break;
      }
    }
  }
  return new Promise((resolve, reject) => {
    const t = tlsConnect({ ...(plain ? { socket: plain } : { host, port }), servername: host, rejectUnauthorized: false }, () => {
      const cert = t.getPeerCertificate(true);
      t.destroy();
      plain?.destroy();
      resolve(cert);
    });
    t.once('error', (e) => {
      plain?.destroy();
      reject(e);
    });
    t.setTimeout(timeoutMs, () => t.destroy(new PosternError('UNAVAILABLE', 'Certificate probe timed out')));
  });
}

/** The tls.connect options for a source (empty for plain connections). */
export async function tlsOptionsFor(host: string, port: number, choice: TlsChoice, protocol: 'imap' | 'pop3', timeoutMs = 15_000): Promise<ConnectionOptions> {
  if (choice.tls === 'none') return {};
  if (choice.acceptSelfSigned) return { rejectUnauthorized: false, servername: host };
  if (!choice.fingerprint) return { rejectUnauthorized: true, servername: host };
  const want = normal(choice.fingerprint);
  const cert = await probe(host, port, choice.tls, protocol, timeoutMs);
  if (normal(cert.fingerprint256) !== want) {
    throw new PosternError('FORBIDDEN', `Certificate of ${host}:${port} has fingerprint ${cert.fingerprint256}, not the pinned one`);
  }
  const pem = `-----BEGIN CERTIFICATE-----\n${cert.raw.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
  return {
    rejectUnauthorized: true,
    servername: host,
    ca: [pem],
    checkServerIdentity: (_h, c) => (normal(c.fingerprint256) === want ? undefined : new Error('Certificate does not match the pinned fingerprint')),
  };
}
