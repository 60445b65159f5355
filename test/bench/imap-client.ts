// A small raw-socket IMAP client for the IMAP benchmark: sends one tagged command at a time and
// counts the response bytes, skipping literal contents without copying or parsing them, so the client
// costs far less CPU than the servers it measures (imapflow parses every response into objects, which
// on a 2-core machine would cap both servers at the client's speed). Plain TCP, or implicit TLS (the
// benches' self-signed certificates are not verified).
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface CommandResult {
  status: 'OK' | 'NO' | 'BAD';
  /** Bytes received for this command (untagged data, literals, tagged line). */
  bytes: number;
  /** Each untagged line (literal contents excluded), when capture is on. */
  untagged: string[];
  text: string;
}

const LITERAL_END = /\{(\d+)\+?\}\r\n$/;

export class RawImap {
  private pending: Buffer | undefined;
  private literalLeft = 0;
  private continuing = false;
  private head = '';
  private tagCounter = 0;
  private waiting: { tag: string; resolve: (r: CommandResult) => void; reject: (e: Error) => void; bytes: number; untagged: string[]; capture: boolean } | undefined;
  private continuationWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private greeting: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    const fail = (err: Error): void => {
      this.closedError = err;
      this.waiting?.reject(err);
      this.waiting = undefined;
      this.continuationWaiter?.reject(err);
      this.continuationWaiter = undefined;
      this.greeting?.reject(err);
      this.greeting = undefined;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static async connect(port: number, host = '127.0.0.1', timeoutMs = 30_000, tls = false): Promise<RawImap> {
    const socket = tls ? tlsConnect({ port, host, rejectUnauthorized: false }) : connect({ port, host });
    const c = new RawImap(socket);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no IMAP greeting')), timeoutMs);
      c.greeting = {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
    });
    return c;
  }

  private onData(chunk: Buffer): void {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    if (this.waiting) this.waiting.bytes += chunk.length;
    let i = 0;
    while (i < data.length) {
      if (this.literalLeft > 0) {
        const take = Math.min(this.literalLeft, data.length - i);
        this.literalLeft -= take;
        i += take;
        continue;
      }
      const nl = data.indexOf(10, i);
      if (nl < 0) {
        this.pending = Buffer.from(data.subarray(i));
        if (this.pending.length > 1024 * 1024) throw new Error('IMAP line longer than 1 MiB');
        return;
      }
      const segment = data.subarray(i, Math.min(nl + 1, i + 256)).toString('latin1');
      const lineEnd = nl - i + 1 <= 256 ? segment : data.subarray(Math.max(i, nl - 30), nl + 1).toString('latin1');
      if (!this.continuing) this.head = this.waiting?.capture ? data.subarray(i, nl + 1).toString('latin1') : segment.slice(0, 200);
      i = nl + 1;
      const lit = LITERAL_END.exec(lineEnd);
      if (lit) {
        this.literalLeft = Number(lit[1]);
        this.continuing = true;
        continue;
      }
      this.continuing = false;
      this.line(this.head);
    }
  }

  private line(head: string): void {
    if (this.greeting) {
      const g = this.greeting;
      this.greeting = undefined;
      if (head.startsWith('* OK') || head.startsWith('* PREAUTH')) g.resolve();
      else g.reject(new Error(`bad greeting: ${head.trim()}`));
      return;
    }
    if (head.startsWith('+')) {
      const w = this.continuationWaiter;
      this.continuationWaiter = undefined;
      w?.resolve();
      return;
    }
    const w = this.waiting;
    if (!w) return;
    if (head.startsWith(w.tag + ' ')) {
      this.waiting = undefined;
      const rest = head.slice(w.tag.length + 1);
      const status = rest.startsWith('OK') ? 'OK' : rest.startsWith('NO') ? 'NO' : 'BAD';
      w.resolve({ status, bytes: w.bytes, untagged: w.untagged, text: rest.trim() });
    } else if (w.capture && w.untagged.length < 10_000) {
      w.untagged.push(head.trimEnd());
    }
  }

  /** Sends one command (without tag and CRLF) and resolves with its tagged completion. */
  command(text: string, capture = false): Promise<CommandResult> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.waiting) return Promise.reject(new Error('a command is already running'));
    const tag = `B${++this.tagCounter}`;
    return new Promise((resolve, reject) => {
      this.waiting = { tag, resolve, reject, bytes: 0, untagged: [], capture };
      this.socket.write(`${tag} ${text}\r\n`);
    });
  }

  /** Like command(), but a NO or BAD is an error. */
  async ok(text: string, capture = false): Promise<CommandResult> {
    const r = await this.command(text, capture);
    if (r.status !== 'OK') throw new Error(`${text.slice(0, 80)}: ${r.status} ${r.text}`);
    return r;
  }

  /** Starts IDLE and resolves when the server sends its continuation. */
  idle(): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.continuationWaiter = { resolve, reject };
      this.waiting = { tag: `B${++this.tagCounter}`, resolve: () => undefined, reject: () => undefined, bytes: 0, untagged: [], capture: false };
      this.socket.write(`${this.waiting.tag} IDLE\r\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Quotes a string as an IMAP quoted string (the bench only uses plain ASCII). */
export function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => '\\' + c)}"`;
}
