// The relay's upstream leg under TLS: STARTTLS to a real Postern endpoint with its certificate
// verified against a configured CA, a certificate that does not verify, an upstream that does not
// offer the STARTTLS the config requires, and implicit TLS (a TLS terminator in front of the
// endpoint, as stunnel or a port-465 service would be).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { Config } from '../../core/config/schema.ts';

async function relayTo(upstream: string, tls: (c: Config) => void): Promise<TestServer> {
  const srv = await startTestServer((c) => {
    c.relay.port = 0;
    c.relay.upstream = upstream;
    tls(c);
  });
  await srv.archive.addUser({ name: 'alice', addresses: ['alice@example.test'] });
  return srv;
}

async function send(srv: TestServer, subject: string): Promise<{ greeting: number; reply: number | null }> {
  const c = await SmtpClient.open(srv.running.relayPort ?? 0);
  const g = await c.read();
  if (g.code !== 220) {
    c.close();
    return { greeting: g.code, reply: null };
  }
  await c.cmd('EHLO client.example');
  const r = await sendMail(c, 'bob@example.test', ['alice@example.test'], `Subject: ${subject}\r\n\r\nx\r\n`);
  c.close();
  return { greeting: g.code, reply: r.code };
}

test('STARTTLS upstream, certificate verified with the configured CA', async () => {
  const up = await startTestServer();
  const ca = join(up.dataDir, 'tls', 'self-signed.crt');
  const ok = await relayTo(`127.0.0.1:${up.smtpPort}`, (c) => { c.relay.upstreamTls = 'starttls'; c.relay.upstreamCa = ca; });
  const unverified = await relayTo(`127.0.0.1:${up.smtpPort}`, (c) => { c.relay.upstreamTls = 'starttls'; });
  try {
    assert.deepEqual(await send(ok, 'relay-upstream-starttls'), { greeting: 220, reply: 250 });
    await Promise.all([ok.settle(), up.settle()]);
    assert.equal((await ok.archive.listEntries('alice', 'Inbox'))[0]?.subject, 'relay-upstream-starttls');
    assert.ok(ok.logs.some((l) => l.msg === 'Upstream session open' && l.secure === true));
    // The system store does not know the self-signed certificate: no session, 421.
    assert.deepEqual(await send(unverified, 'never'), { greeting: 421, reply: null });
    assert.ok(unverified.logs.some((l) => l.msg === 'Upstream unavailable; refusing the client with 421' && /TLS handshake failed/.test(String(l.err))));
  } finally {
    await ok.stop();
    await unverified.stop();
    await up.stop();
  }
});

test('an upstream without STARTTLS when the config requires it: 421, nothing sent in clear', async () => {
  // A Postern endpoint always offers STARTTLS; a scripted peer stands in for one that does not.
  const plainOnly = await import('node:net').then(({ createServer }) => createServer((s) => {
    s.on('error', () => undefined);
    s.write('220 plain ESMTP\r\n');
    s.on('data', (d) => {
      if (/^EHLO/i.test(d.toString())) s.write('250-plain\r\n250 8BITMIME\r\n');
      else s.write('250 ok\r\n');
    });
  }));
  await new Promise<void>((r) => plainOnly.listen(0, '127.0.0.1', r));
  const addr = plainOnly.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const srv = await relayTo(`127.0.0.1:${port}`, (c) => { c.relay.upstreamTls = 'starttls'; });
  try {
    assert.deepEqual(await send(srv, 'never'), { greeting: 421, reply: null });
    assert.ok(srv.logs.some((l) => /does not offer STARTTLS/.test(String(l.err))));
  } finally {
    await srv.stop();
    plainOnly.close();
  }
});

test('implicit TLS upstream (TLS terminator in front of a real endpoint)', async () => {
  const up = await startTestServer();
  const cert = readFileSync(join(up.dataDir, 'tls', 'self-signed.crt'));
  const key = readFileSync(join(up.dataDir, 'tls', 'self-signed.key'));
  const terminator = createTlsServer({ cert, key }, (tlsSocket) => {
    const plain = netConnect(up.smtpPort, '127.0.0.1');
    tlsSocket.pipe(plain).pipe(tlsSocket);
    tlsSocket.on('error', () => plain.destroy());
    plain.on('error', () => tlsSocket.destroy());
  });
  await new Promise<void>((r) => terminator.listen(0, '127.0.0.1', r));
  const addr = terminator.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const srv = await relayTo(`127.0.0.1:${port}`, (c) => {
    c.relay.upstreamTls = 'implicit';
    c.relay.upstreamCa = join(up.dataDir, 'tls', 'self-signed.crt');
  });
  try {
    assert.deepEqual(await send(srv, 'relay-upstream-implicit'), { greeting: 220, reply: 250 });
    await srv.settle();
    assert.equal((await srv.archive.listEntries('alice', 'Inbox'))[0]?.subject, 'relay-upstream-implicit');
    assert.ok(srv.logs.some((l) => l.msg === 'Upstream session open' && l.secure === true));
  } finally {
    await srv.stop();
    await up.stop();
    terminator.close();
  }
});
