// The recipient_bcc_maps recipe followed as written (deploy/postfix/README.md and main.cf.snippet):
// a real Postfix with the `common` and `recipient_bcc_maps` blocks (users at the snippet's own
// example.com) delivers normally elsewhere and sends Postern one copy, addressed only to the
// journal address, of mail to or from example.com; Postern has the recipe's setting merged into the
// shipped config. Mail in (recipient_bcc_maps) is filed for the recipients in its headers, mail out
// (sender_bcc_maps) for the sender, one copy when both match, and mail between two outside
// addresses gets no copy at all.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { makeTempDir, startPostern, waitFor, type PosternServer } from './harness.ts';
import { recipePosternSettings, snippetSettings, startPostfix, writeRecipeConfig, type Delivery, type PostfixInstance } from './postfix.ts';
import { assertDelivered, swaks } from './swaks.ts';

const SETTINGS = snippetSettings(['recipient_bcc_maps']);
const JOURNAL = /=(\S+@\S+) \}$/.exec(SETTINGS.find(([k]) => k === 'recipient_bcc_maps')?.[1] ?? '')?.[1] ?? '';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const DAVE = 'dave@elsewhere.test';
const ERIN = 'erin@elsewhere.test';

let postern: PosternServer;
let postfix: PostfixInstance | undefined;
const tmp = makeTempDir('postern-bccmaps-conf-');

before(async () => {
  assert.equal(JOURNAL, 'journal@journal.postern.invalid', 'the snippet maps @example.com to the journal address');
  assert.deepEqual(recipePosternSettings(), { routing: { journalAddresses: [JOURNAL] } }, 'the README names the journal address');
  postern = await startPostern({ name: 'postfix-bcc-maps', env: { POSTERN_CONFIG: writeRecipeConfig(tmp.path) } });
  await Promise.all([postern.addUser('alice', [ALICE]), postern.addUser('bob', [BOB])]);
  // Stands in for the site's normal delivery, which the recipe leaves alone.
  postfix = await startPostfix(postern.smtpPort, ['common', 'recipient_bcc_maps'], [['default_transport', 'discard:normal-delivery']]);
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

/** Sends through Postfix; returns the queue id once normal delivery of every `to` is logged. */
async function send(from: string, to: string[], subject: string): Promise<string> {
  const res = await swaks(['--server', `127.0.0.1:${postfix!.port}`, '--from', from, '--to', to.join(','), '--header', `Subject: ${subject}`]);
  assertDelivered(res);
  const queueId = /^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+)\s*$/m.exec(res.transcript)?.[1];
  assert.ok(queueId, `Postfix queue id in swaks transcript:\n${res.transcript}`);
  for (const rcpt of to) {
    await waitFor(`normal delivery of ${queueId} to ${rcpt}`, async () => (postfix!.maillog().split('\n').some((l) => l.includes(`${queueId}: to=<${rcpt}>`) && l.includes('relay=none') && l.includes('status=sent')) ? true : undefined), 30_000, 200);
  }
  return queueId;
}

async function journalCopy(queueId: string): Promise<void> {
  const d: Delivery = await waitFor(`Postfix status=sent for ${JOURNAL}`, async (): Promise<Delivery | undefined> => postfix!.deliveries(JOURNAL).find((x) => x.queueId === queueId), 30_000, 200);
  assert.equal(d.relay, `127.0.0.1[127.0.0.1]:${postern.smtpPort}`, 'the journal copy went to Postern');
  assert.match(d.reply, /^250 /);
}

const count = async (user: string, folder: string, marker: string): Promise<number> =>
  (await postern.list(user, folder)).filter((r) => r.subject.includes(marker)).length;

test('mail between two outside addresses gets no copy; mail to and from example.com does', async () => {
  await withLogs('postfix-bcc-maps', async () => {
    const outside = `outside-${randomUUID()}`;
    const outsideId = await send(DAVE, [ERIN], `outside ${outside}`);

    const inbound = `in-${randomUUID()}`;
    await journalCopy(await send(DAVE, [ALICE], `inbound ${inbound}`));
    const outbound = `out-${randomUUID()}`;
    await journalCopy(await send(BOB, [ERIN], `outbound ${outbound}`));
    const both = `both-${randomUUID()}`;
    const bothId = await send(BOB, [ALICE], `both ${both}`);
    await journalCopy(bothId);
    await postern.waitDrained();

    assert.equal(await count('alice', 'Inbox', inbound), 1, 'inbound: alice (recipient_bcc_maps)');
    assert.equal(await count('bob', 'Sent', outbound), 1, 'outbound: bob (sender_bcc_maps)');
    assert.equal(await count('alice', 'Inbox', both), 1, 'internal: alice');
    assert.equal(await count('bob', 'Sent', both), 1, 'internal: bob');
    assert.equal(postfix!.deliveries(JOURNAL).filter((d) => d.queueId === bothId).length, 1, 'one copy when both maps match');
    assert.deepEqual(postfix!.deliveries(JOURNAL).filter((d) => d.queueId === outsideId), [], 'no copy of mail between outside addresses');
    assert.equal((await postern.list('_unrouted', 'Inbox')).length, 0, 'nothing unassigned (the outside mail never reached Postern)');
    const status = await postern.status();
    assert.equal(status.archive.messages, 3, `three stored messages: ${JSON.stringify(status.archive)}`);
  });
});
