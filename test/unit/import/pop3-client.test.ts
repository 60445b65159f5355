// The POP3 client against scripted servers (transcripts): dot-unstuffing at every chunk split, UIDL
// parsing, and every bad reply — refused greeting or login, malformed status line, STAT or UIDL,
// overlong line, oversized message or listing, a server that is gone, closes or goes silent, and a
// close() in the middle of a message. TLS cases are in pop3-client-tls.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pop3TooLarge } from '../../../core/import/pop3-client.ts';
import { client, server, standard } from './pop3-script.ts';

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
  const g = await server(standard(), { greeting: '-ERR go away\r\n' });
  await assert.rejects(client(g.port).connect(), /POP3 server 127\.0\.0\.1: Upstream refused the connection: "-ERR go away"/);
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
  await assert.rejects(c.stat(), /overlong status line/);
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

test('bodies split anywhere come back byte-exact: dots at chunk edges, bare LF, no final newline before the dot line', async () => {
  const wire = '+OK\r\nA: 1\r\n\r\n..x\r\n...\r\nbare\nlf\n.\r\n';
  const s = await server(standard({
    'RETR 1': (sock) => {
      // One byte a write: every boundary, including inside ".\r\n", is exercised.
      let i = 0;
      const next = (): void => {
        if (i < wire.length) sock.write(wire[i++] as string, next);
      };
      next();
    },
    'RETR 2': (sock) => sock.write('+OK\r\n.\r\n'),
    'RETR 3': (sock) => sock.write('+OK\r\nend.\r\n.\n+OK 7 70\r\n'),
    STAT: (sock) => sock.write('+OK 1 2\r\n'),
  }));
  const c = client(s.port);
  try {
    await c.connect();
    await c.login('u', 'good');
    assert.equal((await c.retr(1)).toString('latin1'), 'A: 1\r\n\r\n.x\r\n..\r\nbare\nlf\n');
    assert.equal((await c.retr(2)).length, 0, 'an empty message');
    assert.equal((await c.retr(3)).toString(), 'end.\r\n');
    assert.deepEqual(await c.stat(), { count: 7, size: 70 }, 'a reply sent right behind a bare-LF terminator is the next reply');
    assert.deepEqual(await c.stat(), { count: 1, size: 2 });
  } finally {
    c.close();
    await s.close();
  }
});

test('a malformed status line and a malformed STAT reply are refused', async () => {
  const s = await server(standard({
    NOOP: (sock) => sock.write('hello there\r\n'),
    STAT: (sock) => sock.write('+OK lots\r\n'),
  }));
  const c = client(s.port);
  try {
    await c.connect();
    await c.login('u', 'good');
    await assert.rejects(c.stat(), /Malformed STAT reply: lots/);
    await assert.rejects(c.command('NOOP'), /malformed status line: "hello there"/);
  } finally {
    c.close();
    await s.close();
  }
});

test('a UIDL listing over its 64 MiB bound is refused', async () => {
  // 13.5 million five-byte entries: a valid listing, only too long.
  const listing = Buffer.alloc(5 * 13_500_000, '1 a\r\n');
  const s = await server(standard({ UIDL: (sock) => sock.write(Buffer.concat([Buffer.from('+OK\r\n'), listing, Buffer.from('.\r\n')])) }));
  const c = client(s.port);
  try {
    await c.connect();
    await c.login('u', 'good');
    await assert.rejects(c.uidl(), /multi-line reply exceeds 67108864 bytes/);
  } finally {
    c.close();
    await s.close();
  }
});

test('an unreachable server, a silent greeting and commands without a connection are errors', async () => {
  const gone = await server(standard());
  const port = gone.port;
  await gone.close();
  await assert.rejects(client(port).connect(), /POP3 server 127\.0\.0\.1: Upstream 127\.0\.0\.1:\d+ is unreachable: ECONNREFUSED/);
  const silent = await server(standard(), { greeting: '' });
  await assert.rejects(client(silent.port, 1024, 200).connect(), /did not answer within 200 ms/);
  await silent.close();
  await assert.rejects(client(port).stat(), /Not connected/);
});

test('close() while a message is arriving ends the read at once (job cancellation)', async () => {
  const s = await server(standard({ 'RETR 1': (sock) => sock.write('+OK\r\nSubject: slow\r\n') }));
  const c = client(s.port, 1024, 60_000);
  try {
    await c.connect();
    await c.login('u', 'good');
    const pending = c.retr(1);
    setTimeout(() => c.close(), 50);
    await assert.rejects(pending, /closed the connection/);
    await assert.rejects(c.stat(), /Not connected/);
  } finally {
    await s.close();
  }
});

test('a non-ASCII user name and password go out as UTF-8', async () => {
  const utf8 = (t: string): string => Buffer.from(t, 'utf8').toString('latin1');
  const s = await server(standard({ PASS: (sock) => sock.write('+OK\r\n') }));
  const c = client(s.port);
  try {
    await c.connect();
    await c.login('jösé', 'pässwörd€');
    assert.deepEqual(s.lines, [utf8('USER jösé'), utf8('PASS pässwörd€')]);
  } finally {
    c.close();
    await s.close();
  }
});
