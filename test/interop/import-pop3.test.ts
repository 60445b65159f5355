// POP3 import jobs against a real Dovecot: UIDL checkpoints (new mail only on the next run, resume
// after the server went away mid-import, nothing on a repeated run), STLS with a pinned certificate,
// delete after archive (DELE after the commit, applied by QUIT), Date-header range filtering, and the
// results report received by Postfix's smtp-sink.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCorpus } from '../helpers/corpus.ts';
import { startDovecot, type Dovecot } from './dovecot.ts';
import { startPostern, waitFor, type PosternServer } from './harness.ts';
import { startProxy, startSmtpSink, type Proxy, type SmtpSink } from './import-peers.ts';

interface Result { status: string; counts: { found: number; archived: number; duplicates: number; failed: number }; errors: string[] }
interface Job { status: string; sequence: number }

const corpus = loadCorpus().filter((m) => m.length < 200 * 1024);
const POP = corpus.slice(100, 130);
const EXTRA = corpus.slice(130, 133);
const DEL = corpus.slice(140, 145);
const BIG = Buffer.concat([Buffer.from('Subject: too big\r\n\r\n'), Buffer.alloc(300 * 1024, 'x')]);
const dated = (year: number, i: number): Buffer => Buffer.from(`Date: Mon, 3 Jun ${year} 10:00:00 +0000\r\nFrom: d${i}@example.test\r\nSubject: dated ${year} ${i}\r\nMessage-ID: <dated-${year}-${i}@example.test>\r\n\r\nbody ${i}\r\n`);

let dc: Dovecot;
let pg: PosternServer;
let proxy: Proxy;
let sink: SmtpSink;

async function cliJson<T>(args: string[]): Promise<T> {
  return JSON.parse((await pg.cliOk([...args, '--json'])).toString()) as T;
}
async function create(name: string, user: string, options: Record<string, unknown>): Promise<void> {
  await pg.cliOk(['jobs', 'create', name, '--kind', 'import-pop3', '--options', JSON.stringify({ server: '127.0.0.1', username: user, password: `${user}-pw`, ...options })]);
}
async function runAndWait(name: string): Promise<Result> {
  await pg.cli(['jobs', 'run', name, '--wait'], { timeoutMs: 120_000 });
  const last = (await cliJson<Result[]>(['jobs', 'results', '--job', name])).at(-1);
  assert.ok(last);
  return last;
}
const messages = async (): Promise<number> => (await pg.waitDrained()).archive.messages;

before(async () => {
  dc = await startDovecot({
    name: 'import-pop3',
    protocols: ['pop3'],
    users: [
      { name: 'pop', password: 'pop-pw', messages: POP },
      { name: 'popdel', password: 'popdel-pw', messages: DEL },
      { name: 'dated', password: 'dated-pw', messages: [dated(2023, 1), dated(2024, 2), dated(2024, 3), dated(2025, 4)] },
      { name: 'popbig', password: 'popbig-pw', messages: [dated(2020, 5), BIG, dated(2020, 6)] },
    ],
  });
  proxy = await startProxy(dc.pop3Port);
  sink = await startSmtpSink();
  pg = await startPostern({
    name: 'import-pop3',
    env: {
      POSTERN_JOB_REPORTS_HOST: '127.0.0.1', POSTERN_JOB_REPORTS_PORT: String(sink.port), POSTERN_JOB_REPORTS_TLS: 'none',
      POSTERN_SMTP_MAX_MESSAGE_SIZE: String(256 * 1024),
    },
  });
});

after(async () => {
  await pg?.stop();
  await proxy?.close();
  await sink?.stop();
  await dc?.stop();
});

test('UIDL checkpoints: resume after the server went away, then only new mail, then nothing', async () => {
  await pg.diagnose('pop3-resume', async () => {
    await create('pop', 'pop', { port: proxy.port, tls: 'none', delaySeconds: 0.05 });
    await pg.cliOk(['jobs', 'run', 'pop']);
    await waitFor('8 messages submitted', async () => ((await cliJson<Job>(['jobs', 'show', 'pop'])).sequence >= 8 ? true : undefined), 60_000, 100);
    await proxy.stop();
    await waitFor('the run to end', async () => ((await cliJson<Job>(['jobs', 'show', 'pop'])).status === 'running' ? undefined : true), 60_000, 200);
    const first = (await cliJson<Result[]>(['jobs', 'results', '--job', 'pop'])).at(-1);
    assert.ok(first);
    assert.equal(first.status, 'failed');
    const k = first.counts.archived;
    assert.ok(k >= 8 && k < POP.length, `stopped part-way: ${k}`);
    await proxy.start();
    const second = await runAndWait('pop');
    assert.equal(second.status, 'succeeded', JSON.stringify(second));
    assert.deepEqual(second.counts, { found: POP.length - k, archived: POP.length - k, duplicates: 0, failed: 0 });
    assert.equal(await messages(), POP.length);

    for (const m of EXTRA) dc.addMessage('pop', m);
    const third = await runAndWait('pop');
    assert.deepEqual(third.counts, { found: 3, archived: 3, duplicates: 0, failed: 0 });
    const fourth = await runAndWait('pop');
    assert.deepEqual(fourth.counts, { found: 0, archived: 0, duplicates: 0, failed: 0 });
    assert.equal(await messages(), POP.length + EXTRA.length);
  });
});

