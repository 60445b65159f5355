// The relay's upstream SMTP client against upstreams that misbehave: malformed and over-long reply
// lines, a multi-line reply that changes its code, a flood of unsolicited replies, a stall, a close
// mid-reply, and bytes injected after the STARTTLS reply. Each ends in a bounded UPSTREAM_FAILED.
// The peers are scripted sockets: no real server misbehaves on demand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { UpstreamConnection, type UpstreamEndpoint } from '../../../core/smtp/relay-upstream.ts';
import { isPosternError } from '../../../core/errors.ts';

async function peer(onConnect: (s: Socket) => void): Promise<{ endpoint: UpstreamEndpoint; close(): void }> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    onConnect(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    endpoint: { host: '127.0.0.1', port, implicitTls: false, tls: { rejectUnauthorized: true }, connectTimeoutMs: 5000, commandTimeoutMs: 5000, dataTimeoutMs: 5000, maxLineBytes: 512, maxReplyLines: 20 },
    close: () => server.close(),
  };
}

const upstreamFailed = (pattern: RegExp) => (e: unknown): boolean => isPosternError(e, 'UPSTREAM_FAILED') && pattern.test((e as Error).message);

test('a well-formed multi-line reply is read whole; bare LF line ends are tolerated', async () => {
  const p = await peer((s) => s.write('220-first\r\n220 second\n'));
  try {
    const c = await UpstreamConnection.connect(p.endpoint);
    assert.deepEqual(await c.read(), { code: 220, lines: ['first', 'second'] });
    c.close();
  } finally {
    p.close();
  }
});

test('a malformed reply line fails the connection', async () => {
  const p = await peer((s) => s.write('hello there\r\n'));
  try {
    const c = await UpstreamConnection.connect(p.endpoint);
    await assert.rejects(c.read(), upstreamFailed(/malformed reply line/));
    assert.equal(c.usable, false);
  } finally {
    p.close();
  }
});

test('an over-long reply line fails the connection, with or without a line end', async () => {
  for (const tail of ['\r\n', '']) {
    const p = await peer((s) => s.write('220 ' + 'x'.repeat(2000) + tail));
    try {
      const c = await UpstreamConnection.connect(p.endpoint);
      await assert.rejects(c.read(), upstreamFailed(/longer than 512 bytes/));
    } finally {
      p.close();
    }
  }
});

test('a multi-line reply that changes its code, or never ends, fails', async () => {
  const p1 = await peer((s) => s.write('250-a\r\n550 b\r\n'));
  const p2 = await peer((s) => s.write('250-x\r\n'.repeat(50)));
  try {
    await assert.rejects((await UpstreamConnection.connect(p1.endpoint)).read(), upstreamFailed(/changed the reply code/));
    await assert.rejects((await UpstreamConnection.connect(p2.endpoint)).read(), upstreamFailed(/more than 20 lines/));
  } finally {
    p1.close();
    p2.close();
  }
});

test('a flood of replies nobody asked for fails', async () => {
  const p = await peer((s) => s.write('250 ok\r\n'.repeat(40)));
  try {
    const c = await UpstreamConnection.connect(p.endpoint);
    for (let i = 0; i < 250 && c.usable; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(c.usable, false);
    await assert.rejects(c.read(), upstreamFailed(/replies nobody asked for/));
  } finally {
    p.close();
  }
});

test('a stalled upstream times out; a close mid-reply fails', async () => {
  const p1 = await peer(() => undefined);
  const p2 = await peer((s) => s.end('220-partial\r\n'));
  try {
    await assert.rejects((await UpstreamConnection.connect(p1.endpoint)).read(300), upstreamFailed(/did not reply within 0.3 s/));
    await assert.rejects((await UpstreamConnection.connect(p2.endpoint)).read(), upstreamFailed(/closed the connection/));
  } finally {
    p1.close();
    p2.close();
  }
});

test('bytes pipelined after the STARTTLS reply are refused (response injection)', async () => {
  const p = await peer((s) => {
    s.write('220 hi\r\n');
    s.once('data', () => s.write('220 go ahead\r\n250 injected\r\n'));
  });
  try {
    const c = await UpstreamConnection.connect(p.endpoint);
    await c.read();
    await assert.rejects(c.starttls(), upstreamFailed(/after its STARTTLS reply/));
  } finally {
    p.close();
  }
});

test('connecting to a closed port fails cleanly', async () => {
  const p = await peer(() => undefined);
  p.close();
  await new Promise((r) => setTimeout(r, 50));
  await assert.rejects(UpstreamConnection.connect(p.endpoint), upstreamFailed(/Connecting to upstream/));
});

test('commands containing CR or LF are refused before anything is sent', async () => {
  const p = await peer((s) => s.write('220 hi\r\n'));
  try {
    const c = await UpstreamConnection.connect(p.endpoint);
    await c.read();
    await assert.rejects(c.command('MAIL FROM:<a@b>\r\nRCPT TO:<c@d>'), (e: unknown) => isPosternError(e, 'INVALID_INPUT'));
    c.close();
  } finally {
    p.close();
  }
});
