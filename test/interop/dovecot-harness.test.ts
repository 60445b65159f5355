// Proves the private Dovecot of test/interop/dovecot.ts serves what other tests rely on, using curl
// as the client: IMAP (plain, STARTTLS, implicit TLS) and POP3 (plain, STLS, implicit TLS), the
// passwd-file users, Maildir messages byte-for-byte in UID order, extra folders, messages added while
// it runs, refused logins, rejected harness input, and that stop() leaves no Dovecot behind.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startDovecot, type Dovecot } from './dovecot.ts';
import { run, runOk } from './harness.ts';

const msg = (i: number): Buffer =>
  Buffer.from(`From: Sender ${i} <s${i}@example.test>\r\nTo: alice@example.test\r\nSubject: harness message ${i}\r\nMessage-ID: <h${i}@example.test>\r\n\r\nBody line of message ${i}.\r\n`);
const INBOX = [msg(1), msg(2), msg(3)];
const SENT = Buffer.from('From: alice@example.test\r\nTo: bob@example.test\r\nSubject: sent by alice\r\n\r\nHello Bob.\r\n');

let dc: Dovecot;

before(async () => {
  dc = await startDovecot({
    name: 'harness',
    users: [
      { name: 'alice', password: 'alice-pw', messages: INBOX, folders: { Sent: [SENT], 'Archive/2024': [] } },
      { name: 'bob', password: 'bob-pw' },
    ],
  });
});

after(async () => {
  await dc?.stop();
});

async function curl(args: string[]): Promise<Buffer> {
  return (await runOk('curl', ['-sS', '--max-time', '20', ...args])).stdout;
}

test('all four ports are distinct high loopback ports', () => {
  const ports = [dc.imapPort, dc.imapsPort, dc.pop3Port, dc.pop3sPort];
  assert.equal(new Set(ports).size, 4, `ports: ${ports.join(', ')}`);
  for (const p of ports) assert.ok(p > 1024, `port ${p} is high`);
});

test('IMAP LIST shows INBOX, Sent (\\Sent) and the nested folder', async () => {
  const out = (await curl(['-u', 'alice:alice-pw', `imap://127.0.0.1:${dc.imapPort}/`])).toString();
  assert.match(out, /\* LIST \([^)]*\) "\/" INBOX\r\n/);
  assert.match(out, /\* LIST \([^)]*\\Sent[^)]*\) "\/" Sent\r\n/);
  assert.match(out, /\* LIST \([^)]*\) "\/" Archive\/2024\r\n/);
});

test('IMAP fetch by UID returns the Maildir bytes unchanged, UIDs in message order', async () => {
  for (let i = 0; i < INBOX.length; i++) {
    const got = await curl(['-u', 'alice:alice-pw', `imap://127.0.0.1:${dc.imapPort}/INBOX;UID=${i + 1}`]);
    assert.ok(got.equals(INBOX[i]!), `UID ${i + 1}: ${JSON.stringify(got.toString())}`);
  }
});

test('IMAP SEARCH over STARTTLS with the generated certificate as CA', async () => {
  const out = (await curl(['--ssl-reqd', '--cacert', dc.certFile, '-u', 'alice:alice-pw', `imap://127.0.0.1:${dc.imapPort}/INBOX`, '-X', 'UID SEARCH SUBJECT "message 2"'])).toString();
  assert.match(out, /^\* SEARCH 2\r\n/m);
});

test('IMAPS (implicit TLS) serves the Sent folder', async () => {
  const got = await curl(['--cacert', dc.certFile, '-u', 'alice:alice-pw', `imaps://127.0.0.1:${dc.imapsPort}/Sent;UID=1`]);
  assert.ok(got.equals(SENT), got.toString());
});

