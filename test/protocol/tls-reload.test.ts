// SIGHUP reloads the certificate of every TLS listener (SMTP STARTTLS, relay STARTTLS, POP3 STLS and
// POP3S, admin HTTPS, IMAP STARTTLS and IMAPS, web HTTPS): after the files are swapped and the signal
// sent, a new handshake on each sees the new certificate, while sessions opened before the signal stay
// open and keep answering. A pair that cannot be read leaves the old certificate in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { generate } from 'selfsigned';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { FakeUpstream } from './pop3-helpers.ts';

type Kind = 'smtp' | 'pop3-stls' | 'imap-starttls' | 'implicit';

/** A socket read line by line; switches to TLS in place. */
class Line {
  private buf = '';
  private waiters: Array<() => void> = [];
  closed = false;
  constructor(public socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  private attach(s: Socket | TLSSocket): void {
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      this.buf += d;
      for (const w of this.waiters.splice(0)) w();
    });
    s.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    s.on('error', () => undefined);
  }

  /** Everything up to and including the first match of `re`. */
  async until(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        const end = m.index + m[0].length;
        const out = this.buf.slice(0, end);
        this.buf = this.buf.slice(end);
        return out;
      }
      if (this.closed) throw new Error(`closed; unread ${JSON.stringify(this.buf)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; unread ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  write(text: string): void {
    this.socket.write(text);
  }

  async upgrade(): Promise<TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain as Socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buf = '';
    this.attach(secure);
    return secure;
  }
}

function cnOf(s: TLSSocket): string {
  const cn = s.getPeerCertificate().subject.CN;
  return Array.isArray(cn) ? cn.join(',') : cn ?? '';
}

/** A TLS session on `port` by the listener's own route into TLS; returns it open. */
async function openTls(port: number, kind: Kind): Promise<{ line: Line; cn: string }> {
  if (kind === 'implicit') {
    const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      s.once('secureConnect', resolve);
      s.once('error', reject);
    });
    return { line: new Line(s), cn: cnOf(s) };
  }
  const s = netConnect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  const line = new Line(s);
  if (kind === 'smtp') {
    await line.until(/^220 .*\r\n/m);
    line.write('EHLO client.example\r\n');
    await line.until(/^250 .*\r\n/m);
    line.write('STARTTLS\r\n');
    await line.until(/^220 .*\r\n/m);
  } else if (kind === 'pop3-stls') {
    await line.until(/^\+OK.*\r\n/);
    line.write('STLS\r\n');
    await line.until(/^\+OK.*\r\n/);
  } else {
    await line.until(/^\* OK.*\r\n/);
    line.write('a STARTTLS\r\n');
    await line.until(/^a OK.*\r\n/m);
  }
  const secure = await line.upgrade();
  return { line, cn: cnOf(secure) };
}

/** One command on an open session, answered by the listener over the TLS it negotiated first. */
async function stillAnswers(line: Line, kind: Kind | 'https'): Promise<void> {
  if (kind === 'smtp') {
    line.write('NOOP\r\n');
    assert.match(await line.until(/^\d{3} .*\r\n/m), /^250/);
  } else if (kind === 'pop3-stls' || kind === 'implicit') {
    line.write('CAPA\r\n');
    assert.match(await line.until(/^\.\r\n/m), /^\+OK/);
  } else if (kind === 'imap-starttls') {
    line.write('b NOOP\r\n');
    assert.match(await line.until(/^b .*\r\n/m), /^b OK/m);
  } else {
    line.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert.match(await line.until(/\r\n\r\n/), /^HTTP\/1\.1 [2-4]\d\d /);
  }
}

async function writePair(dir: string, cn: string): Promise<void> {
  const pems = await generate([{ name: 'commonName', value: cn }], { days: 1, keySize: 2048 } as Parameters<typeof generate>[1]);
  writeFileSync(join(dir, 'key.pem'), pems.private);
  writeFileSync(join(dir, 'cert.pem'), pems.cert);
}

test('SIGHUP swaps the certificate of every TLS listener and keeps open sessions', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-reload-'));
  const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  await writePair(dir, 'first.example');
  const pop3Up = new FakeUpstream({ messages: [] });
  await pop3Up.start();
  const upstream = await startTestServer();
  let s: TestServer | null = null;
  const open: Line[] = [];
  try {
    s = await startTestServer((c) => {
      c.smtp.tls = { ...files };
      c.relay.port = 0;
      c.relay.upstream = `127.0.0.1:${upstream.smtpPort}`;
      c.relay.tls = { ...files };
      c.pop3.port = 0;
      c.pop3.tlsPort = 0;
      c.pop3.upstream = `127.0.0.1:${pop3Up.port}`;
      c.pop3.tls = { ...files };
      c.admin.tls = { ...files };
      c.plugins.push(
        { name: 'imap', config: { port: 0, tlsPort: 0, tls: { ...files } } },
        { name: 'web', config: { port: 0, tls: { enabled: true, ...files } } },
      );
    });
    const app = s.running.app;
    const imap = app.service('imap').ports();
    // pop3.tlsPort 0 turns POP3S off, so the implicit-TLS POP3 listener is checked by its own server below.
    const targets: Array<{ name: string; port: number; kind: Kind; check: Kind | 'https' }> = [
      { name: 'smtp', port: s.smtpPort, kind: 'smtp', check: 'smtp' },
      { name: 'relay', port: s.running.relayPort ?? 0, kind: 'smtp', check: 'smtp' },
      { name: 'pop3', port: s.running.pop3Port ?? 0, kind: 'pop3-stls', check: 'pop3-stls' },
      { name: 'admin', port: s.adminPort, kind: 'implicit', check: 'https' },
      { name: 'imap', port: imap.port ?? 0, kind: 'imap-starttls', check: 'imap-starttls' },
      { name: 'imaps', port: imap.tlsPort ?? 0, kind: 'implicit', check: 'imap-starttls' },
      { name: 'web', port: app.service('web').port(), kind: 'implicit', check: 'https' },
    ];
    assert.deepEqual(app.service('tlsReload').listeners().sort(), ['admin', 'imap', 'pop3', 'relay', 'smtp', 'web']);

    const before = new Map<string, Line>();
    for (const t of targets) {
      assert.ok(t.port > 0, `${t.name} listens`);
      const { line, cn } = await openTls(t.port, t.kind);
      assert.equal(cn, 'first.example', `${t.name} serves the configured certificate`);
      before.set(t.name, line);
      open.push(line);
    }

    await writePair(dir, 'second.example');
    const logged = s.logs.length;
    process.kill(process.pid, 'SIGHUP');
    for (let i = 0; i < 200 && !s.logs.slice(logged).some((l) => l.msg === 'TLS certificates reloaded'); i++) await new Promise((r) => setTimeout(r, 25));
    const line = s.logs.slice(logged).find((l) => l.msg === 'TLS certificates reloaded');
    assert.ok(line, 'the reload is logged');
    assert.deepEqual((line.listeners as string[]).sort(), ['admin', 'imap', 'pop3', 'relay', 'smtp', 'web']);

    for (const t of targets) {
      const { line: fresh, cn } = await openTls(t.port, t.kind);
      open.push(fresh);
      assert.equal(cn, 'second.example', `${t.name} serves the new certificate to a new session`);
      const old = before.get(t.name);
      assert.ok(old && !old.closed, `${t.name}: the session opened before SIGHUP is still open`);
      await stillAnswers(old, t.check);
      assert.equal(cnOf(old.socket as TLSSocket), 'first.example', `${t.name}: the old session kept its certificate`);
    }

    // Unreadable files: the reload fails per listener and the listeners keep the second certificate.
    rmSync(files.key);
    const outcomes = await app.service('tlsReload').reloadAll();
    assert.equal(outcomes.length, 6);
    assert.ok(outcomes.every((o) => !o.ok && /cannot be read/.test(o.error ?? '')), JSON.stringify(outcomes));
    const { line: after, cn } = await openTls(s.smtpPort, 'smtp');
    open.push(after);
    assert.equal(cn, 'second.example');
  } finally {
    for (const l of open) l.socket.destroy();
    await s?.stop();
    await upstream.stop();
    await pop3Up.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('POP3S (implicit TLS) takes the new certificate on reload', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-reload-pop3s-'));
  const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  await writePair(dir, 'first.example');
  const pop3Up = new FakeUpstream({ messages: [] });
  await pop3Up.start();
  const { createServer } = await import('node:net');
  // A free port for POP3S (0 means "off" for pop3.tlsPort).
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const addr = probe.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((r) => probe.close(() => r()));
  let s: TestServer | null = null;
  const open: Line[] = [];
  try {
    s = await startTestServer((c) => {
      c.pop3.port = 0;
      c.pop3.tlsPort = port;
      c.pop3.upstream = `127.0.0.1:${pop3Up.port}`;
      c.pop3.tls = { ...files };
    });
    const first = await openTls(port, 'implicit');
    open.push(first.line);
    assert.equal(first.cn, 'first.example');
    await writePair(dir, 'second.example');
    const outcomes = await s.running.app.service('tlsReload').reloadAll();
    assert.ok(outcomes.some((o) => o.listener === 'pop3' && o.ok));
    const second = await openTls(port, 'implicit');
    open.push(second.line);
    assert.equal(second.cn, 'second.example');
    await stillAnswers(first.line, 'implicit');
  } finally {
    for (const l of open) l.socket.destroy();
    await s?.stop();
    await pop3Up.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
