// IMAP interop targets: the same real corpus messages served by Postern's imap plugin (delivered over
// SMTP into a real `postern serve`, archived, then read over IMAP) and by a private Dovecot (Maildir).
// The imap-*.test.ts files run every client against both: Dovecot is the reference that proves a test
// is right, Postern is what it checks. Also used by test/bench/imap.ts.
//
// Messages are taken from the SpamAssassin corpus as an MTA would hand them on: the mbox "From "
// line dropped, line endings made CRLF, ending in CRLF. So both servers must serve them byte-for-byte.
// Set IMAP_INTEROP_TARGETS=dovecot (or postern) to run one side only while developing.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { loadCorpus } from '../helpers/corpus.ts';
import { SmtpClient } from '../helpers/smtp-client.ts';
import { makeCertificate, startDovecot } from './dovecot.ts';
import { freePort, makeTempDir, startPostern, waitFor, type PosternServer } from './harness.ts';

export const USER = 'alice';
export const PASSWORD = 'Corr3ct-horse-battery';
export const ADDRESS = 'alice@example.test';

export type TargetName = 'postern' | 'dovecot';

export interface ImapTarget {
  name: TargetName;
  host: string;
  /** Plain port with STARTTLS. */
  port: number;
  /** Implicit TLS port. */
  tlsPort: number;
  /** PEM of the self-signed server certificate, and its file. */
  ca: string;
  caFile: string;
  user: string;
  password: string;
  /** Adds one message to INBOX; resolves once the server can serve it. */
  deliver(bytes: Buffer): Promise<void>;
  /** The server's log so far (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

export function selectedTargets(): TargetName[] {
  const env = process.env.IMAP_INTEROP_TARGETS;
  if (!env) return ['dovecot', 'postern'];
  const names = env.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (n !== 'dovecot' && n !== 'postern') throw new Error(`IMAP_INTEROP_TARGETS: unknown target "${n}"`);
  return names as TargetName[];
}

/** A message as it travels over SMTP: no mbox "From " line, CRLF line endings, final CRLF. */
export function asSmtpMessage(raw: Buffer): Buffer {
  let text = raw.toString('latin1');
  if (text.startsWith('From ')) text = text.slice(text.indexOf('\n') + 1);
  text = text.replace(/\r\n|\r|\n/g, '\r\n');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text, 'latin1');
}

/** N distinct corpus messages (about one in four multipart), each at most maxBytes, in a fixed order. */
export function corpusSample(n: number, maxBytes = 200_000): Buffer[] {
  const all = loadCorpus();
  const multipart: Buffer[] = [];
  const single: Buffer[] = [];
  const seen = new Set<string>();
  for (const raw of all) {
    const m = asSmtpMessage(raw);
    if (m.length > maxBytes) continue;
    const h = sha(m);
    if (seen.has(h)) continue;
    seen.add(h);
    (/^content-type:\s*multipart\//im.test(headerOf(m).toString('latin1')) ? multipart : single).push(m);
  }
  const out: Buffer[] = [];
  let mi = 0;
  let si = 0;
  while (out.length < n && (mi < multipart.length || si < single.length)) {
    const wantMultipart = out.length % 4 === 1;
    if ((wantMultipart && mi < multipart.length) || si >= single.length) out.push(multipart[mi++]!);
    else out.push(single[si++]!);
  }
  if (out.length < n) throw new Error(`corpus has only ${out.length} usable messages, ${n} wanted`);
  return out;
}

export function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The header block including the blank line. */
export function headerOf(m: Buffer): Buffer {
  const i = m.indexOf('\r\n\r\n');
  return i < 0 ? m : m.subarray(0, i + 4);
}

/** The unfolded raw value of the first header field `name`, or undefined. */
export function headerValue(m: Buffer, name: string): string | undefined {
  const text = headerOf(m).toString('latin1').replace(/\r\n[ \t]/g, ' ');
  const re = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im');
  return re.exec(text)?.[1]?.trim();
}

/** Dot-stuffs a CRLF message for SMTP DATA. */
function dotStuff(m: Buffer): Buffer {
  const text = m.toString('latin1');
  return Buffer.from((text.startsWith('.') ? '.' : '') + text.replace(/\r\n\./g, '\r\n..'), 'latin1');
}

async function expectCode(c: SmtpClient, line: string | null, code: number): Promise<void> {
  const r = line === null ? await c.read(60_000) : await c.cmd(line);
  if (r.code !== code) throw new Error(`SMTP ${line ?? '(end of DATA)'}: expected ${code}, got ${r.text}`);
}

/** Sends messages over one SMTP session each per worker (`concurrency` sessions); resolves after every 250. */
export async function smtpSend(port: number, mails: Array<{ from: string; to: string[]; bytes: Buffer }>, concurrency = 4): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    const c = await SmtpClient.open(port);
    try {
      await expectCode(c, null, 220);
      await expectCode(c, 'EHLO interop.test', 250);
      for (;;) {
        const mail = mails[next++];
        if (!mail) break;
        await expectCode(c, `MAIL FROM:<${mail.from}> BODY=8BITMIME`, 250);
        for (const to of mail.to) await expectCode(c, `RCPT TO:<${to}>`, 250);
        await expectCode(c, 'DATA', 354);
        c.write(dotStuff(mail.bytes));
        c.write('.\r\n');
        await expectCode(c, null, 250);
      }
      await c.cmd('QUIT').catch(() => undefined);
    } finally {
      c.close();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, mails.length)) }, worker));
}

