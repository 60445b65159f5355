// The pull reader under the POP3 proxy: lines split across chunks, bare LF, the length bound, the
// whole-line deadline, a peer that closes, bytes put back, and detach returning what was read ahead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { ReadError, SocketReader } from '../../../core/pop3/socket-reader.ts';

test('lines arrive whole across chunks; CRLF and bare LF both end a line', async () => {
  const s = new PassThrough();
  const r = new SocketReader(s, 1024);
  s.write('US');
  setTimeout(() => s.write('ER a\r\nNOOP\nRE'), 10);
  assert.equal((await r.readLine(100, 1000)).toString(), 'USER a');
  assert.equal((await r.readLine(100, 1000)).toString(), 'NOOP');
  s.write('TR 1\r\nrest');
  assert.equal((await r.readLine(100, 1000)).toString(), 'RETR 1');
  assert.equal((await r.readChunk(1000)).toString(), 'rest');
  r.unshift(Buffer.from('back\r\n'));
  assert.equal((await r.readLine(100, 1000)).toString(), 'back');
});

test('a line over the limit, a line that never ends, and a closed peer each fail with their reason', async () => {
  const s1 = new PassThrough();
  const r1 = new SocketReader(s1, 1024);
  s1.write('x'.repeat(200));
  await assert.rejects(r1.readLine(100, 1000), (e: unknown) => e instanceof ReadError && e.reason === 'too-long');
  const s2 = new PassThrough();
  const r2 = new SocketReader(s2, 1024);
  s2.write('USER never-ends');
  await assert.rejects(r2.readLine(100, 50), (e: unknown) => e instanceof ReadError && e.reason === 'timeout');
  const s3 = new PassThrough();
  const r3 = new SocketReader(s3, 1024);
  s3.end('partial');
  await assert.rejects(r3.readLine(100, 1000), (e: unknown) => e instanceof ReadError && e.reason === 'closed');
});

test('detach stops reading and hands back what was read ahead', async () => {
  const s = new PassThrough();
  const r = new SocketReader(s, 1024);
  s.write('STLS\r\nUSER injected\r\n');
  assert.equal((await r.readLine(100, 1000)).toString(), 'STLS');
  assert.equal(r.detach().toString(), 'USER injected\r\n');
  assert.equal(s.listenerCount('data'), 0);
});
