// `postern export` against spawned servers, as an operator runs it: mbox, eml and zip by user and
// folder, by legal hold, as an auditor with --as; the files and their companions check with
// `sha256sum -c` alone; the round trip: export mbox → `postern import mbox --user` into a fresh
// server → the same SHA-256 set; access refused with a non-zero exit and the server's reason.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer, stopServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import type { ExportRecord } from '../../core/export/types.ts';

const PASSWORD = 'correct horse battery';
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

const ALICE = [
  'From: Partner <partner@client.example>\r\nTo: alice@example.com\r\nSubject: crlf\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\n',
  'From: other@else.example\nTo: alice@example.com\nSubject: lf without final newline\n\nFrom here\nlast line',
  'From: other@else.example\nTo: alice@example.com\nSubject: ends in a blank line\n\nbody\n\n',
  'From: partner@client.example\r\nTo: alice@example.com\r\nSubject: crlf without final newline\r\n\r\nFrom x\r\nend',
];
const WORK = 'From: partner@client.example\r\nTo: alice@example.com\r\nSubject: work\r\n\r\nin Work\r\n';
const BOB = 'From: partner@client.example\r\nTo: bob@example.com\r\nSubject: for bob\r\n\r\nbob\r\n';

let tmp: string;
let a: SpawnedServer;
let b: SpawnedServer | null = null;
const dirA = (): string => join(tmp, 'a');
const dirB = (): string => join(tmp, 'b');

const cli = (args: string[], env: Record<string, string> = {}, srv = a, dataDir = dirA()): Promise<CliResult> => runCli(args, { dataDir, adminPort: srv.adminPort }, env);
async function ok(args: string[], env: Record<string, string> = {}, srv = a, dataDir = dirA()): Promise<string> {
  const r = await cli(args, env, srv, dataDir);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** SHA-256 of every message in a user's archive, read back through the API. */
async function archivedShas(srv: SpawnedServer, user: string): Promise<string[]> {
  const { folders } = await srv.api<{ folders: Array<{ folder: string }> }>('GET', `/api/v1/users/${user}/folders`);
  const token = readFileSync(join(srv === a ? dirA() : dirB(), 'admin.token'), 'utf8').trim();
  const out: string[] = [];
  for (const { folder } of folders) {
    const { entries } = await srv.api<{ entries: Array<{ uid: number }> }>('GET', `/api/v1/archive/${user}/messages?folder=${encodeURIComponent(folder)}`);
    for (const e of entries) {
      const res = await fetch(`http://127.0.0.1:${srv.adminPort}/api/v1/archive/${user}/messages/${e.uid}/raw?folder=${encodeURIComponent(folder)}`, { headers: { authorization: `Bearer ${token}` } });
      out.push(sha(Buffer.from(await res.arrayBuffer())));
    }
  }
  return out.sort();
}

function sha256sumCheck(cwd: string, file: string): string {
  return execFileSync('sha256sum', ['-c', file], { cwd, encoding: 'utf8' });
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'postern-export-cli-'));
  a = await spawnServer(dirA());
  for (const [name, privileges] of [['alice', ['login', 'export']], ['bob', ['login']], ['audrey', ['login', 'auditor', 'export']]] as const) {
    await ok(['user', 'add', name, '--address', `${name}@example.com`]);
    await a.api('PATCH', `/api/v1/privileges/${name}`, { add: privileges, remove: [] });
    await a.api('PUT', '/api/v1/account/password', { user: name, password: PASSWORD });
  }
  const files = join(tmp, 'in');
  mkdirSync(files);
  ALICE.forEach((m, i) => writeFileSync(join(files, `a${i}.eml`), m));
  writeFileSync(join(tmp, 'work.eml'), WORK);
  writeFileSync(join(tmp, 'bob.eml'), BOB);
  await ok(['import', 'eml', files, '--user', 'alice', '--parallel', '1']);
  await ok(['import', 'eml', join(tmp, 'work.eml'), '--user', 'alice', '--folder', 'Work']);
  await ok(['import', 'eml', join(tmp, 'bob.eml'), '--user', 'bob']);
  await waitDrained(a);
});
after(async () => {
  await stopServer(a);
  if (b) await stopServer(b);
  rmSync(tmp, { recursive: true, force: true });
});

