// `postern search` against a spawned server with the shipped configuration (search plugin enabled):
// hits printed as user, folder, UID, date, from, subject; status; online reindex; the reconcile job
// repairing drift; and a SIGKILL while indexing, after which the index catches up with nothing missing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { spawnServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';

const CLI = fileURLToPath(new URL('../../core/cli/postern.js', import.meta.url));
let dataDir: string;
let srv: SpawnedServer;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      env: { ...process.env, POSTERN_DATA_DIR: dataDir, POSTERN_ADMIN_PORT: String(srv.adminPort) },
    }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

interface Status {
  archived: number;
  indexed: number;
  pending: number;
  failedExtractions: number;
}

async function status(): Promise<Status> {
  const r = await cli(['search', 'status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Status;
}

async function caughtUp(timeoutMs = 60_000): Promise<Status> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await status();
    if (s.pending === 0 && s.indexed === s.archived) return s;
    if (Date.now() > deadline) throw new Error(`Index not caught up: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function send(n: number, start: number): Promise<void> {
  const c = await SmtpClient.open(srv.smtpPort);
  await c.read();
  await c.cmd('EHLO cli.test');
  for (let i = start; i < start + n; i++) {
    const body = `From: sender${i % 7}@example.org\r\nTo: ada@example.com\r\nSubject: Report number ${i} zebra${i}\r\nDate: Mon, 0${1 + (i % 9)} Jun 2025 10:00:00 +0000\r\nMessage-ID: <cli-${i}@example.org>\r\n\r\nBody text ${i} mentions the quokka project.\r\n`;
    const r = await sendMail(c, `sender${i % 7}@example.org`, ['ada@example.com'], body);
    assert.equal(r.code, 250, r.text);
  }
  await c.cmd('QUIT').catch(() => undefined);
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'postern-search-cli-'));
  srv = await spawnServer(dataDir);
  await srv.api('POST', '/api/v1/users', { name: 'ada', addresses: ['ada@example.com'] });
});
after(async () => {
  srv.child.kill('SIGTERM');
  await srv.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

test('postern search prints user, folder, UID, date, from and subject of each hit', async () => {
  await send(5, 0);
  await waitDrained(srv);
  await caughtUp();
  const r = await cli(['search', 'subject:zebra3']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ada\tInbox\t4\t2025-06-04T10:00:00.000Z\tsender3@example.org\tReport number 3 zebra3\n');
  assert.match(r.stderr, /1 hit shown of 1/);
  const all = await cli(['search', '--limit', '3', '--json', 'quokka']);
  const parsed = JSON.parse(all.stdout) as { total: number; hits: unknown[] };
  assert.equal(parsed.total, 5);
  assert.equal(parsed.hits.length, 3);
  const bad = await cli(['search', 'from:(x']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /position \d+/);
});

test('reindex rebuilds online and the reconcile job repairs drift', async () => {
  const r = await cli(['search', 'reindex', '--user', 'ada']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await caughtUp()).indexed, 5);
  // Drift behind the server's back: an entry removed from the index below the cursor.
  const db = new Database(join(dataDir, 'search', 'index.sqlite'));
  db.prepare("DELETE FROM entries WHERE user = 'ada' AND uid = 2").run();
  db.close();
  assert.equal((await cli(['search', 'zebra1'])).stdout, '');
  const run = await cli(['jobs', 'run', 'search-reconcile', '--wait']);
  assert.equal(run.code, 0, run.stderr + run.stdout);
  assert.match((await cli(['search', 'zebra1'])).stdout, /^ada\tInbox\t2\t/);
});

test('after a SIGKILL while indexing, a restart catches up with nothing missing', async () => {
  await send(150, 100);
  await waitDrained(srv);
  srv.child.kill('SIGKILL');
  await srv.exited;
  srv = await spawnServer(dataDir);
  const s = await caughtUp(120_000);
  assert.equal(s.indexed, 155);
  assert.equal(s.archived, 155);
  const hits = JSON.parse((await cli(['search', '--json', '--limit', '1000', 'quokka'])).stdout) as { total: number };
  assert.equal(hits.total, 155);
  assert.match((await cli(['search', 'zebra249'])).stdout, /\tReport number 249 zebra249\n$/);
});
