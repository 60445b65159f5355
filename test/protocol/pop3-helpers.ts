// Test helpers for the POP3 proxy: a scripted upstream POP3 server (a real TCP server with an
// in-memory mailbox that can also misbehave on purpose: stall, cut off, send malformed replies) and
// a small line-oriented POP3 client for transcripts. Not a test file itself.
import { createHash } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { dotStuff } from '../../core/pop3/dot-decoder.ts';

export type Misbehaviour =
  | 'greeting-stall' | 'greeting-err' | 'greeting-malformed'
  | 'retr-status-malformed' | 'retr-stall-mid' | 'retr-close-mid' | 'list-endless' | 'capa-pipelining';

export interface FakeUpstreamOptions {
  user?: string;
  password?: string;
  messages: Buffer[];
  misbehave?: Misbehaviour[];
}

/** A POP3 server with one mailbox; records every command line it receives. */
export class FakeUpstream {
  readonly commands: string[] = [];
  /** Messages (1-based numbers) deleted by a session that ended with QUIT. */
  readonly deleted: number[] = [];
  connections = 0;
  quits = 0;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;
  readonly timestamp = `<${process.pid}.${Date.now()}@fake.example>`;

  constructor(private readonly opts: FakeUpstreamOptions) {}

  private has(m: Misbehaviour): boolean {
    return this.opts.misbehave?.includes(m) ?? false;
  }

  async start(): Promise<number> {
    this.server = createServer((s) => this.session(s));
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this.port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private session(s: Socket): void {
    this.connections += 1;
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    const user = this.opts.user ?? 'alice';
    const password = this.opts.password ?? 'secret-pw';
    const marked = new Set<number>();
    let authed = false;
    let pendingUser: string | null = null;
    let saslWait = false;
    const w = (line: string): boolean => s.write(line + '\r\n');
    if (this.has('greeting-stall')) return;
    if (this.has('greeting-err')) return void w('-ERR [SYS/TEMP] too busy');
    if (this.has('greeting-malformed')) return void w('HELLO there');
    w(`+OK Fake POP3 ready ${this.timestamp}`);
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        this.commands.push(line);
        if (saslWait) {
          saslWait = false;
          authed = checkPlain(line, user, password);
          w(authed ? '+OK Logged in' : '-ERR [AUTH] Authentication failed');
          continue;
        }
        const [verb = '', ...args] = line.split(' ');
        const msgOf = (a: string | undefined): Buffer | null => {
          const n = Number(a);
          const m = Number.isInteger(n) && n >= 1 ? this.opts.messages[n - 1] : undefined;
          return m && !marked.has(n) ? m : null;
        };
        switch (verb.toUpperCase()) {
          case 'CAPA':
            w('+OK');
            for (const c of ['TOP', 'UIDL', 'USER', 'SASL PLAIN LOGIN CRAM-MD5', 'STLS', 'RESP-CODES', 'X-SECRET-EXTENSION', ...(this.has('capa-pipelining') ? ['PIPELINING'] : [])]) w(c);
            w('.');
            break;
          case 'USER':
            pendingUser = args.join(' ');
            w('+OK');
            break;
          case 'PASS':
            authed = pendingUser === user && args.join(' ') === password;
            w(authed ? '+OK Logged in' : '-ERR [AUTH] Authentication failed');
            break;
          case 'APOP': {
            const digest = createHash('md5').update(this.timestamp + password).digest('hex');
            authed = args[0] === user && args[1] === digest;
            w(authed ? '+OK Logged in' : '-ERR [AUTH] Authentication failed');
            break;
          }
          case 'AUTH':
            if (args[1] === undefined) {
              saslWait = true;
              w('+ ');
            } else {
              authed = checkPlain(args[1], user, password);
              w(authed ? '+OK Logged in' : '-ERR [AUTH] Authentication failed');
            }
            break;
          case 'STAT': {
            const live = this.opts.messages.filter((_, i) => !marked.has(i + 1));
            w(`+OK ${live.length} ${live.reduce((a, m) => a + m.length, 0)}`);
            break;
          }
          case 'LIST':
            if (this.has('list-endless')) {
              w('+OK');
              const spam = (): void => {
                if (s.destroyed) return;
                while (s.write('1 100\r\n'.repeat(1000))) { /* until backpressure */ }
                s.once('drain', spam);
              };
              spam();
              break;
            }
            if (args[0] !== undefined) {
              const m = msgOf(args[0]);
              w(m ? `+OK ${args[0]} ${m.length}` : '-ERR no such message');
              break;
            }
            w('+OK');
            this.opts.messages.forEach((m, i) => (marked.has(i + 1) ? undefined : w(`${i + 1} ${m.length}`)));
            w('.');
            break;
          case 'UIDL':
            w('+OK');
            this.opts.messages.forEach((m, i) => (marked.has(i + 1) ? undefined : w(`${i + 1} uid-${createHash('sha1').update(m).digest('hex').slice(0, 12)}`)));
            w('.');
            break;
          case 'TOP': {
            const m = msgOf(args[0]);
            if (!m) { w('-ERR no such message'); break; }
            const text = m.toString('latin1');
            const head = text.slice(0, text.indexOf('\r\n\r\n') + 4);
            w('+OK');
            s.write(dotStuff(Buffer.from(head, 'latin1')));
            w('.');
            break;
          }
          case 'RETR': {
            const m = msgOf(args[0]);
            if (!authed) { w('-ERR not logged in'); break; }
            if (!m) { w('-ERR no such message'); break; }
            if (this.has('retr-status-malformed')) { w('OK here it comes'); break; }
            w(`+OK ${m.length} octets`);
            const stuffed = dotStuff(m);
            if (this.has('retr-stall-mid')) { s.write(stuffed.subarray(0, Math.floor(stuffed.length / 2))); break; }
            if (this.has('retr-close-mid')) { s.end(stuffed.subarray(0, Math.floor(stuffed.length / 2))); break; }
            s.write(stuffed);
            w('.');
            break;
          }
          case 'DELE': {
            const n = Number(args[0]);
            if (!msgOf(args[0])) { w('-ERR no such message'); break; }
            marked.add(n);
            w(`+OK message ${n} deleted`);
            break;
          }
          case 'RSET':
            marked.clear();
            w('+OK');
            break;
          case 'NOOP':
            w('+OK');
            break;
          case 'QUIT':
            this.quits += 1;
            this.deleted.push(...marked);
            s.end('+OK Bye\r\n');
            break;
          default:
            w('-ERR unknown command');
        }
      }
    });
  }
}

