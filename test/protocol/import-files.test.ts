// `postern import mbox|eml|maildir` (the real CLI) against a running server: messages land in the
// archive with their bytes intact, --user keeps folders, failures are listed with a non-zero exit,
// and a re-import archives nothing new (dedup). Also the import/message route's bad inputs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, readAll, type TestServer } from '../helpers/test-server.ts';

const CLI = fileURLToPath(new URL('../../core/cli/postern.js', import.meta.url));
const fx = (name: string): string => fileURLToPath(new URL(`../fixtures/import/${name}`, import.meta.url));
let srv: TestServer;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      env: { ...process.env, POSTERN_DATA_DIR: srv.dataDir, POSTERN_ADMIN_PORT: String(srv.adminPort) },
    }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function post(path: string, body: Buffer, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const tok = token ?? readFileSync(join(srv.dataDir, 'admin.token'), 'utf8').trim();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv.adminPort, path, method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'message/rfc822' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(parts).toString() || '{}') as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function blobOf(user: string, folder: string, uid: number): Promise<string> {
  const e = await srv.archive.getEntry(user, folder, uid);
  assert.ok(e, `entry ${user}/${folder}/${uid}`);
  const m = await srv.archive.getMessage(e.messageId);
  assert.ok(m);
  return (await readAll(await srv.archive.openBlob(m.blobId))).toString('latin1');
}

before(async () => {
  srv = await startTestServer((c) => {
    c.plugins = [{ name: 'dedup', config: {} }];
    c.smtp.maxMessageSize = 64 * 1024;
    // Default routing: files carry no envelope, so the multidrop tests rely on the default To/Cc/From fallback.
    c.users = [{ name: 'bob', addresses: ['bob@example.com'], domains: [], pop3Users: [], groups: [] }, { name: 'carol', addresses: [], domains: [], pop3Users: [], groups: [] }];
  });
});
after(async () => {
  await srv.stop();
});

test('import mbox (multidrop): every message routed by its headers, bytes restored exactly', async () => {
  const r = await cli(['import', 'mbox', fx('mboxrd.mbox'), '--parallel', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Found: +3\nArchived: +3 .*\nDuplicates: +0 .*\nFailed: +0/);
  await srv.settle();
  const entries = await srv.archive.listEntries('bob', 'Inbox');
  assert.deepEqual(entries.map((e) => e.subject), ['one', 'two', 'three']);
  assert.equal(await blobOf('bob', 'Inbox', 1), 'From: alice@example.com\nTo: bob@example.com\nSubject: one\nMessage-ID: <one@example.com>\n\nHello Bob.\nFrom the archive: quoted once\n>From here: quoted twice\nFrom inside a paragraph is not a separator\n');
});

test('re-importing the same mbox archives nothing new: all duplicates', async () => {
  const before = await srv.archive.stats();
  const r = await cli(['import', 'mbox', fx('mboxrd.mbox')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Found: +3\nArchived: +0 .*\nDuplicates: +3 /);
  await srv.settle();
  const afterStats = await srv.archive.stats();
  assert.equal(afterStats.messages, before.messages);
  assert.equal(afterStats.entries, before.entries);
});

test('import maildir --user keeps the folder structure in that user only', async () => {
  const r = await cli(['import', 'maildir', fx('maildir'), '--user', 'carol']);
  assert.equal(r.code, 1, 'the empty file is a failure');
  assert.match(r.stdout, /Found: +6\nArchived: +5 .*\nDuplicates: +0 .*\nFailed: +1\n {2}.*\.Work\/cur\/1700000005\.6\.host:2,S: File is empty/);
  await srv.settle();
  const folders = (await srv.archive.folders('carol')).map((f) => `${f.folder}=${f.messages}`).sort();
  assert.deepEqual(folders, ['Inbox=2', 'Work/Projects=1', 'Work=1', 'Été=1']);
  assert.equal((await srv.archive.listEntries('bob', 'Inbox')).length, 3, 'exclusive: nothing added to bob although To: is his');
});

test('import eml (CRLF kept), then mbox failures: truncated, garbage, oversized, each listed with its offset', async () => {
  const e = await cli(['import', 'eml', fx('eml'), '--user', 'carol', '--folder', 'Eml']);
  assert.equal(e.code, 1);
  assert.match(e.stdout, /Found: +4\nArchived: +3 .*\nDuplicates: +0 .*\nFailed: +1\n {2}.*empty\.eml: File is empty/);
  await srv.settle();
  const eml = await srv.archive.listEntries('carol', 'Eml');
  assert.equal(eml.length, 3);
  const b = eml.find((x) => x.subject === 'eml b');
  assert.ok(b);
  assert.match(await blobOf('carol', 'Eml', b.uid), /\r\nSubject: eml b\r\n/);

  const t = await cli(['import', 'mbox', fx('truncated.mbox')]);
  assert.equal(t.code, 1);
  assert.match(t.stdout, /Found: +2\nArchived: +0 .*\nDuplicates: +1 .*\nFailed: +1\n {2}.*truncated\.mbox:248 \(message 2\): The file ends in the middle of a line/);
  const g = await cli(['import', 'mbox', fx('garbage.bin')]);
  assert.equal(g.code, 1);
  assert.match(g.stdout, /Failed: +1\n {2}.*garbage\.bin:0 \(message 1\): 4096 bytes before the first "From " line are not an mbox message/);
  const empty = await cli(['import', 'mbox', fx('empty.mbox')]);
  assert.equal(empty.code, 0);
  assert.match(empty.stdout, /Found: +0\n/);
});

test('bad command lines: unknown user, unknown format, missing file', async () => {
  const u = await cli(['import', 'mbox', fx('mboxrd.mbox'), '--user', 'nobody']);
  assert.equal(u.code, 1);
  assert.match(u.stderr, /User "nobody" does not exist/);
  const p = await cli(['import', 'mbox', fx('mboxrd.mbox'), '--parallel', '0']);
  assert.equal(p.code, 1);
  assert.match(p.stderr, /--parallel must be an integer from 1 to 32/);
  const f = await cli(['import', 'mbox', fx('mboxrd.mbox'), '--format', 'mboxcl2']);
  assert.equal(f.code, 1);
  assert.match(f.stderr, /--format must be mboxrd or mboxo/);
  const m = await cli(['import', 'maildir', fx('does-not-exist')]);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /ENOENT/);
});

test('import/message route: bounds and validation', async () => {
  const msg = Buffer.from('Subject: route\r\n\r\nbody\r\n');
  assert.equal((await post('/api/v1/import/message', msg, 'wrong')).status, 401);
  assert.equal((await post('/api/v1/import/message', Buffer.alloc(0))).status, 400);
  assert.equal((await post('/api/v1/import/message', Buffer.alloc(64 * 1024 + 1, 0x41))).status, 413);
  assert.match(String((await post('/api/v1/import/message?user=Bad%20Name', msg)).json.error), /not a valid user name/);
  assert.match(String((await post('/api/v1/import/message?user=carol&folder=a//b', msg)).json.error), /not a valid folder name/);
  assert.match(String((await post('/api/v1/import/message?folder=X', msg)).json.error), /only meaningful with user/);
  assert.match(String((await post('/api/v1/import/message?user=carol&direction=up', msg)).json.error), /direction/);
  const ok = await post('/api/v1/import/message?user=carol&direction=sent', msg);
  assert.equal(ok.status, 201);
  assert.equal(ok.json.duplicate, false);
  await srv.settle();
  assert.deepEqual((await srv.archive.listEntries('carol', 'Sent')).map((x) => x.subject), ['route']);
});
