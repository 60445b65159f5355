// Interop with a real Postfix relaying to Postern with the settings from deploy/postfix/main.cf.snippet
// (relayhost + always_bcc): the journal copy lands in the journal user's Inbox, the recipient's copy
// in the recipient's Inbox, the sender's in Sent, each as Postfix delivered it (its Received header
// on top of exactly what the client sent), and Postfix uses Postern's STARTTLS.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startPostern, waitFor, type PosternServer } from './harness.ts';
import { startPostfix, snippetSettings, type Delivery, type PostfixInstance } from './postfix.ts';
import { assertDelivered, describeDiff, sentContent, swaks } from './swaks.ts';

const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const VARIANTS = ['common', 'relayhost', 'always_bcc'] as const;

// The journal address is whatever the shipped snippet says.
const JOURNAL = snippetSettings(['always_bcc']).find(([k]) => k === 'always_bcc')?.[1] ?? '';

let postern: PosternServer;
let postfix: PostfixInstance | undefined;

before(async () => {
  assert.match(JOURNAL, /^[^@\s]+@[^@\s]+$/, 'deploy/postfix/main.cf.snippet sets always_bcc to one address');
  postern = await startPostern({ name: 'postfix' });
  await Promise.all([
    postern.addUser('journal', [JOURNAL]),
    postern.addUser('alice', [ALICE]),
    postern.addUser('bob', [BOB]),
  ]);
  postfix = await startPostfix(postern.smtpPort, VARIANTS);
});

after(async () => {
  await postfix?.stop().catch(() => undefined);
  await postern?.stop().catch(() => undefined);
});

async function withLogs<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await postern.diagnose(name, fn);
  } catch (err) {
    (err as Error).message += `\n--- Postfix maillog ---\n${postfix?.maillog() ?? '(not started)'}`;
    throw err;
  }
}

test('a message sent through Postfix is archived for the always_bcc journal user and the recipient', async () => {
  await withLogs('postfix-journal', async () => {
    const pf = postfix!;
    const marker = `postfix-${randomUUID()}`;
    const res = await swaks(['--server', `127.0.0.1:${pf.port}`, '--from', BOB, '--to', ALICE, '--header', `Subject: via postfix ${marker}`]);
    assertDelivered(res);
    const queueId = /^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+)\s*$/m.exec(res.transcript)?.[1];
    assert.ok(queueId, `Postfix queue id in swaks transcript:\n${res.transcript}`);
    const clientSent = sentContent(res.transcript);

    // Postfix delivered both recipients to Postern and got 250 for each.
    for (const rcpt of [ALICE, JOURNAL]) {
      const d: Delivery = await waitFor(`Postfix status=sent for ${rcpt}`, async (): Promise<Delivery | undefined> => pf.deliveries(rcpt).find((x) => x.queueId === queueId), 20_000, 200);
      assert.equal(d.relay, `127.0.0.1[127.0.0.1]:${postern.smtpPort}`, `${rcpt} relayed to Postern`);
      assert.match(d.reply, /^250 /, `Postern's reply for ${rcpt}`);
    }
    // smtp_tls_security_level = may from the snippet: Postfix used Postern's STARTTLS.
    assert.match(pf.maillog(), new RegExp(`TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${postern.smtpPort}: TLSv1\\.[23] `), 'Postfix negotiated TLS with Postern');

    const journalRow = await postern.waitForMessage('journal', 'Inbox', marker);
    const [aliceRows, bobRows] = await Promise.all([postern.list('alice', 'Inbox'), postern.list('bob', 'Sent')]);
    const aliceRow = aliceRows.find((r) => r.subject.includes(marker));
    const bobRow = bobRows.find((r) => r.subject.includes(marker));
    assert.ok(aliceRow, `alice/Inbox holds the message: ${JSON.stringify(aliceRows)}`);
    assert.ok(bobRow, `bob/Sent holds the message: ${JSON.stringify(bobRows)}`);
    assert.equal(aliceRows.length, 1, 'alice/Inbox holds exactly one message');

    const [journalCopy, aliceCopy, bobCopy] = await Promise.all([
      postern.get('journal', journalRow.uid, 'Inbox'),
      postern.get('alice', aliceRow.uid, 'Inbox'),
      postern.get('bob', bobRow.uid, 'Sent'),
    ]);
    assert.ok(aliceCopy.equals(journalCopy), `alice's copy equals the journal copy: ${describeDiff(aliceCopy, journalCopy)}`);
    assert.ok(bobCopy.equals(journalCopy), `bob's Sent copy equals the journal copy: ${describeDiff(bobCopy, journalCopy)}`);

    // What Postfix relayed: its own Received header, then exactly what swaks gave Postfix.
    assert.ok(journalCopy.length > clientSent.length, 'the archived copy is longer than the client content (Received added)');
    const tail = journalCopy.subarray(journalCopy.length - clientSent.length);
    assert.ok(tail.equals(clientSent), `archived copy ends with the client's bytes: ${describeDiff(tail, clientSent)}`);
    const added = journalCopy.subarray(0, journalCopy.length - clientSent.length).toString('latin1');
    assert.match(
      added,
      new RegExp(`^Received: from interop\\.test \\(localhost \\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby postfix-interop\\.test \\(Postfix\\) with ESMTP id ${queueId}\\r\\n\\tfor <alice@example\\.test>; [^\\r\\n]+\\r\\n$`),
      'Postfix prepended exactly one Received header (CRLF line endings preserved)',
    );
  });
});

test('the journal copy is not filed anywhere else', async () => {
  await withLogs('postfix-routing', async () => {
    const [journalSent, aliceSent, bobInbox] = await Promise.all([
      postern.list('journal', 'Sent'),
      postern.list('alice', 'Sent'),
      postern.list('bob', 'Inbox'),
    ]);
    assert.deepEqual(journalSent, [], 'journal/Sent is empty');
    assert.deepEqual(aliceSent, [], 'alice/Sent is empty');
    assert.deepEqual(bobInbox, [], 'bob/Inbox is empty');
    const status = await postern.waitDrained();
    assert.equal(status.archive.messages, 1, `one stored message for all three users: ${JSON.stringify(status.archive)}`);
  });
});

test('postfix stop, then Postern exits 0 on SIGTERM', async () => {
  await postfix!.stop();
  assert.equal(await postern.stop(), 0);
});
