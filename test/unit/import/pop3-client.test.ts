// The POP3 client against scripted servers (transcripts): dot-unstuffing, UIDL parsing, and every
// bad reply — refused login, malformed UIDL, overlong line, oversized message, a server that closes
// or goes silent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { Pop3Client, Pop3TooLarge } from '../../../core/import/pop3-client.ts';

type Script = (line: string, sock: Socket) => void;

async function server(script: Script, greeting = '+OK ready\r\n'): Promise<{ port: number; close(): Promise<void>; lines: string[] }> {
  const lines: string[] = [];
  const socks = new Set<Socket>();
  const srv: Server = createServer((sock) => {
    socks.add(sock);
    sock.write(greeting);
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        lines.push(line);
        script(line, sock);
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  return {
    port, lines,
    close: () => new Promise<void>((r) => {
      for (const s of socks) s.destroy();
      srv.close(() => r());
    }),
  };
}

const standard = (extra: Record<string, (sock: Socket) => void> = {}): Script => (line, sock) => {
  const cmd = line.split(' ')[0] ?? '';
  const handler = extra[line] ?? extra[cmd];
  if (handler) return handler(sock);
  if (cmd === 'USER') sock.write('+OK\r\n');
  else if (cmd === 'PASS') sock.write(line === 'PASS good' ? '+OK logged in\r\n' : '-ERR [AUTH] bad\r\n');
  else if (cmd === 'QUIT') sock.end('+OK bye\r\n');
  else sock.write('-ERR unknown\r\n');
};

const client = (port: number, maxBytes = 1024 * 1024, timeoutMs = 5000): Pop3Client => new Pop3Client({ host: '127.0.0.1', port, tls: 'none', tlsOptions: {}, timeoutMs, maxBytes });

test('UIDL, RETR with dot-unstuffing, DELE and QUIT', async () => {
  const s = await server(standard({
    UIDL: (sock) => sock.write('+OK\r\n1 aaa\r\n2 bbb\r\n.\r\n'),
    'RETR 1': (sock) => sock.write('+OK 30 octets\r\nSubject: a\r\n\r\n..leading dot\r\n.\r\n'),
    'DELE 1': (sock) => sock.write('+OK deleted\r\n'),
  }));
  const c = client(s.port);
  try {
    await c.connect();
    await c.login('u', 'good');
    assert.deepEqual(await c.uidl(), [{ n: 1, uid: 'aaa' }, { n: 2, uid: 'bbb' }]);
    assert.equal((await c.retr(1)).toString(), 'Subject: a\r\n\r\n.leading dot\r\n');
    await c.dele(1);
    await c.quit();
    assert.deepEqual(s.lines, ['USER u', 'PASS good', 'UIDL', 'RETR 1', 'DELE 1', 'QUIT']);
  } finally {
    c.close();
    await s.close();
  }
});

test('a refused login and a refused greeting are errors', async () => {
  const s = await server(standard());
  const c = client(s.port);
  await c.connect();
  await assert.rejects(c.login('u', 'bad'), /POP3 login as "u" failed/);
  c.close();
  await s.close();
  const g = await server(standard(), '-ERR go away\r\n');
  await assert.rejects(client(g.port).connect(), /POP3 server refused: -ERR go away/);
  await g.close();
});

test('malformed UIDL lines are refused', async () => {
  const s = await server(standard({ UIDL: (sock) => sock.write('+OK\r\n1 aaa\r\nnot a uidl line\r\n.\r\n') }));
  const c = client(s.port);
  await c.connect();
  await c.login('u', 'good');
  await assert.rejects(c.uidl(), /Malformed UIDL line/);
  c.close();
  await s.close();
});

test('an overlong reply line is refused', async () => {
  const s = await server(standard({ STAT: (sock) => sock.write('+OK ' + 'x'.repeat(20000) + '\r\n') }));
  const c = client(s.port);
  await c.connect();
  await c.login('u', 'good');
  await assert.rejects(c.stat(), /reply line too long/);
  c.close();
  await s.close();
});

test('a message over the size bound is refused, read to its end, and the session stays usable', async () => {
  const long = 'z'.repeat(200 * 1024);
  const s = await server(standard({
    'RETR 1': (sock) => sock.write('+OK\r\n' + 'y'.repeat(100) + '\r\n'.repeat(200) + '.\r\n'),
    'RETR 2': (sock) => sock.write('+OK\r\nSubject: long\r\n\r\n' + long + '\r\n..dot\r\n.\r\n'),
    'RETR 3': (sock) => sock.write('+OK\r\n' + long + '\r\n.\r\n'),
    STAT: (sock) => sock.write('+OK 3 1000\r\n'),
  }));
  const c = client(s.port, 150);
  await c.connect();
  await c.login('u', 'good');
  await assert.rejects(c.retr(1), (e: unknown) => e instanceof Pop3TooLarge && /larger than 150 bytes/.test(e.message));
  assert.deepEqual(await c.stat(), { count: 3, size: 1000 });
  await assert.rejects(c.retr(3), Pop3TooLarge);
  assert.deepEqual(await c.stat(), { count: 3, size: 1000 });
  c.close();
  const big = client(s.port, 1024 * 1024);
  await big.connect();
  await big.login('u', 'good');
  assert.equal((await big.retr(2)).toString(), `Subject: long\r\n\r\n${long}\r\n.dot\r\n`, 'a line longer than the read buffer is kept whole');
  big.close();
  await s.close();
});

test('a server that closes mid-message or goes silent is an error, not a hang', async () => {
  const s = await server(standard({
    'RETR 1': (sock) => sock.end('+OK\r\nSubject: cut\r\n'),
    'RETR 2': () => undefined,
  }));
  const c = client(s.port);
  await c.connect();
  await c.login('u', 'good');
  await assert.rejects(c.retr(1), /closed the connection/);
  const slow = client(s.port, 1024, 300);
  await slow.connect();
  await slow.login('u', 'good');
  await assert.rejects(slow.retr(2), /did not answer within 300 ms/);
  await s.close();
});

test('a command with a line break is refused before it is sent', async () => {
  const s = await server(standard());
  const c = client(s.port);
  await c.connect();
  await assert.rejects(c.login('u\r\nDELE 1', 'good'), /line break/);
  c.close();
  await s.close();
  assert.deepEqual(s.lines, []);
});
