// IMAP import jobs against a real Dovecot holding journal mailboxes of real (SpamAssassin corpus)
// messages: the dry list step, TLS (pinned fingerprint, accepted self-signed, STARTTLS), date-range
// filtering, resume from the checkpoint after the server went away mid-import, a second run that
// imports nothing, delete-after-archive only for committed messages, single-user mode keeping
// folders, and results reports received by Postfix's smtp-sink.
import assert from 'node:assert/strict';
import { readdirSync, rmSync, utimesSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCorpus } from '../helpers/corpus.ts';
import { startDovecot, type Dovecot } from './dovecot.ts';
import { startPostern, waitFor, type PosternServer } from './harness.ts';
import { startProxy, startSmtpSink, type Proxy, type SmtpSink } from './import-peers.ts';

interface Result { id: string; job: string; status: string; counts: { found: number; archived: number; duplicates: number; failed: number }; errors: string[] }
interface Job { status: string; sequence: number; lastRunId: string | null; command: string; detail: string }

const corpus = loadCorpus().filter((m) => m.length < 200 * 1024);
const slice = (from: number, n: number): Buffer[] => corpus.slice(from, from + n);
const RANGED = slice(0, 20);
const JOURNAL = slice(20, 40);
const DELETE = slice(60, 10);
const OWN_INBOX = slice(70, 3);
const OWN_SENT = slice(73, 2);
const BIG = Buffer.concat([Buffer.from('Subject: too big for the archive\r\n\r\n'), Buffer.alloc(300 * 1024, 'x')]);

let dc: Dovecot;
let pg: PosternServer;
let proxy: Proxy;
let sink: SmtpSink;
let fingerprint: string;

async function cliJson<T>(args: string[]): Promise<T> {
  return JSON.parse((await pg.cliOk([...args, '--json'])).toString()) as T;
}

async function create(name: string, options: Record<string, unknown>, user = name): Promise<void> {
  await pg.cliOk(['jobs', 'create', name, '--kind', 'import-imap', '--options', JSON.stringify({ username: user, password: `${user}-pw`, server: '127.0.0.1', ...options })]);
}

async function runAndWait(name: string): Promise<Result> {
  const r = await pg.cli(['jobs', 'run', name, '--wait'], { timeoutMs: 120_000 });
  const results = await cliJson<Result[]>(['jobs', 'results', '--job', name]);
  const last = results.at(-1);
  assert.ok(last, `no result for ${name}: ${r.stderr}`);
  assert.equal(r.code, last.status === 'succeeded' ? 0 : 1, `exit code follows the status: ${r.stdout.toString()} ${r.stderr}`);
  return last;
}

async function archivedMessages(): Promise<number> {
  return (await pg.waitDrained()).archive.messages;
}

/** Internal dates of Maildir messages are the files' mtimes: first half in 2023, second in 2024. */
function setDates(user: string): void {
  const cur = join(dc.maildir(user), 'cur');
  const files = readdirSync(cur).sort();
  files.forEach((f, i) => {
    const t = new Date(i < files.length / 2 ? Date.UTC(2023, 5, 1 + i) : Date.UTC(2024, 5, 1 + i)) .getTime() / 1000;
    utimesSync(join(cur, f), t, t);
  });
}

before(async () => {
  dc = await startDovecot({
    name: 'import-imap',
    protocols: ['imap'],
    users: [
      { name: 'ranged', password: 'ranged-pw', messages: RANGED },
      { name: 'journal', password: 'journal-pw', messages: JOURNAL },
      { name: 'deleter', password: 'deleter-pw', messages: [...DELETE.slice(0, 5), BIG, ...DELETE.slice(5)] },
      { name: 'own', password: 'own-pw', messages: OWN_INBOX, folders: { Sent: OWN_SENT, 'Projects/2024': [slice(75, 1)[0] as Buffer] } },
    ],
  });
  setDates('ranged');
  fingerprint = new X509Certificate(dc.certPem).fingerprint256;
  proxy = await startProxy(dc.imapPort);
  sink = await startSmtpSink();
  pg = await startPostern({
    name: 'import-imap',
    env: {
      POSTERN_JOB_REPORTS_HOST: '127.0.0.1', POSTERN_JOB_REPORTS_PORT: String(sink.port), POSTERN_JOB_REPORTS_TLS: 'none',
      POSTERN_SMTP_MAX_MESSAGE_SIZE: String(256 * 1024),
    },
  });
  await pg.cliOk(['user', 'add', 'owner', '--address', 'owner@example.test']);
});

after(async () => {
  await pg?.stop();
  await proxy?.close();
  await sink?.stop();
  await dc?.stop();
});

