// End to end: Exchange journal reports (fixtures from the published format) sent over SMTP to the
// journal address; each user's folders are then read with the CLI. Attribution comes from the report's
// envelope (Bcc, DL expansion, forwarding, on-behalf-of), never from the wrapper's own headers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { spawnServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';

const CLI = fileURLToPath(new URL('../../core/cli/postern.js', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/journal/', import.meta.url));
let dataDir: string;
let configFile: string;
let srv: SpawnedServer;

function cli(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      encoding: 'buffer',
      env: { ...process.env, POSTERN_CONFIG: configFile, POSTERN_DATA_DIR: dataDir, POSTERN_ADMIN_PORT: String(srv.adminPort) },
    }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() }));
  });
}

async function subjects(user: string, folder: string): Promise<string[]> {
  const r = await cli(['archive', 'list', user, '--folder', folder, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout.toString()) as Array<{ subject: string }>).map((e) => e.subject).sort();
}

/** Stuff a fixture for DATA: CRLF lines, leading dots doubled. */
function dataOf(file: string): Buffer {
  const text = readFileSync(join(FIXTURES, file), 'latin1').replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  return Buffer.from(text.endsWith('\r\n') ? text : text + '\r\n', 'latin1');
}

const FILES = [
  'exchange-inbound.eml', 'exchange-internal-typed.eml', 'exchange-expanded-dl.eml', 'exchange-forwarded.eml',
  'exchange-on-behalf-of.eml', 'exchange-split-1.eml', 'exchange-split-2.eml', 'exchange-ndr-wrapped.eml',
  'exchange-irm.eml', 'malformed-no-rfc822.eml',
  // Multidrop copies (not journal reports): the SMTP recipient is only the journal address, so the
  // header sources decide (X-Gm-Original-To over the Gmail account's Delivered-To; X-Original-To).
  'multidrop-gm-original-to.eml', 'multidrop-x-original-to.eml',
];

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'postern-journal-'));
  configFile = join(dataDir, 'postern.yaml');
  writeFileSync(configFile, [
    'routing:',
    '  journalAddresses: [journal@example.com]',
    'users:',
    ...['alice', 'bob', 'carol', 'dave', 'erin', 'sales', 'ceo', 'assistant', 'carol.j', 'ops'].map((u) => `  - { name: ${u}, addresses: [${u}@example.com] }`),
    '',
  ].join('\n'));
  srv = await spawnServer(dataDir, { POSTERN_CONFIG: configFile });
  const c = await SmtpClient.open(srv.smtpPort);
  await c.read();
  await c.cmd('EHLO exchange.example.com');
  for (const f of FILES) {
    const reply = await sendMail(c, 'postmaster@example.com', ['journal@example.com'], dataOf(f));
    assert.equal(reply.code, 250, `${f}: ${reply.text}`);
  }
  c.close();
  await waitDrained(srv);
});