export interface PosternImapOptions {
  /** Extra settings of the imap plugin (merged over host/port/tlsPort/tls). */
  imap?: Record<string, unknown>;
  env?: Record<string, string>;
  /** Called once `postern serve` answers its health check, before the messages are delivered. */
  booted?: () => void;
}

/** Writes a config file enabling the imap plugin with the given ports and certificate (and any other plugins named). */
export function posternConfig(dir: string, o: { port: number; tlsPort: number; certFile: string; keyFile: string; imap?: Record<string, unknown>; plugins?: Array<{ name: string; config?: Record<string, unknown> }> }): string {
  const imap = { host: '127.0.0.1', port: o.port, tlsPort: o.tlsPort, tls: { cert: o.certFile, key: o.keyFile }, ...o.imap };
  const file = join(dir, 'postern.yaml');
  // JSON is YAML: no quoting questions.
  writeFileSync(file, JSON.stringify({ plugins: [{ name: 'imap', config: imap }, ...(o.plugins ?? [])] }, null, 2) + '\n');
  return file;
}

/** Gives USER a password and IMAP access through the admin API of a running Postern. */
export async function enableImapUser(adminPort: number, dataDir: string, user: string, password: string): Promise<void> {
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const call = async (method: string, path: string, body: unknown): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  };
  await call('PUT', '/api/v1/account/password', { user, password });
  await call('PUT', `/api/v1/users/${user}/imap`, { enabled: true });
}

