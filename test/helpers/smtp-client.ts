// A raw SMTP client for protocol transcripts: send exact bytes, read whole (multi-line) replies.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface Reply {
  code: number;
  lines: string[];
  text: string;
}

export class SmtpClient {
  private buffer = '';
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number, host = '127.0.0.1'): Promise<SmtpClient> {
    const socket = connect(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new SmtpClient(socket);
  }

  /** Next complete reply; rejects if the connection closes first or after timeoutMs. */
  async read(timeoutMs = 10000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^((?:\d{3}-[^\r\n]*\r\n)*)(\d{3})(?: [^\r\n]*)?\r\n/.exec(this.buffer);
      if (m) {
        const raw = m[0];
        this.buffer = this.buffer.slice(raw.length);
        const lines = raw.split('\r\n').filter((l) => l !== '');
        return { code: Number(m[2]), lines, text: lines.join('\n') };
      }
      if (this.closed) throw new Error(`Connection closed; unread: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`No reply within ${timeoutMs} ms; unread: ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Send a command line and return its reply. */
  async cmd(line: string): Promise<Reply> {
    this.write(line + '\r\n');
    return this.read();
  }

  async starttls(): Promise<void> {
    const reply = await this.cmd('STARTTLS');
    if (reply.code !== 220) throw new Error(`STARTTLS refused: ${reply.text}`);
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buffer = '';
    this.attach(secure);
  }

  async waitClosed(timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('Connection did not close');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One complete transaction; returns the reply to the end of DATA. Body must be dot-stuffed; a body ending in CRLF is sent as is. */
export async function sendMail(c: SmtpClient, from: string, to: string[], body: string | Buffer): Promise<Reply> {
  const mail = await c.cmd(`MAIL FROM:<${from}>`);
  if (mail.code !== 250) return mail;
  for (const r of to) {
    const rr = await c.cmd(`RCPT TO:<${r}>`);
    if (rr.code !== 250) return rr;
  }
  const data = await c.cmd('DATA');
  if (data.code !== 354) return data;
  c.write(body);
  const text = typeof body === 'string' ? body : body.toString('latin1');
  c.write(text.endsWith('\r\n') ? '.\r\n' : '\r\n.\r\n');
  return c.read(30000);
}