test('postern export --help names the selections, formats and --output', async () => {
  const help = await ok(['export', '--help']);
  for (const opt of ['--user <name>', '--folder <folder>', '--hold <name>', '--query <query>', '--format <format>', '--output <path>', '--as <user>', '--keep']) assert.ok(help.includes(opt), opt);
  assert.match(await ok(['--help']), /\n {2}export /);
});

test('mbox: the file, its manifest and SHA256SUMS beside it; sha256sum -c passes; the server copy is deleted', async () => {
  const out = join(tmp, 'alice.mbox');
  const stdout = await ok(['export', '--user', 'alice', '--format', 'mbox', '--output', out]);
  assert.match(stdout, /^Exported 5 messages \(\d+ bytes\) as mbox to .*alice\.mbox\nManifest: SHA-256 [0-9a-f]{64} \(audit record \d+\)\nCheck: {4}cd .* && sha256sum -c alice\.mbox\.SHA256SUMS\n$/);
  assert.match(sha256sumCheck(tmp, 'alice.mbox.SHA256SUMS'), /alice\.mbox: OK\nalice\.mbox\.manifest\.jsonl: OK/);
  const manifest = readFileSync(`${out}.manifest.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; sha256?: string });
  assert.deepEqual(manifest.filter((l) => l.type === 'message').map((l) => l.sha256).sort(), await archivedShas(a, 'alice'));
  assert.match(stdout, new RegExp(`SHA-256 ${sha(readFileSync(`${out}.manifest.jsonl`))}`));
  assert.deepEqual(readdirSync(join(dirA(), 'exports')), [], 'deleted on the server after the verified download');
  // An existing file is not overwritten without --force.
  const again = await cli(['export', '--user', 'alice', '--format', 'mbox', '--output', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists; remove it or give --force/);
});

test('round trip: export mbox, import it into a fresh server, the same SHA-256 set', async () => {
  const out = join(tmp, 'roundtrip.mbox');
  await ok(['export', '--user', 'alice', '--format', 'mbox', '--output', out]);
  b = await spawnServer(dirB());
  await ok(['user', 'add', 'alice', '--address', 'alice@example.com'], {}, b, dirB());
  const imported = await ok(['import', 'mbox', out, '--user', 'alice'], {}, b, dirB());
  assert.match(imported, /Found: {6}5\nArchived: {3}5 /);
  await waitDrained(b);
  const before = await archivedShas(a, 'alice');
  assert.equal(before.length, 5);
  assert.deepEqual(await archivedShas(b, 'alice'), before);
  // The messages themselves, not only their hashes: the ones without a final newline too.
  for (const m of [...ALICE, WORK]) assert.ok(before.includes(sha(m)), JSON.stringify(m.slice(-20)));
});

test('eml: a directory of USER/FOLDER/UID.eml with manifest.jsonl and SHA256SUMS that sha256sum -c checks', async () => {
  const out = join(tmp, 'alice-eml');
  const stdout = await ok(['export', '--user', 'alice', '--folder', 'inbox', '--format', 'eml', '--output', out]);
  assert.match(stdout, /Exported 4 messages/);
  assert.deepEqual(readdirSync(join(out, 'alice', 'Inbox')).sort(), ['1.eml', '2.eml', '3.eml', '4.eml']);
  assert.deepEqual(readdirSync(out).sort(), ['SHA256SUMS', 'alice', 'manifest.jsonl']);
  const check = sha256sumCheck(out, 'SHA256SUMS');
  assert.equal(check.match(/: OK$/gm)?.length, 5);
  assert.deepEqual(ALICE.map((m) => sha(m)).sort(), readdirSync(join(out, 'alice', 'Inbox')).map((f) => sha(readFileSync(join(out, 'alice', 'Inbox', f)))).sort());
  assert.ok(!readdirSync(tmp).some((f) => f.endsWith('.zip')), 'the download is removed after unpacking');
});

test('zip by legal hold, kept on the server: unzip layout, SHA256SUMS beside it, progress in postern jobs show', async () => {
  await ok(['hold', 'create', 'case-7', '--address', 'partner@client.example']);
  const out = join(tmp, 'case-7.zip');
  const json = JSON.parse(await ok(['export', '--hold', 'case-7', '--format', 'zip', '--output', out, '--keep', '--json'])) as { export: ExportRecord; files: string[] };
  assert.equal(json.export.counts.exported, 4, 'alice crlf, crlf without newline, Work, bob');
  assert.deepEqual(json.files, [out, `${out}.SHA256SUMS`]);
  assert.match(sha256sumCheck(tmp, 'case-7.zip.SHA256SUMS'), /case-7\.zip: OK/);
  const show = await ok(['jobs', 'show', json.export.job]);
  assert.match(show, /\(export, from api\)/);
  assert.match(show, /Status: +succeeded/);
  assert.match(show, /Detail: +4 exported, 0 failed, \d+ bytes \(zip of hold case-7\)/);
  assert.ok(existsSync(join(dirA(), 'exports', json.export.id, 'export.zip')), 'kept with --keep');
});

test('eml by search query (the search plugin of the shipped configuration)', async () => {
  const q = 'subject:"without final newline"';
  for (let i = 0; ; i++) {
    const r = await a.api<{ hits: unknown[] }>('GET', `/api/v1/search?q=${encodeURIComponent(q)}`);
    if (r.hits.length === 2) break;
    if (i > 300) throw new Error(`the index did not catch up: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  const out = join(tmp, 'query-eml');
  assert.match(await ok(['export', '--query', q, '--format', 'eml', '--output', `${out}/`]), /Exported 2 messages/);
  assert.equal(sha256sumCheck(out, 'SHA256SUMS').match(/: OK$/gm)?.length, 3);
  const got = readdirSync(join(out, 'alice', 'Inbox')).map((f) => sha(readFileSync(join(out, 'alice', 'Inbox', f)))).sort();
  assert.deepEqual(got, [ALICE[1] as string, ALICE[3] as string].map((m) => sha(m)).sort());
});

test('as an auditor with --as; a user without the privilege, or for another archive, is refused', async () => {
  const out = join(tmp, 'bob-by-audrey.mbox');
  const stdout = await ok(['export', '--user', 'bob', '--format', 'mbox', '--output', out, '--as', 'audrey'], { POSTERN_PASSWORD: PASSWORD });
  assert.match(stdout, /Exported 1 message /);
  assert.match(sha256sumCheck(tmp, 'bob-by-audrey.mbox.SHA256SUMS'), /OK/);
  const bob = await cli(['export', '--user', 'bob', '--format', 'mbox', '--output', join(tmp, 'x.mbox'), '--as', 'bob'], { POSTERN_PASSWORD: PASSWORD });
  assert.equal(bob.code, 1);
  assert.match(bob.stderr, /"bob" needs the "export" privilege/);
  const other = await cli(['export', '--user', 'bob', '--format', 'mbox', '--output', join(tmp, 'y.mbox'), '--as', 'alice'], { POSTERN_PASSWORD: PASSWORD });
  assert.equal(other.code, 1);
  assert.match(other.stderr, /"alice" may export only their own archive/);
  assert.ok(!existsSync(join(tmp, 'x.mbox')) && !existsSync(join(tmp, 'y.mbox')));
  const none = await cli(['export', '--format', 'mbox', '--output', join(tmp, 'z.mbox')]);
  assert.match(none.stderr, /Give exactly one of --user, --hold or --query/);
  const format = await cli(['export', '--user', 'alice', '--format', 'tar', '--output', join(tmp, 'z.tar')]);
  assert.match(format.stderr, /--format must be mbox, eml or zip/);
});
