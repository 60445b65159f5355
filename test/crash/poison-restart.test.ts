// A message that kills the process while it is archived (a main-thread bug in a plugin) must not
// kill it at every start: in flight at two consecutive unclean stops, it is archived raw-only (no
// plugin hook runs; byte-exact, routed by its envelope, flagged) and its intake entry quarantined
// (kept, listed, counted), and the server starts and serves; after the "upgrade" an operator's retry
// archives it fully, filing nothing twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SmtpClient } from '../helpers/smtp-client.ts';
import { spawnServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';

const PLUGIN = fileURLToPath(new URL('../fixtures/plugins/crash-on-poison/', import.meta.url));
const POISON = 'From: bob@else.org\r\nTo: alice@example.com\r\nSubject: poison\r\nX-Poison: crash\r\n\r\nkills the archiving half\r\n';

async function send(port: number, body: string): Promise<number> {
  const c = await SmtpClient.open(port);
  try {
    await c.read();
    await c.cmd('EHLO t.example');
    await c.cmd('MAIL FROM:<bob@else.org>');
    await c.cmd('RCPT TO:<alice@example.com>');
    await c.cmd('DATA');
    c.write(body + '.\r\n');
    return (await c.read(30000)).code;
  } finally {
    c.close();
  }
}

/** Start a server that is expected to kill itself (possibly before it is ready) and wait for that. */
async function startAndCrash(dir: string, env: Record<string, string>): Promise<void> {
  let s: SpawnedServer;
  try {
    s = await spawnServer(dir, env);
  } catch (err) {
    assert.match(String(err), /exited before ready/);
    return;
  }
  const { signal } = await Promise.race([s.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the poison did not kill the server')), 30000))]);
  assert.equal(signal, 'SIGKILL');
}

test('a message that crashes the process is quarantined after two unclean stops; the server then serves, and a retry archives it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-poison-'));
  const crashing = join(dir, 'crashing.yaml');
  writeFileSync(crashing, `plugins:\n  - name: crash-on-poison\n    path: ${JSON.stringify(PLUGIN)}\n`);
  const fixed = join(dir, 'fixed.yaml');
  writeFileSync(fixed, 'plugins: []\n');
  try {
    // First run: the poison is acknowledged (durably spooled), then kills the process while archived.
    const first = await spawnServer(dir, { POSTERN_CONFIG: crashing });
    await first.api('POST', '/api/v1/users', { name: 'alice', addresses: ['alice@example.com'] });
    assert.equal(await send(first.smtpPort, POISON), 250);
    assert.equal((await first.exited).signal, 'SIGKILL');

    // Second start resumes the entry and dies again: the second consecutive unclean stop.
    await startAndCrash(dir, { POSTERN_CONFIG: crashing });

    // Third start: the entry is archived raw-only and quarantined; the server starts and serves other mail.
    const third = await spawnServer(dir, { POSTERN_CONFIG: crashing });
    try {
      assert.ok(third.logs.some((l) => l.includes('consecutive unclean stops')), 'the quarantine is logged');
      assert.equal(await send(third.smtpPort, 'From: bob@else.org\r\nTo: alice@example.com\r\nSubject: ordinary\r\n\r\nfine\r\n'), 250);
      await waitDrained(third);
      const st = await third.api<{ intake: { corrupt: number }; flagged: Array<{ flags: string[] }> }>('GET', '/api/v1/status');
      assert.equal(st.intake.corrupt, 1);
      assert.ok(st.flagged.some((f) => f.flags.some((x) => /^analysis-failed: being archived at 2 consecutive unclean stops/.test(x))), JSON.stringify(st.flagged));
      const q = await third.api<{ entries: Array<{ id: string; lastError: string }> }>('GET', '/api/v1/intake?state=corrupt');
      assert.match(q.entries[0]?.lastError ?? '', /2 consecutive unclean stops/);
      const metrics = await (await fetch(`http://127.0.0.1:${third.adminPort}/metrics`)).text();
      assert.match(metrics, /^postern_intake_quarantined_messages 1$/m);
      const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
      const rawOf = async (port: number, uid: number): Promise<string> =>
        (await fetch(`http://127.0.0.1:${port}/api/v1/archive/alice/messages/${uid}/raw?folder=Inbox`, { headers: { authorization: `Bearer ${token}` } })).text();
      const listed = await third.api<{ entries: Array<{ uid: number; subject: string }> }>('GET', '/api/v1/archive/alice/messages?folder=Inbox');
      assert.equal(listed.entries.length, 2, JSON.stringify(listed));
      const rawOnly = listed.entries.find((e) => e.subject !== 'ordinary');
      assert.ok(rawOnly);
      assert.equal(await rawOf(third.adminPort, rawOnly.uid), POISON, 'archived raw-only, byte-exact, routed by its envelope');
      third.child.kill('SIGTERM');
      assert.equal((await third.exited).code, 0);

      // After the "upgrade" (the crashing plugin gone), a retry archives it fully; nothing is filed twice.
      const fourth = await spawnServer(dir, { POSTERN_CONFIG: fixed });
      try {
        const id = q.entries[0]?.id ?? '';
        await fourth.api('POST', `/api/v1/intake/${id}/retry`, {});
        await waitDrained(fourth);
        const after = await fourth.api<{ entries: Array<{ uid: number; subject: string }> }>('GET', '/api/v1/archive/alice/messages?folder=Inbox');
        assert.deepEqual(after.entries.map((e) => e.uid), listed.entries.map((e) => e.uid));
        assert.equal(await rawOf(fourth.adminPort, rawOnly.uid), POISON);
        assert.equal((await fourth.api<{ intake: { corrupt: number; depth: number } }>('GET', '/api/v1/status')).intake.corrupt, 0);
      } finally {
        fourth.child.kill('SIGTERM');
        await fourth.exited;
      }
    } finally {
      if (third.child.exitCode === null) third.child.kill('SIGKILL');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
