// Attribution through a real Postfix (relayhost + always_bcc from deploy/postfix/main.cf.snippet) with
// Postern told which address is the journal copy's (routing.journalAddresses): the journal address is
// never a participant, the Bcc recipient (visible only in the envelope) gets the message, the
// sender gets it in Sent, and nothing lands in the unassigned archive.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startPostern, type PosternServer } from './harness.ts';
import { startPostfix, snippetSettings, type PostfixInstance } from './postfix.ts';
import { assertDelivered, swaks } from './swaks.ts';

const JOURNAL = snippetSettings(['always_bcc']).find(([k]) => k === 'always_bcc')?.[1] ?? '';
let postern: PosternServer;
let postfix: PostfixInstance | undefined;

let configDir: string;

before(async () => {
  // A config naming the journal address (routing lists are file-only settings).
  configDir = mkdtempSync(join(tmpdir(), 'postern-attr-conf-'));
  const configFile = join(configDir, 'attribution.yaml');
  writeFileSync(configFile, `routing:\n  journalAddresses: [${JOURNAL}]\n`);
  postern = await startPostern({ name: 'postfix-attribution', env: { POSTERN_CONFIG: configFile } });
  await Promise.all([
    postern.addUser('journal', [JOURNAL]),
    postern.addUser('alice', ['alice@example.test']),
    postern.addUser('bob', ['bob@example.test']),
    postern.addUser('carol', ['carol@example.test']),
  ]);
  postfix = await startPostfix(postern.smtpPort, ['common', 'relayhost', 'always_bcc']);
});

after(async () => {
  await postfix?.stop().catch(() => undefined);
  await postern?.stop().catch(() => undefined);
  rmSync(configDir, { recursive: true, force: true });
});

test('Bcc recipient and sender are attributed from the envelope; the journal address is not a participant', async () => {
  await postern.diagnose('postfix-attribution', async () => {
    const marker = `attr-${randomUUID()}`;
    const res = await swaks([
      '--server', `127.0.0.1:${postfix!.port}`, '--from', 'bob@example.test', '--to', 'alice@example.test,carol@example.test',
      '--header', 'To: <alice@example.test>', '--header', `Subject: attribution ${marker}`,
    ]);
    assertDelivered(res);
    await postern.waitForMessage('carol', 'Inbox', marker, 30_000);
    await postern.waitDrained();
    const count = async (user: string, folder: string): Promise<number> => (await postern.list(user, folder)).filter((r) => r.subject.includes(marker)).length;
    assert.equal(await count('alice', 'Inbox'), 1, 'alice (To)');
    assert.equal(await count('carol', 'Inbox'), 1, 'carol (Bcc: only in the envelope)');
    assert.equal(await count('bob', 'Sent'), 1, 'bob (sender)');
    assert.equal(await count('journal', 'Inbox'), 0, 'the journal address is not a participant');
    assert.equal(await count('_unrouted', 'Inbox'), 0, 'nothing unassigned');
  });
});
