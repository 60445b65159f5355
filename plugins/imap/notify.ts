// The provisioning notification: when IMAP access is switched on for a user, a short mail built from
// the configured template tells them how to connect. Sent with a minimal SMTP client (EHLO, STARTTLS
// when offered or required, MAIL/RCPT/DATA) to the configured relay; every reply line and the whole
// exchange are bounded and timed out. Trusts the config; hands back "sent" or throws with the reply.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

export const notifyConfig = z.strictObject({
  enabled: z.boolean().default(false),
  smtp: z.strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(25),
    /** Implicit TLS (port 465); otherwise STARTTLS is used when offered. */
    secure: z.boolean().default(false),
    requireTls: z.boolean().default(false),
    rejectUnauthorized: z.boolean().default(true),
    timeoutSeconds: z.number().min(1).max(300).default(30),
  }).default({ host: '127.0.0.1', port: 25, secure: false, requireTls: false, rejectUnauthorized: true, timeoutSeconds: 30 }),
  from: z.string().regex(/^[^\s<>@]+@[^\s<>@]+$/, 'must be a mail address').default('postmaster@localhost'),
  subject: z.string().min(1).max(200).default('Your mail archive is available over IMAP'),
  /** Placeholders: {{user}} {{address}} {{host}} {{port}} {{tlsPort}}. */
  template: z.string().min(1).max(20000).default([
    'Hello {{user}},',
    '',
    'your mail archive can now be read with any IMAP mail program (read-only):',
    '',
    '  Server:    {{host}}',
    '  Port:      {{tlsPort}} (SSL/TLS), or {{port}} with STARTTLS',
    '  User name: {{user}} (or {{address}})',
    '  Password:  your archive password',
    '',
    'Messages can be read and searched, never deleted or moved.',
  ].join('\n')),
});

export type NotifyConfig = z.output<typeof notifyConfig>;

export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (all, key: string) => values[key] ?? all);
}

function encodeHeader(text: string): string {
  return /^[\x20-\x7e]*$/.test(text) ? text : `=?utf-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;
}

export function buildMessage(from: string, to: string, subject: string, body: string, hostname: string): string {
  const base64 = Buffer.from(body.replace(/\r?\n/g, '\r\n'), 'utf8').toString('base64').replace(/.{76}/g, '$&\r\n');
  return [
    `From: ${from}`,
    `To: ${to}`,
    `Subject: ${encodeHeader(subject)}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${hostname}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    base64,
    '',
  ].join('\r\n');
}

class SmtpConversation {
  private buffer = '';
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(private socket: Socket | TLSSocket) {
    this.listen(socket);
  }

  private listen(socket: Socket | TLSSocket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      if (this.buffer.length > 64 * 1024) this.failure = new Error('SMTP reply too long');
      this.waiter?.();
    });
    const fail = (err: Error): void => {
      this.failure ??= err;
      this.waiter?.();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('SMTP server closed the connection')));
  }

  async reply(expect: number): Promise<string[]> {
    for (;;) {
      const m = /^((?:\d{3}-[^\r\n]*\r?\n)*)(\d{3})(?: [^\r\n]*)?\r?\n/.exec(this.buffer);
      if (m) {
        this.buffer = this.buffer.slice(m[0].length);
        const lines = m[0].split(/\r?\n/).filter((l) => l !== '');
        if (Number(m[2]) !== expect) throw new Error(`SMTP server answered "${lines.join(' ').slice(0, 200)}" (expected ${expect})`);
        return lines;
      }
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
      this.waiter = null;
    }
  }

  async cmd(line: string, expect: number): Promise<string[]> {
    this.socket.write(line + '\r\n');
    return this.reply(expect);
  }

  upgrade(rejectUnauthorized: boolean, host: string): Promise<void> {
    this.socket.removeAllListeners('data');
    const secure = tlsConnect({ socket: this.socket as Socket, servername: host, rejectUnauthorized });
    this.socket = secure;
    this.buffer = '';
    this.listen(secure);
    return new Promise((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
  }

  write(data: string): void {
    this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Deliver one message; resolves when the relay accepted it (250 after DATA). */
export async function sendMail(config: NotifyConfig, hostname: string, to: string, message: string): Promise<void> {
  const { smtp } = config;
  const socket = smtp.secure
    ? tlsConnect({ host: smtp.host, port: smtp.port, servername: smtp.host, rejectUnauthorized: smtp.rejectUnauthorized })
    : netConnect(smtp.port, smtp.host);
  socket.setTimeout(smtp.timeoutSeconds * 1000, () => socket.destroy(new Error(`SMTP server ${smtp.host}:${smtp.port} timed out`)));
  const c = new SmtpConversation(socket);
  try {
    await c.reply(220);
    let ehlo = await c.cmd(`EHLO ${hostname}`, 250);
    if (!smtp.secure) {
      const offered = ehlo.some((l) => /^250[ -]STARTTLS\b/i.test(l));
      if (offered) {
        await c.cmd('STARTTLS', 220);
        await c.upgrade(smtp.rejectUnauthorized, smtp.host);
        ehlo = await c.cmd(`EHLO ${hostname}`, 250);
      } else if (smtp.requireTls) {
        throw new Error(`SMTP server ${smtp.host}:${smtp.port} does not offer STARTTLS`);
      }
    }
    await c.cmd(`MAIL FROM:<${config.from}>`, 250);
    await c.cmd(`RCPT TO:<${to}>`, 250);
    await c.cmd('DATA', 354);
    c.write(message.replace(/^\./gm, '..'));
    await c.cmd('.', 250);
    await c.cmd('QUIT', 221).catch(() => undefined);
  } finally {
    c.close();
  }
}
