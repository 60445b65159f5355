// Batch mailbox archiving against a real Dovecot holding 50 small mailboxes: a CSV batch (users
// created, one row with a wrong password failing alone) whose server is SIGKILLed mid-batch and
// resumed from the per-mailbox checkpoints without duplicates; a master-user batch (SASL PLAIN with
// the mailbox as authorisation identity, Dovecot `master = yes` passdb) over directory users with
// targets "all except"; an OAuth2 batch (Google service-account JWT per mailbox, XOAUTH2 against
// Dovecot's oauth2 passdb, which introspects the token at our loopback IdP; a client-credentials token
// for a single-mailbox job too); and the source deletion
// rules (older than N days, skip unread) on a mailbox whose dates and \Seen flags are set per file.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCorpus } from '../helpers/corpus.ts';
import { runCli } from '../helpers/cli.ts';
import { spawnServer, waitDrained, stopServer, type SpawnedServer } from '../helpers/spawn-server.ts';
import { startDovecot, type Dovecot } from './dovecot.ts';
import { startIdp, type Idp } from './oauth2-idp.ts';

interface Counts { found: number; archived: number; duplicates: number; failed: number }
interface MailboxRow extends Counts { login: string; user: string; status: string; errors: string[] }
interface Result { id: string; status: string; counts: Counts; errors: string[]; summary: { mailboxes?: MailboxRow[]; targets?: string } }
interface Job { status: string; sequence: number; lastRunId: string | null }

const MAILBOXES = 50;
const PER_MAILBOX = 2;
const name = (i: number): string => `mb${String(i + 1).padStart(2, '0')}`;
const corpus = loadCorpus().filter((m) => m.length < 64 * 1024);
const own = (i: number): Buffer[] => corpus.slice(i * PER_MAILBOX, (i + 1) * PER_MAILBOX);
const synthetic = (subject: string, date = 'Mon, 01 Jun 2020 10:00:00 +0000'): Buffer =>
  Buffer.from(`From: a@example.test\r\nTo: b@example.test\r\nDate: ${date}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '.')}@example.test>\r\n\r\n${subject}\r\n`);

let dir: string;
let dc: Dovecot;
let idp: Idp;
let pg: SpawnedServer;
let dataDir: string;

async function entries(user: string, folder = 'Inbox'): Promise<number> {
  return (await pg.api<{ entries: unknown[] }>('GET', `/api/v1/archive/${user}/messages?folder=${folder}`)).entries.length;
}

async function runToEnd(job: string): Promise<Result> {
  const started = (await pg.api<{ job: Job }>('POST', `/api/v1/jobs/${job}/run`, {})).job;
  for (;;) {
    const j = (await pg.api<{ job: Job }>('GET', `/api/v1/jobs/${job}`)).job;
    if (j.status !== 'running') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const { results } = await pg.api<{ results: Result[] }>('GET', `/api/v1/jobs/${job}/results`);
  const mine = results.find((r) => r.id === started.lastRunId);
  assert.ok(mine, `result of ${job}`);
  return mine;
}

const server = (): Record<string, unknown> => ({ server: '127.0.0.1', port: dc.imapPort, tls: 'none' });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-batch-'));
  chmodSync(dir, 0o755);
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa-key.json'), JSON.stringify({ client_email: 'archiver@project.iam', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) }));
  idp = await startIdp({ client: { id: 'postern', secret: 'client-secret', mailbox: 'mb04' }, serviceAccount: { email: 'archiver@project.iam', publicKey } });
  writeFileSync(join(dir, 'masters'), 'archiver:{PLAIN}master-pw\n', { mode: 0o644 });
  writeFileSync(join(dir, 'oauth2.conf.ext'), idp.dovecotConf(), { mode: 0o644 });
  const now = Date.now();
  dc = await startDovecot({
    name: 'import-imap-batch',
    protocols: ['imap'],
    implicitTls: false,
    users: [
      ...Array.from({ length: MAILBOXES }, (_, i) => ({ name: name(i), password: `pw-${name(i)}`, messages: own(i) })),
      { name: 'mb51', password: 'right-pw' },
      { name: 'cleaner', password: 'cleaner-pw' },
    ],
    extraConfig: [
      'auth_mechanisms = plain login xoauth2',
      // A master user logs in as any mailbox: SASL PLAIN with the mailbox as authorisation identity.
      'passdb {', '  driver = passwd-file', '  master = yes', `  args = scheme=PLAIN username_format=%u ${join(dir, 'masters')}`, '}',
      'passdb {', '  driver = oauth2', '  mechanisms = xoauth2', `  args = ${join(dir, 'oauth2.conf.ext')}`, '}',
    ].join('\n'),
  });
  // The deletion-rule mailbox: old/recent internal dates (file times) × read/unread (the S flag).
  const plan: Array<[string, number, boolean]> = [['old-read', 400, true], ['old-unread', 400, false], ['new-read', 2, true], ['new-unread', 2, false]];
  for (const [subject, daysAgo, read] of plan) {
    let path = dc.addMessage('cleaner', synthetic(`cleaner ${subject}`));
    if (read) {
      renameSync(path, `${path}S`);
      path = `${path}S`;
    }
    const t = (now - daysAgo * 86_400_000) / 1000;
    utimesSync(path, t, t);
  }
  const rows = ['login,password,address,user', ...Array.from({ length: MAILBOXES }, (_, i) => `${name(i)},pw-${name(i)},${name(i)}@example.test,${name(i)}`), 'mb51,wrong-pw,mb51@example.test,mb51'];
  writeFileSync(join(dir, 'mailboxes.csv'), rows.join('\n') + '\n');
  dataDir = join(dir, 'data');
  rmSync(dataDir, { recursive: true, force: true });
  (await import('node:fs')).mkdirSync(dataDir);
  pg = await spawnServer(dataDir);
});

