// Replies to pipelined commands (RFC 2920) leave the journaling endpoint in one write, as Postfix's
// smtpd sends them: a client that pipelines MAIL, RCPT, RCPT, DATA reads the four replies at once.
// The server runs in its own process (`postern serve`), so the client reads each segment as it
// arrives; one write per reply would show as several reads. QUIT at the end of a pipelined group
// still gets its 221 and the close; a STARTTLS at the end of a pipelined group still upgrades.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer, stopServer, type SpawnedServer } from '../helpers/spawn-server.ts';
import { startTestServer } from '../helpers/test-server.ts';

interface Reader {
  /** Every chunk read since the last reset, as it arrived. */
  reads: string[];
  /** Final reply lines ("250 …") read since the last reset. */
  replies(): string[];
  until(finals: number): Promise<void>;
  reset(): void;
}

function reader(socket: Socket | TLSSocket): Reader {
  socket.setEncoding('latin1');
  const reads: string[] = [];
  let wake: (() => void) | null = null;
  socket.on('data', (d: string) => {
    reads.push(d);
    wake?.();
  });
  const replies = (): string[] => reads.join('').split('\r\n').filter((l) => /^\d{3} /.test(l));
  return {
    reads,
    replies,
    async until(finals) {
      const deadline = Date.now() + 15000;
      while (replies().length < finals) {
        assert.ok(Date.now() < deadline, `only ${JSON.stringify(reads)} within 15 s`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
    },
    reset() {
      reads.length = 0;
    },
  };
}

test('the replies to pipelined commands leave in one write; a pipelined QUIT still flushes and closes', { timeout: 120000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-pipelined-'));
  let srv: SpawnedServer | null = null;
  try {
    srv = await spawnServer(dir);
    const socket = connect(srv.smtpPort, '127.0.0.1');
    socket.setNoDelay(true);
    const r = reader(socket);
    await r.until(1);
    socket.write('EHLO client.example\r\n');
    await r.until(2);
    assert.ok(r.reads.join('').includes('250-PIPELINING'), 'PIPELINING is advertised');

    for (let round = 0; round < 3; round++) {
      r.reset();
      socket.write('MAIL FROM:<p@else.org>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n');
      await r.until(4);
      assert.deepEqual(r.replies().map((l) => l.slice(0, 3)), ['250', '250', '250', '354']);
      assert.equal(r.reads.length, 1, `four replies in one read: ${JSON.stringify(r.reads)}`);
      r.reset();
      socket.write(`Subject: pipelined ${round}\r\n\r\nbody\r\n.\r\n`);
      await r.until(1);
      assert.match(r.replies()[0] ?? '', /^250 /);
    }

    r.reset();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('RSET\r\nNOOP\r\nQUIT\r\n');
    await closed;
    assert.deepEqual(r.replies().map((l) => l.slice(0, 3)), ['250', '250', '221']);
    assert.equal(r.reads.length, 1, `three replies in one read: ${JSON.stringify(r.reads)}`);
  } finally {
    if (srv) await stopServer(srv).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a STARTTLS that ends a pipelined group gets its 220 in plaintext and the session goes on over TLS', { timeout: 60000 }, async () => {
  const srv = await startTestServer();
  try {
    const socket = connect(srv.smtpPort, '127.0.0.1');
    const r = reader(socket);
    await r.until(1);
    socket.write('EHLO client.example\r\n');
    await r.until(2);
    r.reset();
    socket.write('NOOP\r\nSTARTTLS\r\n');
    await r.until(2);
    assert.deepEqual(r.replies().map((l) => l.slice(0, 3)), ['250', '220']);
    socket.removeAllListeners('data');
    const secure = tlsConnect({ socket, rejectUnauthorized: false });
    await new Promise((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    const t = reader(secure);
    secure.write('EHLO client.example\r\n');
    await t.until(1);
    assert.match(t.replies()[0] ?? '', /^250 /);
    t.reset();
    secure.write('QUIT\r\n');
    await t.until(1);
    assert.match(t.replies()[0] ?? '', /^221 /);
    secure.destroy();
  } finally {
    await srv.stop();
  }
});
