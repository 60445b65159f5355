// The Haraka plugin's SMTP client and settings (plugins/haraka/lib) against a real Postern: the true
// envelope over STARTTLS with AUTH PLAIN (every recipient filed), verified STARTTLS and implicit TLS
// with Postern's certificate as the CA file, and each failure a typed error with
// its stable code (the plugin turns every one into DENYSOFT): wrong password, password refused
// without TLS, an unverifiable certificate when verification is on, nothing listening, a server that
// never greets, a refused recipient. The settings checker accepts the README's ini block and names
// the section, key and value of a bad one. The folder is Haraka's, not Postern's: Postern never loads it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer, type Server, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import type { Writable } from 'node:stream';
import { startTestServer } from '../helpers/test-server.ts';
import { hashPassword } from '../../core/smtp/password.ts';
import { pluginEnvVariables, resolvePlugins } from '../../core/app/app.ts';

interface Settings {
  host: string; port: number; mode: string; timeoutMs: number; helo: string;
  tls: { mode: string; verify: boolean; ca: string | undefined; servername: string | undefined };
  auth: { user: string | undefined; password: string; allowInsecure: boolean };
}
interface DeliveryError extends Error { code: string; reply?: { code: number; text: string } }
const require = createRequire(import.meta.url);
const client = require('../../plugins/haraka/lib/smtp-client.js') as {
  deliver(s: Settings, env: { from: string; to: string[]; size?: number }, pipe: (sink: Writable) => void): Promise<{ code: number; text: string }>;
  CODES: Record<string, string>;
};
const { parseSettings } = require('../../plugins/haraka/lib/settings.js') as { parseSettings(ini: Record<string, Record<string, unknown>>): Settings };
const README = new URL('../../plugins/haraka/README.md', import.meta.url);