test('POP3 LIST and RETR over STLS and over implicit TLS', async () => {
  const list = (await curl(['--ssl-reqd', '--cacert', dc.certFile, '-u', 'alice:alice-pw', `pop3://127.0.0.1:${dc.pop3Port}/`])).toString();
  assert.deepEqual(list.trim().split(/\r?\n/), INBOX.map((m, i) => `${i + 1} ${m.length}`));
  const retr = await curl(['--cacert', dc.certFile, '-u', 'alice:alice-pw', `pop3s://127.0.0.1:${dc.pop3sPort}/2`]);
  assert.ok(retr.equals(INBOX[1]!), retr.toString());
  const plain = await curl(['-u', 'alice:alice-pw', `pop3://127.0.0.1:${dc.pop3Port}/3`]);
  assert.ok(plain.equals(INBOX[2]!), plain.toString());
});

test('a message added while Dovecot runs gets the next UID', async () => {
  const late = Buffer.from('From: late@example.test\r\nSubject: added later\r\n\r\nLate.\r\n');
  const path = dc.addMessage('alice', late);
  assert.ok(path.startsWith(dc.maildir('alice')) && existsSync(path), path);
  const got = await curl(['-u', 'alice:alice-pw', `imap://127.0.0.1:${dc.imapPort}/INBOX;UID=4`]);
  assert.ok(got.equals(late), got.toString());
  const bobList = (await curl(['-u', 'bob:bob-pw', `imap://127.0.0.1:${dc.imapPort}/INBOX`, '-X', 'UID SEARCH ALL'])).toString();
  assert.match(bobList, /^\* SEARCH\r\n/m, 'bob has an empty INBOX');
  dc.addMessage('bob', late, 'Projects/Old');
  const bobFolders = (await curl(['-u', 'bob:bob-pw', `imap://127.0.0.1:${dc.imapPort}/`])).toString();
  assert.match(bobFolders, /"\/" Projects\/Old\r\n/);
});

test('wrong passwords and unknown users are refused', async () => {
  // Dovecot delays repeated failures from one address (2, 4, 8 s...): each attempt uses its own
  // loopback source address.
  let host = 10;
  for (const auth of ['alice:wrong', 'nobody-here:x']) {
    const imap = await run('curl', ['-sS', '--max-time', '20', '--interface', `127.0.0.${host++}`, '-u', auth, `imap://127.0.0.1:${dc.imapPort}/`]);
    assert.notEqual(imap.code, 0, `IMAP login as ${auth} must fail`);
    const pop = await run('curl', ['-sS', '--max-time', '20', '--interface', `127.0.0.${host++}`, '-u', auth, `pop3://127.0.0.1:${dc.pop3Port}/`]);
    assert.notEqual(pop.code, 0, `POP3 login as ${auth} must fail`);
  }
});

test('bad harness input is rejected before anything starts', async () => {
  await assert.rejects(startDovecot({ users: [{ name: 'bad name', password: 'x' }] }), /unsupported user name/);
  await assert.rejects(startDovecot({ users: [{ name: 'ok', password: 'a:b' }] }), /passwords may not contain/);
  await assert.rejects(startDovecot({ users: [{ name: 'ok', password: 'x', folders: { '../escape': [] } }] }), /unsupported folder name/);
  assert.throws(() => dc.addMessage('nobody-here', Buffer.from('x')), /no user/);
  assert.throws(() => dc.addFolder('alice', 'a.b'), /unsupported folder name/);
});

test('IMAP-only instance listens on IMAP alone; stop() removes it and its files', async () => {
  const only = await startDovecot({ name: 'imap-only', protocols: ['imap'], implicitTls: false, users: [{ name: 'carol', password: 'pw', messages: [msg(9)] }] });
  try {
    assert.ok(only.imapPort > 0);
    assert.equal(only.imapsPort, 0);
    assert.equal(only.pop3Port, 0);
    assert.equal(only.pop3sPort, 0);
    const got = await curl(['-u', 'carol:pw', `imap://127.0.0.1:${only.imapPort}/INBOX;UID=1`]);
    assert.ok(got.equals(msg(9)));
  } finally {
    await only.stop();
  }
  assert.equal(existsSync(only.dir), process.env.POSTERN_KEEP_TMP === '1');
  const after = await run('curl', ['-sS', '--max-time', '5', '-u', 'carol:pw', `imap://127.0.0.1:${only.imapPort}/`]);
  assert.notEqual(after.code, 0, 'nothing answers after stop()');
});
