// The always_bcc recipe followed as written (deploy/postfix/README.md and main.cf.snippet): a real
// Postfix with the `common` and `always_bcc` blocks delivers normally elsewhere and sends Postern one
// copy addressed only to the journal address; Postern has the recipe's one setting merged into the
// shipped config and the default routing. The copy is filed for the people in its headers (To, Cc ->
// Inbox; From -> Sent), the journal address is nobody, nothing is unassigned. A copy naming no known
// user is kept in _unrouted and is loud: a warning line and the metric.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { makeTempDir, startPostern, waitFor, type PosternServer } from './harness.ts';
import { recipePosternSettings, snippetSettings, startPostfix, writeRecipeConfig, type PostfixInstance } from './postfix.ts';
import { assertDelivered, swaks } from './swaks.ts';

const JOURNAL = snippetSettings(['always_bcc']).find(([k]) => k === 'always_bcc')?.[1] ?? '';
let postern: PosternServer;
let postfix: PostfixInstance | undefined;
const tmp = makeTempDir('postern-attr-conf-');

before(async () => {
  assert.deepEqual(recipePosternSettings(), { routing: { journalAddresses: [JOURNAL] } }, 'the README names the snippet\'s always_bcc address');
  postern = await startPostern({ name: 'postfix-attribution', env: { POSTERN_CONFIG: writeRecipeConfig(tmp.path) } });
  await Promise.all([
    postern.addUser('alice', ['alice@example.test']),
    postern.addUser('bob', ['bob@example.test']),
    postern.addUser('carol', ['carol@example.test']),
    postern.addUser('dave', ['dave@example.test']),
  ]);
  // Stands in for the site's normal delivery, which the recipe leaves alone.
  postfix = await startPostfix(postern.smtpPort, ['common', 'always_bcc'], [['default_transport', 'discard:normal-delivery']]);
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

/** Sends through Postfix and waits until Postern has acknowledged the journal copy and archived it. */
async function sendThroughPostfix(args: string[]): Promise<void> {
  const res = await swaks(['--server', `127.0.0.1:${postfix!.port}`, ...args]);
  assertDelivered(res);
  const queueId = /^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+)\s*$/m.exec(res.transcript)?.[1];
  assert.ok(queueId, `Postfix queue id in swaks transcript:\n${res.transcript}`);
  const d = await waitFor(`Postfix status=sent for ${JOURNAL}`, async () => postfix!.deliveries(JOURNAL).find((x) => x.queueId === queueId), 30_000, 200);
  assert.equal(d.relay, `127.0.0.1[127.0.0.1]:${postern.smtpPort}`, 'the journal copy went to Postern');
  await postern.waitDrained();
}

const count = async (user: string, folder: string, marker: string): Promise<number> =>
  (await postern.list(user, folder)).filter((r) => r.subject.includes(marker)).length;

test('the journal copy is filed for To and Cc (Inbox) and From (Sent); the journal address is nobody', async () => {
  await withLogs('postfix-attribution', async () => {
    const marker = `attr-${randomUUID()}`;
    await sendThroughPostfix([
      '--from', 'bob@example.test', '--to', 'alice@example.test,carol@example.test,dave@example.test',
      '--header', 'From: Bob <bob@example.test>', '--header', 'To: <alice@example.test>', '--header', 'Cc: carol@example.test',
      '--header', `Subject: attribution ${marker}`,
    ]);
    assert.equal(await count('alice', 'Inbox', marker), 1, 'alice (To)');
    assert.equal(await count('carol', 'Inbox', marker), 1, 'carol (Cc)');
    assert.equal(await count('bob', 'Sent', marker), 1, 'bob (From)');
    assert.equal(await count('dave', 'Inbox', marker), 0, 'dave was only a Bcc recipient: in no header, so not attributed (as the recipe says)');
    assert.equal(await count('_unrouted', 'Inbox', marker), 0, 'nothing unassigned');
    assert.doesNotMatch(postern.logs(), /Message matched no known user/);
  });
});

test('a copy naming no known user is kept in _unrouted, logged as a warning and counted', async () => {
  await withLogs('postfix-attribution-unrouted', async () => {
    const marker = `unrouted-${randomUUID()}`;
    await sendThroughPostfix(['--from', 'someone@else.test', '--to', 'stranger@else.test', '--header', `Subject: unrouted ${marker}`]);
    assert.equal(await count('_unrouted', 'Inbox', marker), 1, 'kept in the unassigned archive');
    const warning = postern.logs().split('\n').filter((l) => l.includes('"Message matched no known user; kept in the unassigned archive"'));
    assert.equal(warning.length, 1, 'one warning line');
    const line = JSON.parse(warning[0]!) as Record<string, unknown>;
    assert.equal(line.level, 'warn');
    assert.match(String(line.intakeId), /\S/, 'with the intake id');
    assert.equal(line.from, 'someone@else.test');
    assert.deepEqual(line.rcptDomains, ['journal.postern.invalid']);
    assert.match(await postern.metrics(), /^postern_unrouted_messages_total 1$/m);
  });
});

test('postfix stop, then Postern exits 0 on SIGTERM', async () => {
  await postfix!.stop();
  assert.equal(await postern.stop(), 0);
});
