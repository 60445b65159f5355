// Interop with a real Postfix relaying to Postern with the settings from deploy/postfix/main.cf.snippet
// (relayhost + always_bcc) and Postern's setting from deploy/postfix/README.md merged into the shipped
// config: Postfix sends the journal address and the real recipients in one transaction, so the
// envelope decides: each recipient's Inbox (a Bcc recipient too) and the sender's Sent get the message
// as Postfix delivered it (its Received header on top of exactly what the client sent), the journal
// address is nobody, and Postfix uses Postern's STARTTLS.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { makeTempDir, startPostern, waitFor, type PosternServer } from './harness.ts';
import { recipePosternSettings, startPostfix, snippetSettings, writeRecipeConfig, type Delivery, type PostfixInstance } from './postfix.ts';
import { assertDelivered, describeDiff, sentContent, swaks } from './swaks.ts';

const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';
const VARIANTS = ['common', 'relayhost', 'always_bcc'] as const;

// The journal address is whatever the shipped snippet says.
const JOURNAL = snippetSettings(['always_bcc']).find(([k]) => k === 'always_bcc')?.[1] ?? '';

let postern: PosternServer;
let postfix: PostfixInstance | undefined;
const tmp = makeTempDir('postern-postfix-conf-');

before(async () => {
  assert.match(JOURNAL, /^[^@\s]+@[^@\s]+$/, 'deploy/postfix/main.cf.snippet sets always_bcc to one address');
  assert.deepEqual(recipePosternSettings(), { routing: { journalAddresses: [JOURNAL] } }, 'the README names the snippet\'s always_bcc address');
  postern = await startPostern({ name: 'postfix', env: { POSTERN_CONFIG: writeRecipeConfig(tmp.path) } });
  await Promise.all([
    postern.addUser('alice', [ALICE]),
    postern.addUser('bob', [BOB]),
    postern.addUser('carol', [CAROL]),
  ]);
  postfix = await startPostfix(postern.smtpPort, VARIANTS);
});

after(async () => {
  await postfix?.stop().catch(() => undefined);
  await postern?.stop().catch(() => undefined);
  tmp.cleanup();
});

async function withLogs<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await postern.diagnose(name, fn);
  } catch (err) {
    (err as Error).message += `\n--- Postfix maillog ---\n${postfix?.maillog() ?? '(not started)'}`;
    throw err;
  }
}

test('a message sent through Postfix (with the always_bcc copy in the same transaction) is archived for the recipient and the sender', async () => {
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

    const aliceRow = await postern.waitForMessage('alice', 'Inbox', marker);
    const bobRows = await postern.list('bob', 'Sent');
    const bobRow = bobRows.find((r) => r.subject.includes(marker));
    assert.ok(bobRow, `bob/Sent holds the message: ${JSON.stringify(bobRows)}`);
    assert.equal((await postern.list('alice', 'Inbox')).length, 1, 'alice/Inbox holds exactly one message');

    const [aliceCopy, bobCopy] = await Promise.all([postern.get('alice', aliceRow.uid, 'Inbox'), postern.get('bob', bobRow.uid, 'Sent')]);
    assert.ok(bobCopy.equals(aliceCopy), `bob's Sent copy equals alice's: ${describeDiff(bobCopy, aliceCopy)}`);

    // What Postfix relayed: its own Received header, then exactly what swaks gave Postfix.
    assert.ok(aliceCopy.length > clientSent.length, 'the archived copy is longer than the client content (Received added)');
    const tail = aliceCopy.subarray(aliceCopy.length - clientSent.length);
    assert.ok(tail.equals(clientSent), `archived copy ends with the client's bytes: ${describeDiff(tail, clientSent)}`);
    const added = aliceCopy.subarray(0, aliceCopy.length - clientSent.length).toString('latin1');
    assert.match(
      added,
      new RegExp(`^Received: from interop\\.test \\(localhost \\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby postfix-interop\\.test \\(Postfix\\) with ESMTP id ${queueId}\\r\\n\\tfor <alice@example\\.test>; [^\\r\\n]+\\r\\n$`),
      'Postfix prepended exactly one Received header (CRLF line endings preserved)',
    );
  });
});

test('the copy is not filed anywhere else: the journal address is nobody, nothing is unassigned', async () => {
  await withLogs('postfix-routing', async () => {
    const [aliceSent, bobInbox, unrouted] = await Promise.all([postern.list('alice', 'Sent'), postern.list('bob', 'Inbox'), postern.list('_unrouted', 'Inbox')]);
    assert.deepEqual(aliceSent, [], 'alice/Sent is empty');
    assert.deepEqual(bobInbox, [], 'bob/Inbox is empty');
    assert.deepEqual(unrouted, [], '_unrouted is empty');
    const status = await postern.waitDrained();
    assert.equal(status.archive.messages, 1, `one stored message for both users: ${JSON.stringify(status.archive)}`);
  });
});

test('a recipient only in the envelope (Bcc) gets the message too: the envelope decides', async () => {
  await withLogs('postfix-bcc', async () => {
    const marker = `bcc-${randomUUID()}`;
    assertDelivered(await swaks([
      '--server', `127.0.0.1:${postfix!.port}`, '--from', BOB, '--to', `${ALICE},${CAROL}`,
      '--header', `To: <${ALICE}>`, '--header', `Subject: bcc ${marker}`,
    ]));
    await postern.waitForMessage('carol', 'Inbox', marker, 30_000);
    await postern.waitDrained();
    const count = async (user: string, folder: string): Promise<number> => (await postern.list(user, folder)).filter((r) => r.subject.includes(marker)).length;
    assert.equal(await count('alice', 'Inbox'), 1, 'alice (To)');
    assert.equal(await count('carol', 'Inbox'), 1, 'carol (Bcc: only in the envelope)');
    assert.equal(await count('bob', 'Sent'), 1, 'bob (sender)');
    assert.equal(await count('_unrouted', 'Inbox'), 0, 'nothing unassigned');
  });
});

test('postfix stop, then Postern exits 0 on SIGTERM', async () => {
  await postfix!.stop();
  assert.equal(await postern.stop(), 0);
});