/** Number of messages in USER's FOLDER according to the admin API. */
export async function folderCount(adminPort: number, dataDir: string, user: string, folder: string): Promise<number> {
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const res = await fetch(`http://127.0.0.1:${adminPort}/api/v1/users/${user}/folders`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { folders?: Array<{ folder: string; messages: number }> };
  if (!res.ok) throw new Error(`GET folders: ${res.status} ${JSON.stringify(body)}`);
  return body.folders?.find((f) => f.folder === folder)?.messages ?? 0;
}

/**
 * A real `postern serve` with the imap plugin; `inbox` is delivered over SMTP to alice@example.test,
 * `sent` from alice to an outside address (Sent), and the call returns once all are archived.
 */
export async function startPosternTarget(inbox: Buffer[], sent: Buffer[], opts: PosternImapOptions = {}): Promise<ImapTarget & { server: PosternServer }> {
  const tmp = makeTempDir('postern-imap-');
  try {
    const cert = await makeCertificate(tmp.path);
    const port = await freePort();
    let tlsPort = await freePort();
    while (tlsPort === port) tlsPort = await freePort();
    const config = posternConfig(tmp.path, { port, tlsPort, certFile: cert.certFile, keyFile: cert.keyFile, ...(opts.imap ? { imap: opts.imap } : {}) });
    const server = await startPostern({ name: 'imap-interop', env: { POSTERN_CONFIG: config, POSTERN_IMAP_PORT: String(port), POSTERN_IMAPS_PORT: String(tlsPort), ...opts.env } });
    opts.booted?.();
    try {
      await server.addUser(USER, [ADDRESS]);
      await enableImapUser(server.adminPort, server.dataDir, USER, PASSWORD);
      await smtpSend(server.smtpPort, [
        ...inbox.map((bytes) => ({ from: 'sender@outside.test', to: [ADDRESS], bytes })),
        ...sent.map((bytes) => ({ from: ADDRESS, to: ['friend@outside.test'], bytes })),
      ]);
      await waitFor('all messages archived', async () =>
        (await folderCount(server.adminPort, server.dataDir, USER, 'Inbox')) >= inbox.length &&
        (sent.length === 0 || (await folderCount(server.adminPort, server.dataDir, USER, 'Sent')) >= sent.length) ? true : undefined, 120_000, 250);
    } catch (err) {
      const e = err as Error;
      e.message += `\n--- postern log tail ---\n${server.logs().split('\n').slice(-40).join('\n')}`;
      await server.stop().catch(() => undefined);
      throw e;
    }
    let inboxCount = inbox.length;
    return {
      name: 'postern', host: '127.0.0.1', port, tlsPort, ca: cert.certPem, caFile: cert.certFile, user: USER, password: PASSWORD, server,
      async deliver(bytes) {
        await smtpSend(server.smtpPort, [{ from: 'sender@outside.test', to: [ADDRESS], bytes }]);
        inboxCount++;
        const want = inboxCount;
        await waitFor('the new message archived', async () => ((await folderCount(server.adminPort, server.dataDir, USER, 'Inbox')) >= want ? true : undefined), 30_000, 50);
      },
      logs: () => server.logs(),
      async stop() {
        await server.stop().catch(() => undefined);
        tmp.cleanup();
      },
    };
  } catch (err) {
    tmp.cleanup();
    throw err;
  }
}

/** A private Dovecot holding the same messages as Maildir files (INBOX and Sent). */
export async function startDovecotTarget(inbox: Buffer[], sent: Buffer[]): Promise<ImapTarget> {
  const dc = await startDovecot({ name: 'imap-interop', protocols: ['imap'], users: [{ name: USER, password: PASSWORD, messages: inbox, folders: { Sent: sent } }] });
  return {
    name: 'dovecot', host: '127.0.0.1', port: dc.imapPort, tlsPort: dc.imapsPort, ca: dc.certPem, caFile: dc.certFile, user: USER, password: PASSWORD,
    async deliver(bytes) {
      dc.addMessage(USER, bytes);
    },
    logs: () => dc.logs(),
    stop: () => dc.stop(),
  };
}

export function startTarget(name: TargetName, inbox: Buffer[], sent: Buffer[]): Promise<ImapTarget> {
  return name === 'postern' ? startPosternTarget(inbox, sent) : startDovecotTarget(inbox, sent);
}

/** Finds the original a fetched message equals, by content; throws with a useful diff otherwise. */
export function matchOriginal(originals: Map<string, Buffer>, got: Buffer, what: string): Buffer {
  const hit = originals.get(sha(got));
  if (hit) return hit;
  const sameSize = [...originals.values()].filter((o) => o.length === got.length).length;
  throw new Error(`${what}: ${got.length} bytes equal no original (${sameSize} originals of that size); starts ${JSON.stringify(got.subarray(0, 160).toString('latin1'))}`);
}

export function byHash(messages: Buffer[]): Map<string, Buffer> {
  return new Map(messages.map((m) => [sha(m), m]));
}

/** A minimal client that keeps every byte (latin1 strings) of each command's answer. */
export class ByteClient {
  private buf = '';
  /** Data arrived since until() last looked (searched with a little of what came before it). */
  private fresh: string[] = [];
  private n = 0;
  /** Wakes the reader waiting in until() when data arrives. */
  private wake: (() => void) | null = null;
  private constructor(private readonly socket: TLSSocket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.fresh.push(d);
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }
  /** Over implicit TLS, checking the target's certificate. */
  static async open(port: number, ca: string): Promise<ByteClient> {
    const socket = connect({ port, host: '127.0.0.1', ca: [ca], servername: 'localhost' });
    await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
    const c = new ByteClient(socket);
    await c.until(/^\* OK.*\r\n/m);
    return c;
  }
  /**
   * Everything up to and including the first match of `re` (a line, at most OVERLAP characters): only
   * new data (with the OVERLAP characters before it) is searched as it arrives, so a long answer costs
   * one pass, not one per chunk.
   */
  private async until(re: RegExp, timeoutMs = 30_000): Promise<string> {
    const OVERLAP = 1024;
    const deadline = Date.now() + timeoutMs;
    let window = this.buf;
    this.fresh = [];
    for (;;) {
      if (re.test(window)) {
        const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
        g.lastIndex = Math.max(0, this.buf.length - window.length);
        const m = g.exec(this.buf) ?? re.exec(this.buf);
        if (m) {
          const out = this.buf.slice(0, m.index + m[0].length);
          this.buf = this.buf.slice(m.index + m[0].length);
          return out;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer matching ${re}; have ${JSON.stringify(this.buf.slice(-300))}`);
      if (this.fresh.length === 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 1000));
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
      window = window.slice(-OVERLAP) + this.fresh.join('');
      this.fresh = [];
    }
  }
  /** The untagged data of a command and its tagged status line ("OK …", "NO …", "BAD …"). */
  async cmd(cmd: string | Buffer): Promise<{ data: string; status: string }> {
    const tag = `zq${++this.n}`;
    this.socket.write(Buffer.concat([Buffer.from(`${tag} `), typeof cmd === 'string' ? Buffer.from(cmd, 'latin1') : cmd, Buffer.from('\r\n')]));
    const out = await this.until(new RegExp(`(?:^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`));
    const at = out.lastIndexOf(`${tag} `);
    return { data: out.slice(0, at), status: out.slice(at + tag.length + 1).trimEnd() };
  }
  /** The untagged data of a command that must answer OK. */
  async ok(cmd: string | Buffer): Promise<string> {
    const r = await this.cmd(cmd);
    if (!r.status.startsWith('OK')) throw new Error(`${typeof cmd === 'string' ? cmd : cmd.toString('latin1')}: ${r.status}`);
    return r.data;
  }
  close(): void {
    this.socket.destroy();
  }
}
