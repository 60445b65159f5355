// Interop with a real Exim (Debian's exim4-daemon-light) that journals to Postern with the router
// and transport from deploy/exim/postern.conf.snippet, as deploy/exim/README.md says (no Postern
// setting needed). Checked: the copy goes in one SMTP transaction with the original MAIL FROM and
// every RCPT TO (a Bcc recipient too) over Postern's STARTTLS, normal delivery goes ahead, Postern
// files it for each recipient and the sender with the bytes Exim relayed (its Received header on
// top of what the client sent); with Postern down, Exim still accepts and delivers normally and
// keeps the copy queued, and after Postern's restart the copy is archived once.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, makeTempDir, startPostern, waitFor, type PosternServer } from './harness.ts';
import { startExim, type EximInstance } from './exim.ts';
import { assertDelivered, describeDiff, sentContent, swaks } from './swaks.ts';

const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';
// Stands in for the site's normal delivery, which the recipe leaves alone.
const SITE_ROUTERS = 'normal_delivery:\n  driver = redirect\n  data = :blackhole:\n';

const tmp = makeTempDir('postern-exim-test-');
const dataDir = join(tmp.path, 'postern-data');
let smtpPort: number;
let postern: PosternServer | undefined;
let exim: EximInstance | undefined;

const startOurPostern = (): Promise<PosternServer> =>
  startPostern({ name: 'exim', env: { POSTERN_DATA_DIR: dataDir, POSTERN_SMTP_PORT: String(smtpPort) } });

before(async () => {
  mkdirSync(dataDir);
  smtpPort = await freePort();
  postern = await startOurPostern();
  await Promise.all([postern.addUser('alice', [ALICE]), postern.addUser('bob', [BOB]), postern.addUser('carol', [CAROL])]);
  exim = await startExim(smtpPort, SITE_ROUTERS);
});

after(async () => {
  await exim?.stop().catch(() => undefined);
  await postern?.stop().catch(() => undefined);
  tmp.cleanup();
});

async function withLogs<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (caught) {
    // The Postern running now (the test may have restarted it): its log tail, its log kept.
    const err = postern ? await postern.diagnose(name, () => Promise.reject(caught)).catch((e: unknown) => e) : caught;
    (err as Error).message += `\n--- Exim mainlog ---\n${exim?.mainlog() ?? '(not started)'}`;
    throw err;
  }
}

const count = async (user: string, folder: string, marker: string): Promise<number> =>
  (await postern!.list(user, folder)).filter((r) => r.subject.includes(marker)).length;

/** Exim's id for the message swaks sent ("250 OK id=..."). */
function eximId(transcript: string): string {
  const id = /^<-  250 OK id=(\S+)\s*$/m.exec(transcript)?.[1];
  assert.ok(id, `Exim message id in the swaks transcript:\n${transcript}`);
  return id;
}

/** Mainlog lines of message `id` delivered (=> first, -> batched) by the journal router. */
function journalDeliveries(id: string): string[] {
  return exim!.mainlog().split('\n').filter((l) => l.includes(` ${id} `) && / R=postern_journal T=postern_smtp /.test(l) && / [=-]> /.test(l));
}

test('a message with a Bcc recipient is copied to Postern in one transaction with every recipient, and delivered normally', async () => {
  await withLogs('exim-journal', async () => {
    const marker = `exim-${randomUUID()}`;
    const res = await swaks(['--server', `127.0.0.1:${exim!.port}`, '--from', BOB, '--to', `${ALICE},${CAROL}`, '--header', `To: <${ALICE}>`, '--header', `Subject: via exim ${marker}`]);
    assertDelivered(res);
    const id = eximId(res.transcript);

    const lines = await waitFor('both journal copies delivered', async () => { const l = journalDeliveries(id); return l.length === 2 ? l : undefined; }, 20_000, 200);
    const posternIds = lines.map((l) => /C="250 [^"]*queued as (\S+)"/.exec(l)?.[1]);
    assert.ok(posternIds[0], `Postern's 250 in the log: ${lines.join('\n')}`);
    assert.equal(posternIds[1], posternIds[0], 'one Postern transaction for both recipients (the true envelope)');
    for (const l of lines) assert.match(l, / X=TLS1\.[23]:/, 'Exim used Postern\'s STARTTLS');
    for (const rcpt of [ALICE, CAROL]) {
      assert.match(exim!.mainlog(), new RegExp(`${id} => :blackhole: <${rcpt.replace(/\./g, '\\.')}> R=normal_delivery`), `normal delivery of ${rcpt} went ahead`);
    }

    const aliceRow = await postern!.waitForMessage('alice', 'Inbox', marker);
    await postern!.waitDrained();
    assert.equal(await count('carol', 'Inbox', marker), 1, 'carol (Bcc: only in the envelope)');
    assert.equal(await count('bob', 'Sent', marker), 1, 'bob (MAIL FROM)');
    assert.equal((await postern!.list('_unrouted', 'Inbox')).length, 0, 'nothing unassigned');

    const clientSent = sentContent(res.transcript);
    const copy = await postern!.get('alice', aliceRow.uid, 'Inbox');
    const tail = copy.subarray(copy.length - clientSent.length);
    assert.ok(tail.equals(clientSent), `archived copy ends with the client's bytes: ${describeDiff(tail, clientSent)}`);
    const added = copy.subarray(0, copy.length - clientSent.length).toString('latin1');
    assert.match(added, new RegExp(`^Received: from \\[127\\.0\\.0\\.1\\] \\(helo=interop\\.test\\)\\r\\n(\\t[^\\r\\n]*\\r\\n)*$`), `Exim added one Received header: ${JSON.stringify(added)}`);
    assert.match(added, new RegExp(`by exim-interop\\.test with esmtp \\(Exim 4\\.\\d+\\)\\r\\n\\t\\(envelope-from <${BOB.replace(/\./g, '\\.')}>\\)\\r\\n\\tid ${id}`), 'the Received header is Exim\'s');
  });
});

test('with Postern down Exim delivers normally and keeps the copy; after the restart it is archived once', async () => {
  await withLogs('exim-outage', async () => {
    assert.equal(await postern!.stop(), 0, 'Postern exits 0');
    postern = undefined;
    const marker = `outage-${randomUUID()}`;
    const res = await swaks(['--server', `127.0.0.1:${exim!.port}`, '--from', BOB, '--to', ALICE, '--header', `Subject: outage ${marker}`]);
    assertDelivered(res);
    const id = eximId(res.transcript);
    await waitFor('the copy deferred', async () => (new RegExp(`${id} == alice@example\\.test R=postern_journal T=postern_smtp defer`).test(exim!.mainlog()) ? true : undefined), 20_000, 200);
    assert.match(exim!.mainlog(), new RegExp(`${id} => :blackhole: <alice@example\\.test> R=normal_delivery`), 'normal delivery went ahead');

    postern = await startOurPostern();
    await waitFor('the copy delivered by a queue run', async () => (journalDeliveries(id).length === 1 ? true : undefined), 30_000, 250);
    await postern.waitForMessage('alice', 'Inbox', marker);
    await postern.waitDrained();
    assert.equal(await count('alice', 'Inbox', marker), 1, 'archived once for alice');
    assert.equal(await count('bob', 'Sent', marker), 1, 'archived once for bob');
    assert.match(exim!.mainlog(), new RegExp(`${id} Completed`), 'Exim completed the message');
  });
});