test('STLS with a pinned certificate, delete after archive, results report mailed', async () => {
  await pg.diagnose('pop3-delete', async () => {
    const fingerprint = new X509Certificate(dc.certPem).fingerprint256;
    await create('popdel', 'popdel', { port: dc.pop3Port, tls: 'starttls', fingerprint, deleteAfterArchive: true, reportTo: 'ops@example.test' });
    const list = (await pg.cliOk(['jobs', 'run', 'popdel', '--list'])).toString();
    assert.match(list, /^INBOX\t5 messages$/m);
    const adhoc = (await pg.cliOk(['import', 'pop3', '--list', '--options', JSON.stringify({ server: '127.0.0.1', port: dc.pop3sPort, tls: 'implicit', fingerprint, username: 'popdel', password: 'popdel-pw' })])).toString();
    assert.match(adhoc, /^INBOX\t5 messages$/m);
    const before = await messages();
    const r = await runAndWait('popdel');
    assert.equal(r.status, 'succeeded', JSON.stringify(r));
    assert.deepEqual(r.counts, { found: 5, archived: 5, duplicates: 0, failed: 0 });
    assert.equal(await messages(), before + 5);
    const left = ['cur', 'new'].flatMap((d) => readdirSync(join(dc.maildir('popdel'), d)));
    assert.deepEqual(left, [], 'every archived message was deleted from the server');
    const mail = await sink.waitForMail(/Subject: Postern import popdel: succeeded \(5 archived, 0 failed\)/);
    assert.match(mail, /Archived: +5/);
    assert.doesNotMatch(mail, /popdel-pw/);
  });
});

test('startDate/endDate filter POP3 messages on their Date header', async () => {
  await pg.diagnose('pop3-dates', async () => {
    await create('dated', 'dated', { port: dc.pop3sPort, tls: 'implicit', acceptSelfSigned: true, startDate: '20240101', endDate: '20241231' });
    const before = await messages();
    const r = await runAndWait('dated');
    assert.equal(r.status, 'succeeded', JSON.stringify(r));
    assert.equal(r.counts.archived, 2);
    assert.equal(await messages(), before + 2);
  });
});

test('an oversized message is a failure of its own; the ones after it are imported and it is not retried', async () => {
  await pg.diagnose('pop3-oversized', async () => {
    await create('popbig', 'popbig', { port: dc.pop3Port, tls: 'none', deleteAfterArchive: true });
    const r = await runAndWait('popbig');
    assert.equal(r.status, 'completed-with-errors', JSON.stringify(r));
    assert.deepEqual(r.counts, { found: 3, archived: 2, duplicates: 0, failed: 1 });
    assert.match(r.errors.join('\n'), /message is larger than 262144 bytes/);
    const left = ['cur', 'new'].flatMap((d) => readdirSync(join(dc.maildir('popbig'), d)));
    assert.equal(left.length, 1, 'only the archived messages were deleted');
    const again = await runAndWait('popbig');
    assert.deepEqual(again.counts, { found: 0, archived: 0, duplicates: 0, failed: 0 });
  });
});

test('bad definitions are refused with the reason', async () => {
  const r = await pg.cli(['jobs', 'create', 'bad', '--kind', 'import-pop3', '--options', JSON.stringify({ server: '127.0.0.1', port: 1, username: 'x' })]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /give exactly one of password, passwordFile, passwordEnv/);
  const d = await pg.cli(['jobs', 'create', 'bad', '--kind', 'import-pop3', '--options', JSON.stringify({ server: '127.0.0.1', port: 1, username: 'x', password: 'y', startDate: '20241301' })]);
  assert.match(d.stderr, /startDate: is not a calendar date/);
  const s = await pg.cli(['jobs', 'create', 'bad', '--kind', 'import-pop3', '--options', JSON.stringify({ server: '127.0.0.1', port: 1, username: 'x', password: 'y', mode: 'single-user' })]);
  assert.match(s.stderr, /single-user mode needs the archive user/);
});
