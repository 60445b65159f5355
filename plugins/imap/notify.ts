// The provisioning notification: when IMAP access is switched on for a user, a short mail built from
// the configured template tells them how to connect. Delivered with nodemailer (as the import reports
// are) to the configured relay: STARTTLS when offered or required, every step timed out. Trusts the
// config; resolves when the relay accepted the message or throws with its reply.
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
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

/** Deliver one message; resolves when the relay accepted it (250 after DATA). */
export async function sendMail(config: NotifyConfig, hostname: string, to: string, message: string): Promise<void> {
  const { smtp } = config;
  const timeout = smtp.timeoutSeconds * 1000;
  const transport = nodemailer.createTransport({
    host: smtp.host, port: smtp.port, name: hostname, secure: smtp.secure, requireTLS: smtp.requireTls,
    tls: { rejectUnauthorized: smtp.rejectUnauthorized, servername: smtp.host },
    connectionTimeout: timeout, greetingTimeout: timeout, socketTimeout: timeout,
  });
  try {
    await transport.sendMail({ envelope: { from: config.from, to: [to] }, raw: message });
  } finally {
    transport.close();
  }
}
