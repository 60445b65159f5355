// Durability under a crash: SIGKILL in the middle of a multi-connection load; after a restart every
// message that got a 250 is archived exactly once, and nothing is archived that the client did not
// finish sending. Also: SIGTERM finishes or tempfails in-flight work and exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmtpClient } from '../helpers/smtp-client.ts';
import { spawnServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';

const CONNECTIONS = 8;
const PER_CONNECTION = 300; // 2,400 messages planned

interface LoadResult {
  acked: Set<number>;
  /** The final "." was sent but no reply arrived: the client cannot know; either outcome is allowed. */
  inDoubt: Set<number>;
}

function message(n: number): string {
  return `From: load@else.org\r\nTo: journal@example.com\r\nSubject: crash ${n}\r\nMessage-ID: <crash-${n}@else.org>\r\n\r\n${'payload line\r\n'.repeat(150)}`;
}

async function load(port: number, onAck: (count: number) => void): Promise<LoadResult> {
  const acked = new Set<number>();
  const inDoubt = new Set<number>();
  const worker = async (w: number): Promise<void> => {
    let c: SmtpClient;
    try {
      c = await SmtpClient.open(port);
      if ((await c.read()).code !== 220) return;
      if ((await c.cmd('EHLO load.example')).code !== 250) return;
    } catch {
      return;
    }
    for (let i = 0; i < PER_CONNECTION; i++) {
      const n = w * PER_CONNECTION + i;
      try {
        if ((await c.cmd('MAIL FROM:<load@else.org>')).code !== 250) break;
        if ((await c.cmd('RCPT TO:<journal@example.com>')).code !== 250) break;
        if ((await c.cmd('DATA')).code !== 354) break;
        c.write(message(n) + '.\r\n');
        inDoubt.add(n);
        const reply = await c.read(30000);
        inDoubt.delete(n);
        if (reply.code !== 250) break;
        acked.add(n);
        onAck(acked.size);
      } catch {
        break; // connection died with the server
      }
    }
    c.close();
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, w) => worker(w)));
  return { acked, inDoubt };
}

async function archivedSubjects(s: SpawnedServer): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  let after = 0;
  for (;;) {
    const page = await s.api<{ entries: Array<{ uid: number; subject: string }> }>('GET', `/api/v1/archive/journal/messages?folder=Inbox&afterUid=${after}&limit=1000`);
    if (page.entries.length === 0) break;
    for (const e of page.entries) {
      const n = Number(/^crash (\d+)$/.exec(e.subject)?.[1] ?? NaN);
      assert.ok(Number.isInteger(n), `unexpected subject ${e.subject}`);
      counts.set(n, (counts.get(n) ?? 0) + 1);
      after = e.uid;
    }
  }
  return counts;
}

test('SIGKILL during a 2,400-message load over 8 connections loses no acknowledged message and duplicates none', { timeout: 240000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-crash-'));
  try {
    const first = await spawnServer(dataDir);
    await first.api('POST', '/api/v1/users', { name: 'journal', addresses: ['journal@example.com'] });
    let killed = false;
    const result = await load(first.smtpPort, (count) => {
      if (!killed && count >= 900) {
        killed = true;
        first.child.kill('SIGKILL');
      }
    });
    const exit = await first.exited;
    assert.equal(exit.signal, 'SIGKILL', 'the server was killed mid-load');
    assert.ok(result.acked.size >= 900 && result.acked.size < CONNECTIONS * PER_CONNECTION, `acked ${result.acked.size}`);

    const second = await spawnServer(dataDir);
    try {
      await waitDrained(second);
      const counts = await archivedSubjects(second);
      for (const n of result.acked) assert.equal(counts.get(n), 1, `acknowledged message ${n} archived ${counts.get(n) ?? 0} times`);
      for (const [n, count] of counts) {
        assert.equal(count, 1, `message ${n} archived ${count} times`);
        assert.ok(result.acked.has(n) || result.inDoubt.has(n), `message ${n} was archived but never fully sent`);
      }
      const st = await second.api<{ intake: { corrupt: number } }>('GET', '/api/v1/status');
      assert.equal(st.intake.corrupt, 0);
    } finally {
      second.child.kill('SIGTERM');
      assert.equal((await second.exited).code, 0);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('SIGTERM under load: in-flight transactions finish or get 4xx, the process exits 0, acknowledged mail is archived', { timeout: 120000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-term-'));
  try {
    const first = await spawnServer(dataDir);
    await first.api('POST', '/api/v1/users', { name: 'journal', addresses: ['journal@example.com'] });
    let signalled = false;
    const result = await load(first.smtpPort, (count) => {
      if (!signalled && count >= 200) {
        signalled = true;
        first.child.kill('SIGTERM');
      }
    });
    const exit = await first.exited;
    assert.equal(exit.code, 0, first.logs.slice(-5).join('\n'));
    assert.ok(first.logs.some((l) => l.includes('"Stopped"')));
    const second = await spawnServer(dataDir);
    try {
      await waitDrained(second);
      const counts = await archivedSubjects(second);
      for (const n of result.acked) assert.equal(counts.get(n), 1, `acknowledged message ${n}`);
      for (const [n] of counts) assert.ok(result.acked.has(n) || result.inDoubt.has(n), `message ${n} archived but not fully sent`);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
