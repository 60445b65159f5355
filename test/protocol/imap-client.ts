// A raw IMAP client for protocol transcripts (shared by the imap-*.test.ts files): send exact bytes,
// read whole responses (literals included) up to the tagged status line, STARTTLS, and a test server
// with the imap plugin, users and mail delivered over SMTP.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { SmtpClient } from '../helpers/smtp-client.ts';
import { hashPassword } from '../../core/smtp/password.ts';
import type { Config } from '../../core/config/schema.ts';

export interface Tagged {
  /** Untagged and continuation lines, literals inlined ("{n}\r\n<bytes>"). */
  lines: string[];
  status: string;
  /** "OK" | "NO" | "BAD". */
  kind: string;
  text: string;
}

export class ImapClient {
  private buffer = '';
  private waiters: Array<() => void> = [];
  private n = 0;
  closed = false;

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  private attach(socket: Socket | TLSSocket): void {
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

  static async open(port: number, tls = false): Promise<ImapClient> {
    const socket = tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once(tls ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    return new ImapClient(socket);
  }

  private async wait(timeoutMs: number, what: string): Promise<void> {
    if (this.closed) throw new Error(`Connection closed while waiting for ${what}; unread: ${JSON.stringify(this.buffer)}`);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`Nothing within ${timeoutMs} ms while waiting for ${what}; unread: ${JSON.stringify(this.buffer.slice(0, 500))}`)), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** One response unit: a line, with any literals it announces inlined. */
  async readUnit(timeoutMs = 10000): Promise<string> {
    for (;;) {
      let pos = 0;
      let complete = false;
      for (;;) {
        const lf = this.buffer.indexOf('\r\n', pos);
        if (lf < 0) break;
        const m = /\{(\d+)\}$/.exec(this.buffer.slice(pos, lf));
        if (!m) {
          pos = lf + 2;
          complete = true;
          break;
        }
        const end = lf + 2 + Number(m[1]);
        if (this.buffer.length < end) break;
        pos = end;
      }
      if (complete) {
        const unit = this.buffer.slice(0, pos - 2);
        this.buffer = this.buffer.slice(pos);
        return unit;
      }
      await this.wait(timeoutMs, 'a response line');
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Send "<tag> <text>" and collect everything up to the tagged reply. */
  async cmd(text: string, timeoutMs = 10000): Promise<Tagged> {
    const tag = `T${++this.n}`;
    this.write(`${tag} ${text}\r\n`);
    return this.until(tag, timeoutMs);
  }

  async until(tag: string, timeoutMs = 10000): Promise<Tagged> {
    const lines: string[] = [];
    for (;;) {
      const unit = await this.readUnit(timeoutMs);
      if (unit.startsWith(tag + ' ')) {
        const status = unit.slice(tag.length + 1);
        const kind = status.split(' ')[0] ?? '';
        return { lines, status, kind, text: lines.join('\n') };
      }
      lines.push(unit);
    }
  }

  async starttls(): Promise<void> {
    const r = await this.cmd('STARTTLS');
    if (r.kind !== 'OK') throw new Error(`STARTTLS refused: ${r.status}`);
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain as Socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
  }

  /** Wait until the server closes the connection; returns what it sent before. */
  async closedBy(timeoutMs = 10000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`Still open after ${timeoutMs} ms; unread: ${JSON.stringify(this.buffer.slice(0, 300))}`);
      await this.wait(deadline - Date.now(), 'the server to close').catch(() => undefined);
    }
    return this.buffer;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface ImapTestServer extends TestServer {
  imapPort: number;
  imapsPort: number;
  deliver(from: string, to: string[], message: string): Promise<void>;
  /** Archive a message straight into one user's folder (as an importer would). */
  file(user: string, folder: string, message: string): Promise<void>;
  login(user: string, password?: string): Promise<ImapClient>;
}

export interface TestUser {
  name: string;
  addresses: string[];
  password?: string;
  imap?: boolean;
  privileges?: Array<'auditor' | 'admin'>;
  groups?: string[];
}

export const PASSWORD = 'correct horse battery';

export async function startImapServer(
  users: TestUser[], imapConfig: Record<string, unknown> = {}, signIn: Partial<Config['signIn']> = { baseDelayMs: 0 },
  morePlugins: Array<{ name: string; config: Record<string, unknown> }> = [],
): Promise<ImapTestServer> {
  const server = await startTestServer((c) => {
    c.plugins.push({ name: 'imap', config: { port: 0, tlsPort: 0, allowPlaintext: true, ...imapConfig } }, ...morePlugins);
    Object.assign(c.signIn, signIn);
  });
  const hash = await hashPassword(PASSWORD);
  for (const u of users) {
    await server.archive.addUser({ name: u.name, addresses: u.addresses, groups: u.groups ?? [], privileges: u.privileges ?? [] });
    await server.archive.updateUser(u.name, { passwordHash: u.password === undefined ? hash : await hashPassword(u.password), imapAccess: u.imap ?? true });
  }
  const ports = server.running.app.service('imap').ports();
  return {
    ...server,
    imapPort: ports.port ?? 0,
    imapsPort: ports.tlsPort ?? 0,
    async deliver(from, to, message) {
      const smtp = await SmtpClient.open(server.smtpPort);
      await smtp.read();
      await smtp.cmd('EHLO test.example');
      await smtp.cmd(`MAIL FROM:<${from}>`);
      for (const r of to) await smtp.cmd(`RCPT TO:<${r}>`);
      const reply = await smtp.cmd('DATA');
      if (reply.code !== 354) throw new Error(`DATA refused: ${reply.text}`);
      const end = await smtp.cmd(message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..') + '\r\n.');
      if (end.code !== 250) throw new Error(`Message refused: ${end.text}`);
      await smtp.cmd('QUIT').catch(() => undefined);
      await server.settle();
    },
    async file(user, folder, message) {
      await server.running.app.service('capture').submit(Buffer.from(message.replace(/\r?\n/g, '\r\n')), {
        listener: 'test-import', envelope: { mailFrom: '', rcptTo: [] }, session: { remoteAddress: '127.0.0.1', helo: 'test', user: null },
        assign: { user, direction: 'received', folder, exclusive: true, reason: 'test import' },
      });
      await server.settle();
    },
    async login(user, password = PASSWORD) {
      const c = await ImapClient.open(ports.port ?? 0);
      await c.readUnit();
      const r = await c.cmd(`LOGIN ${user} "${password}"`);
      if (r.kind !== 'OK') throw new Error(`LOGIN ${user} failed: ${r.status}`);
      return c;
    },
  };
}

export function message(opts: { from: string; to: string; subject: string; body?: string; date?: string; extra?: string }): string {
  return [
    `From: ${opts.from}`,
    `To: ${opts.to}`,
    `Subject: ${opts.subject}`,
    `Date: ${opts.date ?? 'Mon, 02 Mar 2026 10:00:00 +0000'}`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@test.example>`,
    ...(opts.extra ? [opts.extra] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    opts.body ?? 'Hello there.',
    '',
  ].join('\r\n');
}
