// The `postern` CLI against a running server (spawned like an operator would), and the admin API's
// security rules: token required, loopback only without TLS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { spawnServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';
import { startTestServer } from '../helpers/test-server.ts';

const CLI = fileURLToPath(new URL('../../core/cli/postern.js', import.meta.url));
let dataDir: string;
let srv: SpawnedServer;

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      encoding: 'buffer',
      env: { ...process.env, POSTERN_DATA_DIR: dataDir, POSTERN_ADMIN_PORT: String(srv?.adminPort ?? 1), ...env },
    }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() }));
  });
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'postern-cli-'));
  srv = await spawnServer(dataDir);
});
after(async () => {
  srv.child.kill('SIGTERM');
  await srv.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

test('--help lists every command, and each command has its own --help', async () => {
  const top = await cli(['--help']);
  assert.equal(top.code, 0);
  for (const cmd of ['serve', 'config', 'user', 'archive', 'status']) assert.match(top.stdout.toString(), new RegExp(`\\n  ${cmd}\\b`));
  const add = await cli(['user', 'add', '--help']);
  assert.equal(add.code, 0);
  assert.match(add.stdout.toString(), /--address <address> .*\(repeatable\)/);
  const get = await cli(['archive', 'get', '--help']);
  assert.match(get.stdout.toString(), /original bytes/);
});

test('config check reports the file and line of each problem and exits 2', async () => {
  const file = join(dataDir, 'bad.yaml');
  writeFileSync(file, 'smtp:\n  port: "many"\n  prot: 25\nadmin:\n  port: 9025\n');
  const r = await cli(['--config', file, 'config', 'check']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:2:3: smtp\\.port: `));
  assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:3:3: smtp\\.prot: unknown key "prot"`));
  const ok = await cli(['config', 'check']);
  assert.equal(ok.code, 0);
  assert.match(ok.stdout.toString(), /postern\.yaml: OK \(overridden by POSTERN_DATA_DIR, POSTERN_ADMIN_PORT\)/);
});

test('user add/list, archive list/get and status work against the running server', async () => {
  const add = await cli(['user', 'add', 'dora', '--address', 'dora@example.com', '--address', 'D.Ora@Example.com']);
  assert.equal(add.code, 0, add.stderr);
  assert.equal(add.stdout.toString(), 'Added user dora (dora@example.com, D.Ora@example.com)\n');
  const dup = await cli(['user', 'add', 'dora', '--address', 'x@example.com']);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /User "dora" already exists/);
  const list = await cli(['user', 'list']);
  assert.match(list.stdout.toString(), /^dora\tdora@example\.com, D\.Ora@example\.com$/m);

  const body = 'From: Eve <eve@else.org>\r\nSubject: cli check\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nbody \u00e9\r\n';
  const c = await SmtpClient.open(srv.smtpPort);
  await c.read();
  await c.cmd('EHLO cli.example');
  assert.equal((await sendMail(c, 'eve@else.org', ['d.ora@example.com'], Buffer.from(body, 'latin1'))).code, 250);
  c.close();
  await waitDrained(srv);

  const ls = await cli(['archive', 'list', 'dora']);
  assert.equal(ls.stdout.toString(), '1\t2026-11-02T10:00:00.000Z\tEve <eve@else.org>\tcli check\n');
  const get = await cli(['archive', 'get', 'dora', '1']);
  assert.equal(get.code, 0);
  assert.ok(get.stdout.equals(Buffer.from(body, 'latin1')), 'archive get returns the original bytes');
  const missing = await cli(['archive', 'get', 'dora', '99']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No message with UID 99/);
  const status = await cli(['status']);
  assert.match(status.stdout.toString(), /Intake: +depth 0 /);
  assert.match(status.stdout.toString(), /Archive: +1 user, 1 message, 1 entry, 1 blob /);
  assert.match(status.stdout.toString(), /^Unrouted: +0 messages in "_unrouted" /m);
  assert.doesNotMatch(status.stdout.toString(), /^Storage:/m, 'no database trouble to report');
});

test('user edit, show and remove manage identities; a removed user\'s archive stays', async () => {
  assert.equal((await cli(['user', 'add', 'erin', '--address', 'erin@example.com', '--pop3-user', 'erin.p'])).code, 0);
  const edit = await cli(['user', 'edit', 'erin', '--add-address', 'e.r@example.com', '--add-domain', 'erin.example', '--remove-pop3-user', 'erin.p']);
  assert.equal(edit.code, 0, edit.stderr);
  assert.match(edit.stdout.toString(), /^Addresses: erin@example\.com, e\.r@example\.com$/m);
  assert.match(edit.stdout.toString(), /^Domains:   erin\.example$/m);
  assert.match(edit.stdout.toString(), /^POP3:      -$/m);
  assert.equal((await cli(['user', 'edit', 'erin', '--add-group', 'legal', '--add-group', 'staff'])).code, 0);
  const grouped = await cli(['user', 'edit', 'erin', '--remove-group', 'legal']);
  assert.equal(grouped.code, 0, grouped.stderr);
  assert.match(grouped.stdout.toString(), /^Groups:    staff$/m);
  const badGroup = await cli(['user', 'edit', 'erin', '--add-group', 'Not Valid']);
  assert.equal(badGroup.code, 1);
  assert.match(badGroup.stderr, /"addGroups" item 1 must be lower-case/);
  const clash = await cli(['user', 'edit', 'erin', '--add-address', 'dora@example.com']);
  assert.equal(clash.code, 1);
  assert.match(clash.stderr, /Address "dora@example\.com" already belongs to user "dora"/);
  const show = await cli(['user', 'show', 'erin']);
  assert.match(show.stdout.toString(), /^User: +erin$/m);
  const rm = await cli(['user', 'remove', 'erin']);
  assert.equal(rm.code, 0);
  assert.equal((await cli(['user', 'show', 'erin'])).code, 1);
  assert.equal((await cli(['user', 'add', 'frank', '--address', 'erin@example.com'])).code, 0, 'the address is free again');
});

test('the admin API needs the token; /healthz and /metrics do not', async () => {
  const base = `http://127.0.0.1:${srv.adminPort}`;
  assert.equal((await fetch(`${base}/api/v1/status`)).status, 401);
  assert.equal((await fetch(`${base}/api/v1/status`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  const metrics = await fetch(`${base}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /^postern_messages_accepted_total\{listener="smtp"\} \d+$/m);
  const bad = await fetch(`${base}/api/v1/users`, { method: 'POST', headers: { authorization: `Bearer ${(await import('node:fs')).readFileSync(join(dataDir, 'admin.token'), 'utf8').trim()}`, 'content-type': 'application/json' }, body: '{"name":"Bad Name","addresses":[]}' });
  assert.equal(bad.status, 400);
});

test('a CLI without a reachable server says so', async () => {
  const r = await cli(['status'], { POSTERN_ADMIN_PORT: '1' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Cannot reach the admin API at http:\/\/127\.0\.0\.1:1: nothing is listening there/);
});

test('the admin API refuses a non-loopback address without TLS', async () => {
  await assert.rejects(startTestServer((c) => { c.admin.host = '0.0.0.0'; }), /Admin API host "0\.0\.0\.0" is not loopback/);
});
