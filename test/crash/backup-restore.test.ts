// Backup under load and restore: a backup taken while SMTP load runs, then a second (incremental)
// one; the backup verifies; a restore into a new data directory starts, passes `postern verify` and
// `postern audit verify`, and holds every message acknowledged before the backup began, byte for
// byte, exactly once. A restore refuses a non-empty directory; a damaged pack fails verification
// and is refused by restore.
// (Size: the load runs a few seconds; each step is one CLI call.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync, fstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { SmtpClient } from '../helpers/smtp-client.ts';
import { spawnServer, stopServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';

const CONNECTIONS = 4;

/** Every 7th message is larger than the intake's inline limit (256 KiB), so it is spooled to a file. */
function message(n: number): string {
  const lines = n % 7 === 0 ? 6000 : 40;
  return `From: load@else.org\r\nTo: journal@example.com\r\nSubject: backup ${n}\r\nMessage-ID: <backup-${n}@else.org>\r\n\r\n${`payload ${n} line of text\r\n`.repeat(lines)}`;
}

interface Load {
  acked: Map<number, number>;
  stop(): Promise<void>;
}

function startLoad(port: number): Load {
  const acked = new Map<number, number>();
  let stopping = false;
  let next = 0;
  const worker = async (): Promise<void> => {
    const c = await SmtpClient.open(port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO load.example')).code, 250);
    while (!stopping) {
      const n = next++;
      assert.equal((await c.cmd('MAIL FROM:<load@else.org>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<journal@example.com>')).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      c.write(message(n) + '.\r\n');
      const reply = await c.read(30000);
      assert.equal(reply.code, 250, `message ${n}: ${reply.text}`);
      acked.set(n, Date.now());
    }
    c.close();
  };
  const running = Promise.all(Array.from({ length: CONNECTIONS }, () => worker()));
  return {
    acked,
    async stop() {
      stopping = true;
      await running;
    },
  };
}

async function archived(s: SpawnedServer): Promise<Map<number, number[]>> {
  const uids = new Map<number, number[]>();
  let after = 0;
  for (;;) {
    const page = await s.api<{ entries: Array<{ uid: number; subject: string }> }>('GET', `/api/v1/archive/journal/messages?folder=Inbox&afterUid=${after}&limit=1000`);
    if (page.entries.length === 0) return uids;
    for (const e of page.entries) {
      const n = Number(/^backup (\d+)$/.exec(e.subject)?.[1] ?? NaN);
      assert.ok(Number.isInteger(n), `unexpected subject ${e.subject}`);
      uids.set(n, [...(uids.get(n) ?? []), e.uid]);
      after = e.uid;
    }
  }
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a backup under SMTP load restores into a new data directory with every message acknowledged before it began', { timeout: 240000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'postern-backup-'));
  const dataDir = join(root, 'data');
  const repo = join(root, 'backup');
  const restored = join(root, 'restored');
  let first: SpawnedServer | null = null;
  let second: SpawnedServer | null = null;
  try {
    first = await spawnServer(dataDir);
    await first.api('POST', '/api/v1/users', { name: 'journal', addresses: ['journal@example.com'] });
    const target = { dataDir, adminPort: first.adminPort };
    const inside = await runCli(['backup', '--output', join(dataDir, 'b')], target);
    assert.notEqual(inside.code, 0);
    assert.match(inside.stderr, /inside the data directory/);
    const load = startLoad(first.smtpPort);
    let stopped = false;
    let before: number[] = [];
    try {
      // Under load the intake defers archiving (up to intake.archiveMaxLagMs), so wait until some
      // messages are archived too: the first backup must copy both archive chunks and intake entries.
      const server = first;
      await waitFor('100 acknowledged messages, 20 of them archived', async () => load.acked.size >= 100 && (await server.api<{ archive: { messages: number } }>('GET', '/api/v1/status')).archive.messages >= 20);
      const backupBegan = Date.now();
      const full = await runCli(['backup', '--output', repo, '--json'], target);
      assert.equal(full.code, 0, full.stderr);
      const fullManifest = JSON.parse(full.stdout) as { id: string; parent: string | null; counts: { messages: number; chunksCopied: number; chunksReused: number } };
      assert.equal(fullManifest.parent, null);
      assert.ok(fullManifest.counts.chunksCopied > 0);
      before = [...load.acked].filter(([, at]) => at < backupBegan).map(([n]) => n);
      assert.ok(before.length >= 100);

      await waitFor('more messages after the first backup', () => load.acked.size >= before.length + 50);
      const incremental = await runCli(['backup', '--output', repo, '--json'], target);
      assert.equal(incremental.code, 0, incremental.stderr);
      const inc = JSON.parse(incremental.stdout) as { parent: string | null; counts: { chunksCopied: number; chunksReused: number } };
      assert.equal(inc.parent, fullManifest.id, 'the second backup builds on the first');
      assert.ok(inc.counts.chunksReused >= fullManifest.counts.chunksCopied * 0.9, `chunks of the first backup are reused, not copied again: ${JSON.stringify(inc.counts)}`);
      await load.stop();
      stopped = true;

      const verified = await runCli(['backup', 'verify', repo], target);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.match(verified.stderr, /2 snapshots verified, no problems/);

      // Restore the FIRST snapshot: it must hold everything acknowledged before it began.
      mkdirSync(join(root, 'occupied'));
      writeFileSync(join(root, 'occupied', 'keep.txt'), 'precious');
      const refused = await runCli(['restore', repo, '--data-dir', join(root, 'occupied'), '--snapshot', fullManifest.id], target);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /is not empty; a restore never overwrites/);
      assert.equal(readFileSync(join(root, 'occupied', 'keep.txt'), 'utf8'), 'precious');
      const restore = await runCli(['restore', repo, '--data-dir', restored, '--snapshot', fullManifest.id], target);
      assert.equal(restore.code, 0, restore.stderr);
      assert.match(restore.stdout, /Restored snapshot/);
      assert.deepEqual(readdirSync(root).filter((n) => n.includes('restoring')), [], 'no staging directory left');
    } finally {
      if (!stopped) await load.stop().catch(() => undefined);
    }
    await stopServer(first);
    first = null;

    second = await spawnServer(restored);
    await waitDrained(second);
    const restoredTarget = { dataDir: restored, adminPort: second.adminPort };
    const verify = await runCli(['verify'], restoredTarget);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /No problems found/);
    const audit = await runCli(['audit', 'verify'], restoredTarget);
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);

    const uids = await archived(second);
    const manifest = JSON.parse(readFileSync(join(repo, 'snapshots', readdirSync(join(repo, 'snapshots')).sort()[0] as string, 'manifest.json'), 'utf8')) as { startedAt: string };
    const began = Date.parse(manifest.startedAt);
    for (const [n, list] of uids) assert.equal(list.length, 1, `message ${n} is archived once, not ${list.length} times`);
    let checked = 0;
    // Every message acknowledged before the CLI was started for the first backup is there, byte for byte.
    for (const n of before) {
      const uid = uids.get(n)?.[0];
      assert.ok(uid !== undefined, `message ${n}, acknowledged before the backup began (${new Date(began).toISOString()}), is in the restored archive`);
      const res: Response = await fetch(`http://127.0.0.1:${second.adminPort}/api/v1/archive/journal/messages/${uid}/raw`, {
        headers: { authorization: `Bearer ${readFileSync(join(restored, 'admin.token'), 'utf8').trim()}` },
      });
      assert.equal(res.status, 200);
      assert.equal(Buffer.from(await res.arrayBuffer()).toString('utf8'), message(n), `message ${n} is byte-identical`);
      checked++;
    }
    assert.equal(checked, before.length);
    assert.ok(uids.size >= before.length);

    // Pruning to the newest snapshot keeps it whole (it uses packs the first one wrote).
    const pruned = await runCli(['backup', 'prune', repo, '--keep', '1'], restoredTarget);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, /Removed 1 snapshot and 0 packs/);
    const afterPrune = await runCli(['backup', 'verify', repo], restoredTarget);
    assert.equal(afterPrune.code, 0, afterPrune.stdout + afterPrune.stderr);
    assert.match(afterPrune.stderr, /1 snapshot verified, no problems/);

    // A damaged pack: verification names it, and restore refuses the snapshot and creates nothing.
    const pack = join(repo, 'packs', readdirSync(join(repo, 'packs')).sort()[0] as string);
    const fd = openSync(pack, 'r+');
    writeSync(fd, Buffer.from([0x58]), 0, 1, Math.floor(fstatSync(fd).size / 2));
    closeSync(fd);
    const damaged = await runCli(['backup', 'verify', repo], restoredTarget);
    assert.equal(damaged.code, 1);
    assert.match(damaged.stdout, /DAMAGED/);
    assert.match(damaged.stdout, /SHA-256/);
    const refusedDamaged = await runCli(['restore', repo, '--data-dir', join(root, 'again')], restoredTarget);
    assert.notEqual(refusedDamaged.code, 0);
    assert.match(refusedDamaged.stderr, /failed verification/);
    assert.ok(!readdirSync(root).some((n) => n.includes('again')), 'a refused restore creates nothing');
  } finally {
    if (first) await stopServer(first).catch(() => undefined);
    if (second) await stopServer(second).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
});