after(async () => {
  if (pg && pg.child.exitCode === null && pg.child.signalCode === null) await stopServer(pg);
  await dc?.stop();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('CSV batch of 50 mailboxes, 4 at a time: SIGKILL mid-batch, resume from per-mailbox checkpoints, no duplicates; a wrong password fails only its mailbox', async () => {
  await pg.api('POST', '/api/v1/jobs', {
    name: 'csv', kind: 'import-imap-batch',
    options: { ...server(), mailboxes: 'csv', csvFile: join(dir, 'mailboxes.csv'), createUsers: true, concurrency: 4, delaySeconds: 0.02 },
  });
  await pg.api('POST', '/api/v1/jobs/csv/run', {});
  // Kill once part of the batch is committed.
  for (;;) {
    const j = (await pg.api<{ job: Job }>('GET', '/api/v1/jobs/csv')).job;
    assert.equal(j.status, 'running', 'still running when killed');
    if (j.sequence >= 30) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  pg.child.kill('SIGKILL');
  await pg.exited;
  pg = await spawnServer(dataDir);
  await waitDrained(pg);
  const interrupted = (await pg.api<{ results: Result[] }>('GET', '/api/v1/jobs/csv/results')).results;
  assert.equal(interrupted.at(-1)?.status, 'failed', 'the killed run is recorded as interrupted');

  const r = await runToEnd('csv');
  await waitDrained(pg);
  assert.equal(r.status, 'completed-with-errors', JSON.stringify(r.errors));
  const rows = r.summary.mailboxes ?? [];
  assert.equal(rows.length, MAILBOXES + 1);
  const bad = rows.filter((m) => m.status !== 'succeeded');
  assert.deepEqual(bad.map((m) => [m.login, m.status]), [['mb51', 'failed']]);
  assert.match(bad[0]?.errors.join('\n') ?? '', /Cannot log in .*authentication failed/);
  assert.ok(!JSON.stringify(r).includes('wrong-pw'), 'no password in the result');
  assert.ok(r.counts.found < MAILBOXES * PER_MAILBOX, `the resumed run skipped what was committed before the kill (found ${r.counts.found})`);
  for (let i = 0; i < MAILBOXES; i++) assert.equal(await entries(name(i)), PER_MAILBOX, `${name(i)} holds each message once`);
  const status = await pg.api<{ archive: { messages: number } }>('GET', '/api/v1/status');
  assert.equal(status.archive.messages, MAILBOXES * PER_MAILBOX);
  const user = await pg.api<{ user: { addresses: string[] } }>('GET', '/api/v1/users/mb07');
  assert.deepEqual(user.user.addresses, ['mb07@example.test'], 'created with the row\'s address');
  await assert.rejects(pg.api('GET', '/api/v1/users/mb51'), /404/, 'no user is created for a mailbox whose login failed');
  const metrics = await (await fetch(`http://127.0.0.1:${pg.adminPort}/metrics`)).text();
  assert.match(metrics, /^postern_import_mailboxes_total\{outcome="failed"\} 1$/m, 'the failed mailbox is counted (since the restart)');
  assert.match(metrics, /^postern_import_mailboxes_total\{outcome="succeeded"\} 50$/m);
});

test('master-user batch over directory users (all except a list): SASL PLAIN with authzid, new mail only, targets shown', async () => {
  for (let i = 0; i < MAILBOXES; i++) dc.addMessage(name(i), synthetic(`new for ${name(i)}`));
  await pg.api('POST', '/api/v1/jobs', {
    name: 'master', kind: 'import-imap-batch',
    options: { ...server(), mailboxes: 'directory', login: 'name', username: 'archiver', password: 'master-pw', targets: { mode: 'except', users: 'mb01;mb02;mb51' }, concurrency: 4 },
  });
  const shown = await runCli(['jobs', 'show', 'master'], { dataDir, adminPort: pg.adminPort });
  assert.match(shown.stdout, /^Targets: +every user with an address except mb01;mb02;mb51 \(resolved when a run starts\)$/m);
  assert.match(shown.stdout, /"password":"\(secret\)"/);
  const r = await runToEnd('master');
  await waitDrained(pg);
  assert.equal(r.status, 'succeeded', JSON.stringify(r.errors));
  assert.equal(r.summary.targets, 'every user with an address except mb01;mb02;mb51');
  assert.equal(r.summary.mailboxes?.length, MAILBOXES - 2);
  assert.deepEqual(r.counts, { found: (MAILBOXES - 2) * (PER_MAILBOX + 1), archived: MAILBOXES - 2, duplicates: (MAILBOXES - 2) * PER_MAILBOX, failed: 0 });
  assert.equal(await entries('mb03'), PER_MAILBOX + 1);
  assert.equal(await entries('mb01'), PER_MAILBOX, 'an excluded user is not touched');
  assert.match(dc.logs(), /Login: user=<mb03>, method=PLAIN/);
});

test('OAuth2: a service-account token per mailbox in a batch of only the listed users, a client-credentials token for one mailbox (XOAUTH2, introspected by Dovecot)', async () => {
  await pg.api('POST', '/api/v1/jobs', {
    name: 'oauth', kind: 'import-imap-batch',
    options: { ...server(), mailboxes: 'directory', login: 'name', oauth2: { flow: 'service-account', keyFile: join(dir, 'sa-key.json'), tokenUrl: idp.tokenUrl }, targets: { mode: 'only', users: ['mb01', 'mb02'] } },
  });
  const issued = idp.stats.issued;
  const r = await runToEnd('oauth');
  await waitDrained(pg);
  assert.equal(r.status, 'succeeded', JSON.stringify(r));
  assert.deepEqual(r.counts, { found: 2 * (PER_MAILBOX + 1), archived: 2, duplicates: 2 * PER_MAILBOX, failed: 0 });
  assert.equal(idp.stats.issued - issued, 2, 'one token per mailbox');
  assert.equal(await entries('mb01'), PER_MAILBOX + 1);
  assert.match(dc.logs(), /Login: user=<mb01>, method=XOAUTH2/);
  const again = await runToEnd('oauth');
  assert.equal(again.counts.found, 0, 'checkpoints: nothing new');
  assert.equal(idp.stats.issued - issued, 2, 'tokens reused while fresh');
  // A wrong key is refused by the IdP: the mailbox fails with the endpoint's error, the token never shown.
  writeFileSync(join(dir, 'other-key.json'), JSON.stringify({ client_email: 'archiver@project.iam', private_key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) }));
  await pg.api('POST', '/api/v1/jobs', {
    name: 'oauth-bad', kind: 'import-imap', options: { ...server(), username: 'mb03', mode: 'single-user', user: 'mb03', oauth2: { flow: 'service-account', keyFile: join(dir, 'other-key.json'), tokenUrl: idp.tokenUrl } },
  });
  // Client credentials (Microsoft 365 style), the secret from a file: a single-mailbox import job.
  writeFileSync(join(dir, 'client-secret'), 'client-secret\n');
  await pg.api('POST', '/api/v1/jobs', {
    name: 'oauth-app', kind: 'import-imap', options: { ...server(), username: 'mb04', mode: 'single-user', user: 'mb04', oauth2: { flow: 'client-credentials', tokenUrl: idp.tokenUrl, clientId: 'postern', clientSecretFile: join(dir, 'client-secret'), scope: 'imap' } },
  });
  const app = await runToEnd('oauth-app');
  assert.equal(app.status, 'succeeded', JSON.stringify(app));
  assert.deepEqual(app.counts, { found: PER_MAILBOX + 1, archived: 0, duplicates: PER_MAILBOX + 1, failed: 0 });
  assert.match(dc.logs(), /Login: user=<mb04>, method=XOAUTH2/);
  const bad = await runToEnd('oauth-bad');
  assert.equal(bad.status, 'failed');
  assert.match(bad.errors.join('\n'), /refused the service-account grant: invalid_grant/);
});

test('deletion rules: only messages older than 30 days and already read are deleted from the source', async () => {
  await pg.api('POST', '/api/v1/users', { name: 'keeper', addresses: ['keeper@example.test'] });
  await pg.api('POST', '/api/v1/jobs', {
    name: 'cleaner', kind: 'import-imap',
    options: { ...server(), username: 'cleaner', password: 'cleaner-pw', mode: 'single-user', user: 'keeper', deleteAfterArchive: true, deleteOlderThanDays: 30, deleteSkipUnread: true },
  });
  const r = await runToEnd('cleaner');
  await waitDrained(pg);
  assert.equal(r.status, 'succeeded', JSON.stringify(r.errors));
  assert.deepEqual(r.counts, { found: 4, archived: 4, duplicates: 0, failed: 0 });
  assert.equal(await entries('keeper'), 4);
  const left = readdirSync(join(dc.maildir('cleaner'), 'cur')).length;
  assert.equal(left, 3, 'old+read deleted; old+unread, new+read and new+unread kept');
  const rejected = await pg.api<{ error?: string }>('POST', '/api/v1/jobs', {
    name: 'bad-rules', kind: 'import-pop3', options: { ...server(), username: 'x', password: 'y', deleteAfterArchive: true, deleteSkipUnread: true },
  }).catch((err: Error) => ({ error: err.message }));
  assert.match(rejected.error ?? '', /POP3 has no read state/);
});
