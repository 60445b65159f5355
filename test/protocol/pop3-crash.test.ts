// Durability of POP3 captures under SIGKILL: a real `postern serve` child process proxies to a
// scripted upstream; the client retrieves messages and DELEs each one as soon as its final "."
// arrives, and the server is killed right after the last one. After a restart on the same data
// directory, every message whose "." the client saw is in the login's archive, byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';
import { FakeUpstream, Pop3TestClient, unstuff } from './pop3-helpers.ts';

const COUNT = 25;
const PASSWORD = 'crash-pw-5521';
const MESSAGES = Array.from({ length: COUNT }, (_, i) => Buffer.from(
  `From: crash@else.org\r\nTo: alice@example.com\r\nSubject: pop3 crash ${i + 1}\r\nMessage-ID: <pop3-crash-${i + 1}@else.org>\r\n\r\n${`.line ${i}\r\n`.repeat(200)}`,
));

function pop3PortOf(s: SpawnedServer): number {
  const ready = s.logs.find((l) => l.includes('"Postern is ready"'));
  const port = ready ? (JSON.parse(ready) as { pop3Port?: number }).pop3Port : undefined;
  if (!port) throw new Error(`No POP3 port in the ready line:\n${s.logs.join('\n')}`);
  return port;
}

test('every message whose final "." reached the client survives a SIGKILL and is archived after restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-pop3-crash-'));
  const upstream = new FakeUpstream({ user: 'alice', password: PASSWORD, messages: MESSAGES });
  await upstream.start();
  const env = { POSTERN_POP3_UPSTREAM: `127.0.0.1:${upstream.port}`, POSTERN_POP3_PORT: '0', POSTERN_POP3_TLS_PORT: '0' };
  let second: SpawnedServer | null = null;
  try {
    const first = await spawnServer(dir, env);
    await first.api('POST', '/api/v1/users', { name: 'alice', addresses: ['alice@example.com'], pop3Users: ['alice'] });
    const c = await Pop3TestClient.open(pop3PortOf(first));
    assert.match(await c.line(), /^\+OK/);
    assert.match(await c.cmd('USER alice'), /^\+OK/);
    assert.match(await c.cmd(`PASS ${PASSWORD}`), /^\+OK/);
    const seen: number[] = [];
    for (let n = 1; n <= COUNT; n++) {
      assert.match(await c.cmd(`RETR ${n}`), /^\+OK/);
      assert.deepEqual(unstuff(await c.body()), MESSAGES[n - 1]);
      seen.push(n);
      assert.match(await c.cmd(`DELE ${n}`), /^\+OK/);
    }
    first.child.kill('SIGKILL');
    await first.exited;
    c.close();
    second = await spawnServer(dir, env);
    await waitDrained(second);
    const { entries } = await second.api<{ entries: Array<{ uid: number; subject: string }> }>('GET', '/api/v1/archive/alice/messages');
    assert.equal(entries.length, seen.length);
    const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    for (const e of entries) {
      const n = Number(/pop3 crash (\d+)/.exec(e.subject)?.[1]);
      const res: Response = await fetch(`http://127.0.0.1:${second.adminPort}/api/v1/archive/alice/messages/${e.uid}/raw`, { headers: { authorization: `Bearer ${token}` } });
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), MESSAGES[n - 1], `message ${n}`);
    }
  } finally {
    second?.child.kill('SIGTERM');
    if (second) await second.exited;
    await upstream.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