function checkPlain(b64: string, user: string, password: string): boolean {
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  return parts[1] === user && parts[2] === password;
}

/** A minimal POP3 client for transcripts: raw lines in, raw bytes out. */
export class Pop3TestClient {
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: Socket | TLSSocket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static open(port: number, opts: { tls?: boolean } = {}): Promise<Pop3TestClient> {
    return new Promise((resolve, reject) => {
      const s = opts.tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : connect(port, '127.0.0.1');
      s.once(opts.tls ? 'secureConnect' : 'connect', () => resolve(new Pop3TestClient(s)));
      s.once('error', reject);
    });
  }

  /** Upgrades after "+OK" to STLS (the reader moves to the TLS socket). */
  async startTls(): Promise<Pop3TestClient> {
    const plain = this.socket as Socket;
    plain.removeAllListeners('data');
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const t = tlsConnect({ socket: plain, rejectUnauthorized: false });
      t.once('secureConnect', () => resolve(t));
      t.once('error', reject);
    });
    return new Pop3TestClient(secure);
  }

  private async until(pred: () => number, timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = pred();
      if (n >= 0) {
        const out = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
        return out;
      }
      if (this.closed) throw new Error(`Connection closed; unread: ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out; unread: ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** One reply line without CRLF. */
  async line(timeoutMs = 10000): Promise<string> {
    const raw = await this.until(() => {
      const i = this.buf.indexOf('\r\n');
      return i === -1 ? -1 : i + 2;
    }, timeoutMs);
    return raw.subarray(0, raw.length - 2).toString('latin1');
  }

  /** The raw (still dot-stuffed) body of a multi-line reply, up to and excluding the "." line. */
  async body(timeoutMs = 10000): Promise<Buffer> {
    let from = 0;
    const raw = await this.until(() => {
      if (this.buf.subarray(0, 3).equals(Buffer.from('.\r\n'))) return 3;
      const i = this.buf.indexOf('\r\n.\r\n', from);
      from = Math.max(0, this.buf.length - 4);
      return i === -1 ? -1 : i + 5;
    }, timeoutMs);
    return raw.subarray(0, raw.length - 3);
  }

  async cmd(line: string): Promise<string> {
    this.socket.write(line + '\r\n');
    return this.line();
  }

  /** Bytes received and not yet consumed. */
  get pending(): Buffer {
    return this.buf;
  }

  /** Waits for the server to close the connection; returns what it sent meanwhile. */
  async closedBy(timeoutMs = 10000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`Server did not close; unread: ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    const text = this.buf.toString('latin1');
    this.buf = Buffer.alloc(0);
    return text;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Unstuffs a dot-stuffed body (what a client does). */
export function unstuff(body: Buffer): Buffer {
  return Buffer.from(body.toString('latin1').replace(/(^|\n)\./g, '$1'), 'latin1');
}