test('the dry list step shows folders and message counts, importing nothing', async () => {
  await pg.diagnose('imap-list', async () => {
    await create('own', { port: dc.imapsPort, tls: 'implicit', fingerprint, mode: 'single-user', user: 'owner' });
    const out = (await pg.cliOk(['jobs', 'run', 'own', '--list'])).toString();
    assert.match(out, /^INBOX\t3 messages$/m);
    assert.match(out, /^Sent\t2 messages$/m);
    assert.match(out, /^Projects\/2024\t1 message$/m);
    assert.equal(await archivedMessages(), 0);
    const shown = await cliJson<{ options: { password: string } }>(['jobs', 'show', 'own']);
    assert.equal(shown.options.password, '(secret)', 'the password never comes back');
  });
});

test('single-user mode over implicit TLS with a pinned fingerprint keeps the folder structure', async () => {
  await pg.diagnose('imap-single-user', async () => {
    const r = await runAndWait('own');
    assert.equal(r.status, 'succeeded', JSON.stringify(r));
    assert.deepEqual(r.counts, { found: 6, archived: 6, duplicates: 0, failed: 0 });
    await pg.waitDrained();
    assert.equal((await pg.list('owner', 'Inbox')).length, 3);
    assert.equal((await pg.list('owner', 'Sent')).length, 2);
    assert.equal((await pg.list('owner', 'Projects/2024')).length, 1);
    const got = await pg.get('owner', 1, 'Sent');
    assert.ok(got.equals(Buffer.from((OWN_SENT[0] as Buffer).toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')) || got.equals(OWN_SENT[0] as Buffer), 'bytes as Dovecot served them');
  });
});

test('a listed folder the server does not have is an error of the run; the other folders are imported', async () => {
  await pg.diagnose('imap-missing-folder', async () => {
    await create('own-missing', { port: dc.imapPort, tls: 'none', folders: ['Nope', 'Sent'], mode: 'single-user', user: 'owner' }, 'own');
    const r = await runAndWait('own-missing');
    assert.equal(r.status, 'completed-with-errors', JSON.stringify(r));
    assert.match(r.errors.join('\n'), /Folder "Nope": /);
    assert.deepEqual(r.counts, { found: 2, archived: 0, duplicates: 2, failed: 0 });
  });
});

test('a wrong pinned fingerprint fails before logging in', async () => {
  await pg.diagnose('imap-bad-pin', async () => {
    await create('ranged', { port: dc.imapsPort, tls: 'implicit', fingerprint: fingerprint.replace(/^../, fingerprint.startsWith('00') ? '11' : '00') });
    const r = await runAndWait('ranged');
    assert.equal(r.status, 'failed');
    assert.match(r.errors.join('\n'), /not the pinned one/);
    assert.doesNotMatch(dc.logs(), /user=<ranged>/, 'no login reached Dovecot');
  });
});

test('date range: only messages whose internal date lies in [startDate, endDate] are imported (STARTTLS, self-signed accepted)', async () => {
  await pg.diagnose('imap-dates', async () => {
    const options = { server: '127.0.0.1', port: dc.imapPort, tls: 'starttls', acceptSelfSigned: true, username: 'ranged', startDate: '20240101', endDate: '' };
    // Pointing the job elsewhere (port, TLS) without the password again is refused: a stored password
    // never follows a changed destination.
    const refused = await pg.cli(['jobs', 'update', 'ranged', '--options', JSON.stringify(options)]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /password/);
    await pg.cliOk(['jobs', 'update', 'ranged', '--options', JSON.stringify({ ...options, password: 'ranged-pw' })]);
    await pg.cliOk(['jobs', 'update', 'ranged', '--options', JSON.stringify({ ...options, startDate: '20240101' })]);
    const shown = await cliJson<{ options: Record<string, unknown> }>(['jobs', 'show', 'ranged']);
    assert.equal(shown.options.password, '(secret)', 'an update that keeps the destination keeps the stored password');
    const before = await archivedMessages();
    const r = await runAndWait('ranged');
    assert.equal(r.status, 'succeeded', JSON.stringify(r));
    assert.deepEqual(r.counts, { found: 10, archived: 10, duplicates: 0, failed: 0 });
    assert.equal(await archivedMessages(), before + 10);
    await create('ranged-old', { port: dc.imapPort, tls: 'starttls', acceptSelfSigned: true, startDate: '', endDate: '20231231' }, 'ranged');
    const r2 = await runAndWait('ranged-old');
    assert.equal(r2.status, 'succeeded', JSON.stringify(r2));
    assert.deepEqual(r2.counts, { found: 10, archived: 10, duplicates: 0, failed: 0 });
    assert.equal(await archivedMessages(), before + 20);
  });
});

test('resume: the server goes away mid-import, the next run continues at the checkpoint, a third imports nothing; reports mailed', async () => {
  await pg.diagnose('imap-resume', async () => {
    await create('journal', { port: proxy.port, tls: 'none', delaySeconds: 0.05, reportTo: 'ops@example.test' });
    const before = await archivedMessages();
    await pg.cliOk(['jobs', 'run', 'journal']);
    await waitFor('10 messages submitted', async () => ((await cliJson<Job>(['jobs', 'show', 'journal'])).sequence >= 10 ? true : undefined), 60_000, 100);
    await proxy.stop();
    const job = await waitFor('the run to end', async () => {
      const j = await cliJson<Job>(['jobs', 'show', 'journal']);
      return j.status === 'running' ? undefined : j;
    }, 60_000, 200);
    assert.equal(job.status, 'failed');
    const first = (await cliJson<Result[]>(['jobs', 'results', '--job', 'journal'])).at(-1);
    assert.ok(first);
    const k = first.counts.archived;
    assert.ok(k >= 10 && k < JOURNAL.length, `stopped part-way: ${k}`);
    assert.equal(await archivedMessages(), before + k);
    await sink.waitForMail(/Subject: Postern import journal: failed/);

    await proxy.start();
    const second = await runAndWait('journal');
    assert.equal(second.status, 'succeeded', JSON.stringify(second));
    assert.deepEqual(second.counts, { found: JOURNAL.length - k, archived: JOURNAL.length - k, duplicates: 0, failed: 0 });
    assert.equal(await archivedMessages(), before + JOURNAL.length);
    await sink.waitForMail(/Subject: Postern import journal: succeeded \(\d+ archived, 0 failed\)/);

    const third = await runAndWait('journal');
    assert.deepEqual(third.counts, { found: 0, archived: 0, duplicates: 0, failed: 0 });
    assert.equal(await archivedMessages(), before + JOURNAL.length);
    const shown = await cliJson<Job>(['jobs', 'show', 'journal']);
    assert.equal(shown.sequence, JOURNAL.length);
  });
});

test('delete after archive removes only messages whose capture committed; the oversized one stays', async () => {
  await pg.diagnose('imap-delete', async () => {
    await create('deleter', { port: dc.imapPort, tls: 'none', deleteAfterArchive: true });
    const r = await runAndWait('deleter');
    assert.equal(r.status, 'completed-with-errors');
    assert.deepEqual(r.counts, { found: 11, archived: 10, duplicates: 0, failed: 1 });
    assert.match(r.errors.join('\n'), /UID 6: message is larger than 262144 bytes/);
    await pg.waitDrained();
    const left = ['cur', 'new'].flatMap((d) => readdirSync(join(dc.maildir('deleter'), d)));
    assert.equal(left.length, 1, `left on the server: ${left.join(', ')}`);
    const list = (await pg.cliOk(['jobs', 'run', 'deleter', '--list'])).toString();
    assert.match(list, /^INBOX\t1 message$/m);
  });
});

test('a UIDVALIDITY change imports the folder again; dedup archives nothing new', async () => {
  await pg.diagnose('imap-uidvalidity', async () => {
    const before = await archivedMessages();
    // Dovecot keeps UIDVALIDITY in dovecot-uidlist (and its indexes): without them it picks a new one.
    const md = dc.maildir('own');
    for (const f of readdirSync(md)) if (f.startsWith('dovecot')) rmSync(join(md, f), { recursive: true, force: true });
    const r = await runAndWait('own');
    assert.equal(r.status, 'completed-with-errors', JSON.stringify(r));
    assert.match(r.errors.join('\n'), /Folder "INBOX": UIDVALIDITY changed/);
    assert.deepEqual(r.counts, { found: 3, archived: 0, duplicates: 3, failed: 0 });
    assert.equal(await archivedMessages(), before);
  });
});

test('a run that reaches its timeout stops, keeps its checkpoint and mails a "timed out" report', async () => {
  await pg.diagnose('imap-timeout', async () => {
    await create('slow', { port: dc.imapPort, tls: 'none', delaySeconds: 0.4, timeoutSeconds: 1, reportTo: 'ops@example.test' }, 'ranged');
    const r = await runAndWait('slow');
    assert.equal(r.status, 'completed-with-errors', JSON.stringify(r));
    assert.match(r.errors.join('\n'), /Timed out after 1 s/);
    assert.ok(r.counts.found === RANGED.length && r.counts.duplicates < RANGED.length, JSON.stringify(r.counts));
    await sink.waitForMail(/Subject: Postern import slow: timed out/);
  });
});

test('metrics count runs by kind and outcome, and messages by result', async () => {
  const m = await pg.metrics();
  assert.match(m, /postern_job_runs_total\{kind="import-imap",outcome="succeeded"\} [1-9]/);
  assert.match(m, /postern_job_runs_total\{kind="import-imap",outcome="failed"\} [1-9]/);
  assert.match(m, /postern_job_messages_total\{kind="import-imap",result="archived"\} [1-9]/);
});