after(async () => {
  srv.child.kill('SIGTERM');
  await srv.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

test('senders get Sent, To/Cc/Bcc recipients get Inbox; the wrapper and unknown addresses get nothing', async () => {
  assert.deepEqual(await subjects('erin', 'Inbox'), ['Contract draft', 'Präsentation Q2'], 'Bcc (typed) and Bcc forwarded-from');
  assert.deepEqual(await subjects('dave', 'Inbox'), ['Contract draft', 'Office closed Friday', 'Präsentation Q2']);
  assert.deepEqual(await subjects('alice', 'Sent'), ['Office closed Friday', 'Präsentation Q2', 'Project Falcon', 'Sales kickoff'].concat(['Lost attachment']).sort());
  assert.deepEqual(await subjects('_unrouted', 'Inbox'), [], 'every report had a known participant');
});

test('inbound internet mail (Recipient: lines only) is filed for each known recipient', async () => {
  const subject = 'Supplier invoice 4471 for the delivery of seventy-two pallets of recycled paper';
  assert.ok((await subjects('alice', 'Inbox')).includes(subject));
  assert.ok((await subjects('bob', 'Inbox')).includes(subject));
});

test('DL expansion: the list owner gets it; forwarding: the original recipient gets it', async () => {
  assert.deepEqual(await subjects('sales', 'Inbox'), ['Sales kickoff']);
  assert.ok((await subjects('alice', 'Inbox')).includes('Contract draft'), 'alice forwarded to judy');
});

test('On-Behalf-Of: delegate and principal both get Sent; the principal as Cc gets Inbox', async () => {
  assert.deepEqual(await subjects('assistant', 'Sent'), ['Board meeting']);
  assert.deepEqual(await subjects('ceo', 'Sent'), ['Board meeting']);
  assert.deepEqual(await subjects('ceo', 'Inbox'), ['Board meeting']);
});

test('two reports for one message are merged: one message, the union of recipients', async () => {
  assert.equal((await subjects('alice', 'Sent')).filter((s) => s === 'Office closed Friday').length, 1);
  assert.ok((await subjects('bob', 'Inbox')).includes('Office closed Friday'));
  assert.ok((await subjects('carol.j', 'Inbox')).includes('Office closed Friday'));
  assert.ok((await subjects('dave', 'Inbox')).includes('Office closed Friday'));
});

test('the archived message is the attached original, byte for byte; NDR-wrapped and IRM reports unwrap', async () => {
  const list = JSON.parse((await cli(['archive', 'list', 'bob', '--json'])).stdout.toString()) as Array<{ uid: number; subject: string }>;
  const typed = list.find((e) => e.subject === 'Präsentation Q2');
  assert.ok(typed);
  const got = await cli(['archive', 'get', 'bob', String(typed.uid)]);
  const fixture = readFileSync(join(FIXTURES, 'exchange-internal-typed.eml'));
  const start = fixture.indexOf('From: Alice Example <alice@example.com>');
  const end = fixture.indexOf('\r\n--_004_JR_typed_0002_--', start);
  assert.ok(got.stdout.equals(fixture.subarray(start, end)), 'original bytes unaltered');
  assert.ok(!got.stdout.includes('X-MS-Journal-Report'), 'not the wrapper');
  assert.ok(list.some((e) => e.subject === 'Project Falcon'), 'NDR-wrapped report unwrapped');
  assert.equal(list.filter((e) => e.subject === 'Salary review').length, 2, 'IRM: protected original and decrypted copy');
});

test('multidrop copies are attributed from X-Gm-Original-To and X-Original-To, not from To/Cc', async () => {
  const gm = readFileSync(join(FIXTURES, 'multidrop-gm-original-to.eml'), 'latin1');
  const gmSubject = /^Subject: (.*)$/m.exec(gm)?.[1]?.trim() ?? '';
  assert.ok((await subjects('alice', 'Inbox')).includes(gmSubject), `alice has "${gmSubject}"`);
  assert.ok((await subjects('carol', 'Inbox')).includes('Disk alert'), 'carol (X-Original-To)');
  assert.deepEqual(await subjects('ops', 'Inbox'), [], 'ops@ is only in the To header: not a participant');
});

test('a report without its original is archived as received, attributed from its envelope, flagged and listed by status', async () => {
  assert.ok((await subjects('bob', 'Inbox')).includes('Lost attachment'));
  const status = await cli(['status']);
  assert.match(status.stdout.toString(), /Flagged messages \(1;/);
  assert.match(status.stdout.toString(), /Lost attachment\tjournal-malformed: /);
  const metrics = await (await fetch(`http://127.0.0.1:${srv.adminPort}/metrics`)).text();
  assert.match(metrics, /^postern_journal_reports_malformed_total 1$/m);
  assert.match(metrics, /^postern_journal_reports_total\{kind="exchange",style="typed"\} [1-9]/m);
});
