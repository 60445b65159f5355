// The POP3 client's TLS through the importer's own TLS options (core/import/tls-pin.ts): STLS and
// implicit TLS with a pinned certificate, accept-self-signed, normal verification refusing a
// self-signed server, a pin refusing another certificate, a refused STLS and data injected after the
// STLS reply. No credential may reach a server the options do not trust.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import { Pop3Client, Pop3Error, type Pop3Options } from '../../../core/import/pop3-client.ts';
import { Pop3UpstreamError } from '../../../core/pop3/upstream.ts';
import { tlsOptionsFor } from '../../../core/import/tls-pin.ts';
import { server, standard, type TlsPair } from './pop3-script.ts';

let certA: TlsPair;
let certB: TlsPair;

async function makeCert(cn: string): Promise<TlsPair> {
  const pems = await generate([{ name: 'commonName', value: cn }], {
    days: 1, keySize: 2048,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  } as Parameters<typeof generate>[1]);
  return { key: pems.private, cert: pems.cert };
}

before(async () => {
  certA = await makeCert('pop3-a.test');
  certB = await makeCert('pop3-b.test');
});

const mail = standard({ 'RETR 1': (sock) => sock.write('+OK\r\nSubject: tls\r\n\r\n..dot\r\n.\r\n'), STLS: (_sock, ctx) => ctx.startTls() });

function tlsClient(port: number, tls: Pop3Options['tls'], tlsOptions: Pop3Options['tlsOptions']): Pop3Client {
  return new Pop3Client({ host: '127.0.0.1', port, tls, tlsOptions, timeoutMs: 5000, maxBytes: 1024 * 1024 });
}

/** A Pop3Error whose cause is the upstream leg's TLS failure, with the given message. */
const tlsFailure = (message: RegExp) => (e: unknown): boolean =>
  e instanceof Pop3Error && message.test(e.message) && e.cause instanceof Pop3UpstreamError && e.cause.kind === 'tls';

async function fetchOne(c: Pop3Client): Promise<string> {
  try {
    await c.connect();
    await c.login('u', 'good');
    const body = (await c.retr(1)).toString();
    await c.quit();
    return body;
  } finally {
    c.close();
  }
}

test('STLS with a pinned certificate: the probe and the session both upgrade, then mail is fetched', async () => {
  const s = await server(mail, { tls: certA });
  try {
    const fingerprint = new X509Certificate(certA.cert).fingerprint256;
    const opts = await tlsOptionsFor('127.0.0.1', s.port, { tls: 'starttls', acceptSelfSigned: false, fingerprint }, 'pop3');
    assert.equal(await fetchOne(tlsClient(s.port, 'starttls', opts)), 'Subject: tls\r\n\r\n.dot\r\n');
    assert.deepEqual(s.lines, ['STLS', 'STLS', 'USER u', 'PASS good', 'RETR 1', 'QUIT']);
  } finally {
    await s.close();
  }
});

test('implicit TLS with a pinned certificate and with accept-self-signed', async () => {
  const s = await server(mail, { tls: certA, implicit: true });
  try {
    const fingerprint = new X509Certificate(certA.cert).fingerprint256;
    const pinned = await tlsOptionsFor('127.0.0.1', s.port, { tls: 'implicit', acceptSelfSigned: false, fingerprint }, 'pop3');
    assert.equal(await fetchOne(tlsClient(s.port, 'implicit', pinned)), 'Subject: tls\r\n\r\n.dot\r\n');
    const loose = await tlsOptionsFor('127.0.0.1', s.port, { tls: 'implicit', acceptSelfSigned: true }, 'pop3');
    assert.equal(await fetchOne(tlsClient(s.port, 'implicit', loose)), 'Subject: tls\r\n\r\n.dot\r\n');
  } finally {
    await s.close();
  }
});

/** Implicit-TLS and STLS servers presenting `cert` are both refused with `opts`; no command after STLS reaches them. */
async function refusedBoth(cert: TlsPair, opts: Pop3Options['tlsOptions']): Promise<void> {
  const implicit = await server(mail, { tls: cert, implicit: true });
  const stls = await server(mail, { tls: cert });
  try {
    await assert.rejects(tlsClient(implicit.port, 'implicit', opts).connect(), tlsFailure(/is unreachable: DEPTH_ZERO_SELF_SIGNED_CERT/));
    await assert.rejects(tlsClient(stls.port, 'starttls', opts).connect(), tlsFailure(/TLS handshake failed: self-signed certificate/));
    assert.deepEqual(implicit.lines, []);
    assert.deepEqual(stls.lines, ['STLS']);
  } finally {
    await implicit.close();
    await stls.close();
  }
}

test('a pin for one certificate refuses a server presenting another, before any credential is sent', async () => {
  const a = await server(mail, { tls: certA, implicit: true });
  try {
    const fingerprint = new X509Certificate(certA.cert).fingerprint256;
    await refusedBoth(certB, await tlsOptionsFor('127.0.0.1', a.port, { tls: 'implicit', acceptSelfSigned: false, fingerprint }, 'pop3'));
  } finally {
    await a.close();
  }
});

test('normal verification refuses a self-signed server (implicit and STLS)', async () => {
  await refusedBoth(certA, await tlsOptionsFor('127.0.0.1', 1, { tls: 'implicit', acceptSelfSigned: false }, 'pop3'));
});

test('a refused STLS and data injected after the STLS reply are errors; nothing more is sent', async () => {
  const refused = await server(standard({ STLS: (sock) => sock.write('-ERR no TLS here\r\n') }), { tls: certA });
  const injected = await server(standard({ STLS: (_sock, ctx) => ctx.startTls('+OK injected\r\n') }), { tls: certA });
  try {
    const loose = { rejectUnauthorized: false };
    await assert.rejects(tlsClient(refused.port, 'starttls', loose).connect(), /Upstream refused STLS: "-ERR no TLS here"/);
    await assert.rejects(tlsClient(injected.port, 'starttls', loose).connect(), /sent data after its STLS reply/);
    assert.deepEqual(refused.lines, ['STLS']);
    assert.deepEqual(injected.lines, ['STLS']);
  } finally {
    await refused.close();
    await injected.close();
  }
});
