// maxQueueDepth: a POP3 import (scripted POP3 server transcript) waits while the intake holds that
// many unarchived messages, and continues once archiving catches up. Archiving is held back by a
// `parse` hook that waits for the test to release it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

const MESSAGES = Array.from({ length: 6 }, (_, i) => `From: t${i}@example.test\r\nSubject: throttle ${i}\r\nMessage-ID: <throttle-${i}@example.test>\r\n\r\nbody ${i}\r\n`);
let srv: TestServer;
let pop: Server;
let popPort = 0;
let release: () => void = () => undefined;
const held = new Promise<void>((r) => (release = r));

function script(sock: Socket, line: string): void {
  const [cmd, arg] = line.split(' ');
  if (cmd === 'USER') sock.write('+OK\r\n');
  else if (cmd === 'PASS') sock.write('+OK\r\n');
  else if (cmd === 'UIDL') sock.write('+OK\r\n' + MESSAGES.map((_, i) => `${i + 1} uid-${i}\r\n`).join('') + '.\r\n');
  else if (cmd === 'RETR') sock.write(`+OK\r\n${MESSAGES[Number(arg) - 1] ?? ''}.\r\n`);
  else if (cmd === 'QUIT') sock.end('+OK\r\n');
  else sock.write('-ERR\r\n');
}

before(async () => {
  pop = createServer((sock) => {
    sock.write('+OK scripted\r\n');
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        script(sock, buf.slice(0, nl));
        buf = buf.slice(nl + 2);
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => pop.listen(0, '127.0.0.1', () => r()));
  popPort = (pop.address() as { port: number }).port;
  srv = await startTestServer((c) => {
    c.hooks.timeoutMs = 120_000;
  });
  srv.running.app.service('hooks').on('parse', 'test-hold', async () => {
    await held;
    return {};
  });
});
after(async () => {
  release();
  await srv.stop();
  await new Promise<void>((r) => pop.close(() => r()));
});

test('the import waits at maxQueueDepth and resumes when archiving catches up', async () => {
  const jobs = srv.running.app.service('jobs');
  const capture = srv.running.app.service('capture');
  await jobs.create({
    name: 'throttled', kind: 'import-pop3', schedule: null, enabled: true,
    options: { server: '127.0.0.1', port: popPort, tls: 'none', username: 'j', password: 'pw', maxQueueDepth: 2 },
  }, 'test');
  await jobs.run('throttled', 'manual', 'test');
  for (let i = 0; i < 200 && capture.depth() < 2; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(capture.depth(), 2);
  // While archiving is held, the job stays at two submissions: it waits for room in the intake.
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(jobs.show('throttled').sequence, 2);
    assert.equal(jobs.show('throttled').status, 'running');
  }
  release();
  await jobs.waitFor('throttled');
  const [result] = await jobs.results({ job: 'throttled' });
  assert.equal(result?.status, 'succeeded', JSON.stringify(result));
  assert.deepEqual(result?.counts, { found: 6, archived: 6, duplicates: 0, failed: 0 });
  await srv.settle();
  assert.equal((await srv.archive.stats()).messages, 6);
});