/** The README's ini block as Haraka's loader gives it: sections of strings. */
function readmeIni(): Record<string, Record<string, string>> {
  const blocks = [...readFileSync(README, 'utf8').matchAll(/^```ini\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  assert.equal(blocks.length, 1, 'one ini block in the README');
  const out: Record<string, Record<string, string>> = {};
  let section = 'main';
  for (const line of blocks[0]!.split('\n')) {
    const s = /^\[(\w+)\]$/.exec(line.trim());
    if (s) { section = s[1]!; continue; }
    const kv = /^(\w+)=(.*)$/.exec(line.trim());
    if (kv) (out[section] ??= {})[kv[1]!] = kv[2]!;
  }
  return out;
}

const message = (subject: string): string => `From: bob@example.com\r\nTo: alice@example.com\r\nSubject: ${subject}\r\n\r\n..a dot-stuffed line\r\nbody\r\n.\r\n`;
const body = (subject: string) => (sink: Writable): void => { sink.end(message(subject)); };

async function expectCode(p: Promise<unknown>, code: string): Promise<DeliveryError> {
  try {
    await p;
  } catch (err) {
    assert.equal((err as DeliveryError).code, code, `${(err as Error).message}`);
    assert.equal((err as Error).name, 'PosternDeliveryError');
    return err as DeliveryError;
  }
  assert.fail(`expected ${code}, got success`);
}

test('settings: the README block is valid; a bad value names its section, key and value', () => {
  const s = parseSettings(readmeIni());
  assert.equal(s.mode, 'archive_only');
  assert.equal(s.port, 2525);
  assert.equal(s.tls.mode, 'may');
  assert.equal(s.timeoutMs, 25_000);
  assert.equal(s.auth.user, undefined);
  assert.equal(parseSettings({ main: { mode: 'pass_through', port: 25 } }).mode, 'pass_through');
  assert.throws(() => parseSettings({ main: { mode: 'archive' } }), /postern\.ini \[main\] mode: "archive" is not one of archive_only, pass_through/);
  assert.throws(() => parseSettings({ main: { port: '99999' } }), /\[main\] port: "99999" is not a whole number from 1 to 65535/);
  assert.throws(() => parseSettings({ tls: { mode: 'tls' } }), /\[tls\] mode: "tls" is not one of none, may, starttls, implicit/);
  assert.throws(() => parseSettings({ tls: { verify: 'maybe' } }), /\[tls\] verify: "maybe" is not a boolean/);
  assert.throws(() => parseSettings({ auth: { user: 'haraka' } }), /\[auth\] password: empty, but \[auth\] user is set/);
  assert.throws(() => parseSettings({ tls: { ca: '/nonexistent/ca.pem' } }), /\[tls\] ca: cannot read "\/nonexistent\/ca\.pem"/);
});

test('the true envelope over STARTTLS with AUTH PLAIN: every recipient filed; failures are typed', async () => {
  const hash = await hashPassword('haraka-pass');
  const srv = await startTestServer((c) => {
    c.smtp.auth = { mode: 'required', users: { haraka: hash }, allowInsecure: false };
    c.users = ['alice', 'bob', 'carol'].map((name) => ({ name, addresses: [`${name}@example.com`], domains: [], pop3Users: [], groups: [] }));
  });
  const base = parseSettings({ main: { port: String(srv.smtpPort), timeout: '20', helo: 'haraka.test' }, auth: { user: 'haraka', password: 'haraka-pass' } });
  try {
    const reply = await client.deliver(base, { from: 'bob@example.com', to: ['alice@example.com', 'carol@example.com'], size: 100 }, body('envelope'));
    assert.equal(reply.code, 250);
    await srv.settle();
    for (const [user, folder] of [['alice', 'Inbox'], ['carol', 'Inbox'], ['bob', 'Sent']] as const) {
      const entries = await srv.archive.listEntries(user, folder);
      assert.deepEqual(entries.map((e) => e.subject), ['envelope'], `${user}/${folder}`);
    }

    await expectCode(client.deliver({ ...base, auth: { ...base.auth, password: 'wrong' } }, { from: 'bob@example.com', to: ['alice@example.com'] }, body('x')), client.CODES.AUTH!);
    const insecure = await expectCode(client.deliver({ ...base, tls: { ...base.tls, mode: 'none' } }, { from: 'bob@example.com', to: ['alice@example.com'] }, body('x')), client.CODES.AUTH!);
    assert.match(insecure.message, /Refusing to send the Postern password without TLS/);
    // Postern's generated certificate is self-signed: "starttls" verifies it and must refuse.
    await expectCode(client.deliver({ ...base, tls: { ...base.tls, mode: 'starttls', verify: true } }, { from: 'bob@example.com', to: ['alice@example.com'] }, body('x')), client.CODES.TLS!);
    const none = await srv.archive.listEntries('alice', 'Inbox');
    assert.equal(none.length, 1, 'nothing from the failed attempts was archived');
    // With Postern's certificate as the CA (tls.ca), "starttls" verifies it and goes ahead.
    const verified = parseSettings({
      main: { port: String(srv.smtpPort), timeout: '20' }, tls: { mode: 'starttls', ca: join(srv.dataDir, 'tls', 'self-signed.crt') }, auth: { user: 'haraka', password: 'haraka-pass' },
    });
    assert.equal((await client.deliver(verified, { from: 'bob@example.com', to: ['alice@example.com'] }, body('verified'))).code, 250);
  } finally {
    await srv.stop();
  }
});

test('a refused recipient fails the whole hand-over (POSTERN_REJECTED with the reply); implicit TLS with a CA file', async () => {
  const srv = await startTestServer((c) => { c.smtp.maxRecipients = 1; });
  try {
    const s = parseSettings({ main: { port: String(srv.smtpPort), timeout: '20' } });
    const err = await expectCode(client.deliver(s, { from: '', to: ['a@example.com', 'b@example.com'] }, body('two')), client.CODES.REJECTED!);
    assert.equal(err.reply?.code, 452);
    await srv.settle();
    assert.deepEqual(await srv.archive.listEntries('_unrouted', 'Inbox'), [], 'nothing archived');
    assert.equal((await client.deliver(s, { from: '', to: ['a@example.com'] }, body('null sender'))).code, 250, 'the null sender <> is passed as is');

    // Implicit TLS, through a TLS-terminating front (as stunnel or a load balancer would be) with
    // Postern's certificate, verified against it as the CA; an unknown CA is refused.
    const certFile = join(srv.dataDir, 'tls', 'self-signed.crt');
    const front = createTlsServer({ cert: readFileSync(certFile), key: readFileSync(join(srv.dataDir, 'tls', 'self-signed.key')) }, (sock) => {
      const up = connect(srv.smtpPort, '127.0.0.1');
      sock.pipe(up).pipe(sock);
      up.on('error', () => sock.destroy());
      sock.on('error', () => up.destroy());
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    try {
      const frontPort = String((front.address() as AddressInfo).port);
      const implicit = parseSettings({ main: { port: frontPort, timeout: '20' }, tls: { mode: 'implicit', ca: certFile } });
      assert.equal((await client.deliver(implicit, { from: 'x@example.com', to: ['a@example.com'] }, body('implicit'))).code, 250);
      await expectCode(client.deliver(parseSettings({ main: { port: frontPort, timeout: '20' }, tls: { mode: 'implicit' } }), { from: 'x@example.com', to: ['a@example.com'] }, body('x')), client.CODES.TLS!);
    } finally {
      front.close();
    }
    await srv.settle();
    assert.deepEqual((await srv.archive.listEntries('_unrouted', 'Inbox')).map((e) => e.subject).sort(), ['implicit', 'null sender']);
  } finally {
    await srv.stop();
  }
});

test('nothing listening is POSTERN_CONNECT; a server that never greets is POSTERN_TIMEOUT', async () => {
  const silent: Server = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentPort = (silent.address() as AddressInfo).port;
  const closed: Server = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  try {
    await expectCode(client.deliver(parseSettings({ main: { port: String(closedPort) } }), { from: 'a@x.test', to: ['b@x.test'] }, body('x')), client.CODES.CONNECT!);
    await expectCode(client.deliver({ ...parseSettings({ main: { port: String(silentPort) } }), timeoutMs: 300 }, { from: 'a@x.test', to: ['b@x.test'] }, body('x')), client.CODES.TIMEOUT!);
  } finally {
    silent.close();
  }
});

test('plugins/haraka is not a Postern plugin: naming it in the config fails at boot, the env listing skips it', async () => {
  await assert.rejects(resolvePlugins([{ name: 'haraka', config: {} }], () => 'config/postern.yaml'), /plugin "haraka" does not exist \(no .*plugins\/haraka\/index\.ts\)/);
  const vars = await pluginEnvVariables();
  assert.ok(vars.length > 0, 'the other plugins are listed');
  assert.ok(vars.every((v) => v.plugin !== 'haraka' && v.plugin !== 'postern'), 'nothing from plugins/haraka');
});
