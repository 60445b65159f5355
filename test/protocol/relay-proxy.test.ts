// Relay proxy transcripts: a client talks to Postern's relay port; the upstream is a second, real
// Postern SMTP endpoint (which archives what it received, so both sides can be compared byte for
// byte). Covers EHLO reconciliation, delivery with the upstream's reply, per-recipient refusals,
// upstream refusal at end of data, AUTH passthrough, dot-stuffing, RSET and pipelining.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { readAll, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { hashPassword } from '../../core/smtp/password.ts';
import { verdict } from '../../core/app/verdict.ts';
import { headerValues } from '../../core/mime/headers.ts';

const plain = (user: string, pass: string): string => Buffer.from(`\0${user}\0${pass}`).toString('base64');

let up: TestServer;
/** session.user the upstream saw at each MAIL FROM, in order. */
const upstreamMailUsers: Array<string | null> = [];
let relay: TestServer;
let relayPort: number;

async function addUsers(srv: TestServer): Promise<void> {
  await srv.archive.addUser({ name: 'alice', addresses: ['alice@example.test'] });
  await srv.archive.addUser({ name: 'bob', addresses: ['bob@example.test'] });
  await srv.archive.addUser({ name: 'carol', addresses: ['carol@example.test'] });
}

before(async () => {
  const hash = await hashPassword('alice-pass');
  up = await startTestServer((c) => {
    c.smtp.maxMessageSize = 1_000_000;
    c.smtp.auth = { mode: 'optional', users: { 'alice@example.test': hash }, allowInsecure: true };
  });
  await addUsers(up);
  const hooks = up.running.app.service('hooks');
  hooks.on('mailFrom', 'test-upstream-users', ({ session }) => {
    upstreamMailUsers.push(session.user);
    return undefined;
  });
  hooks.on('rcptTo', 'test-upstream', ({ address }) => (address === 'nobody@example.test' ? verdict.reject(550, '5.1.1 <nobody@example.test>: Recipient address rejected') : undefined));
  hooks.on('dataEnd', 'test-upstream', ({ headers }) => (headerValues(headers, 'subject').some((v) => v.includes('upstream-refuses')) ? verdict.reject(554, '5.7.1 Upstream content policy refused this') : undefined));
  relay = await startTestServer((c) => {
    c.relay.port = 0;
    c.relay.upstream = `127.0.0.1:${up.smtpPort}`;
    c.relay.auth.allowInsecure = true;
  });
  await addUsers(relay);
  relayPort = relay.running.relayPort ?? 0;
  assert.ok(relayPort > 0, 'the relay listens');
});

after(async () => {
  await relay?.stop();
  await up?.stop();
});

async function open(): Promise<SmtpClient> {
  const c = await SmtpClient.open(relayPort);
  const greeting = await c.read();
  assert.equal(greeting.code, 220, greeting.text);
  return c;
}

/** The bytes of the single message in user/folder whose subject contains marker. */
async function archived(srv: TestServer, user: string, folder: string, marker: string): Promise<{ bytes: Buffer; messageId: string } | null> {
  const hits = (await srv.archive.listEntries(user, folder)).filter((e) => e.subject.includes(marker));
  assert.ok(hits.length <= 1, `at most one ${marker} in ${user}/${folder}`);
  const hit = hits[0];
  if (!hit) return null;
  const msg = await srv.archive.getMessage(hit.messageId);
  assert.ok(msg);
  return { bytes: await readAll(await srv.archive.openBlob(msg.blobId)), messageId: msg.id };
}

test('EHLO advertises only what both ends can do', async () => {
  const c = await open();
  const ehlo = await c.cmd('EHLO client.example');
  c.close();
  const features = ehlo.lines.slice(1).map((l) => l.slice(4));
  assert.ok(features.includes('SIZE 1000000'), `SIZE is the upstream's smaller limit: ${ehlo.text}`);
  for (const f of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'DSN', 'STARTTLS', 'AUTH PLAIN LOGIN']) assert.ok(features.includes(f), `${f} in ${ehlo.text}`);
  assert.ok(!features.some((f) => /^(CHUNKING|REQUIRETLS|XCLIENT|XFORWARD)/.test(f)), ehlo.text);
});

test('a relayed message gets the upstream reply and is archived as delivered, byte-identical on both sides', async () => {
  const c = await open();
  await c.cmd('EHLO client.example');
  const body = 'From: bob@example.test\r\nTo: alice@example.test\r\nSubject: relay-basic\r\n\r\nhello\r\n.dot line\r\n..two dots\r\n';
  const wire = body.replace(/^\./gm, '..');
  const reply = await sendMail(c, 'bob@example.test', ['alice@example.test'], wire);
  assert.equal(reply.code, 250, reply.text);
  assert.match(reply.text, /queued as \w+/, 'the client sees the upstream reply text');
  await c.cmd('QUIT');
  c.close();
  await Promise.all([relay.settle(), up.settle()]);
  const inbox = await archived(relay, 'alice', 'Inbox', 'relay-basic');
  const sent = await archived(relay, 'bob', 'Sent', 'relay-basic');
  const upstream = await archived(up, 'alice', 'Inbox', 'relay-basic');
  assert.ok(inbox && sent && upstream);
  assert.equal(inbox.bytes.toString('latin1'), body, 'the archive holds the unstuffed message');
  assert.ok(upstream.bytes.equals(inbox.bytes), 'the upstream received exactly the archived bytes (dot-stuffing round trip)');
  const msg = await relay.archive.getMessage(inbox.messageId);
  assert.equal(msg?.captures[0]?.listener, 'relay');
  assert.equal(relay.running.intake.heldCount(), 0);
});

test('a recipient the upstream refuses gets its reply; only accepted recipients are archived', async () => {
  const c = await open();
  await c.cmd('EHLO client.example');
  assert.equal((await c.cmd('MAIL FROM:<bob@example.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
  const refused = await c.cmd('RCPT TO:<nobody@example.test>');
  assert.equal(refused.code, 550);
  assert.match(refused.text, /Recipient address rejected/);
  assert.equal((await c.cmd('RCPT TO:<carol@example.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write('Subject: relay-partial\r\n\r\nbody\r\n.\r\n');
  assert.equal((await c.read()).code, 250);
  c.close();
  await Promise.all([relay.settle(), up.settle()]);
  const inbox = await archived(relay, 'carol', 'Inbox', 'relay-partial');
  assert.ok(inbox);
  const msg = await relay.archive.getMessage(inbox.messageId);
  assert.deepEqual(msg?.captures[0]?.rcptTo, ['alice@example.test', 'carol@example.test']);
});

test('an upstream refusal at end of data reaches the client and nothing is archived', async () => {
  const before = (await relay.archive.stats()).messages;
  const c = await open();
  await c.cmd('EHLO client.example');
  const reply = await sendMail(c, 'bob@example.test', ['alice@example.test'], 'Subject: upstream-refuses\r\n\r\nno\r\n');
  assert.equal(reply.code, 554);
  assert.match(reply.text, /Upstream content policy refused this/);
  // The session goes on: the next transaction is relayed.
  assert.equal((await sendMail(c, 'bob@example.test', ['alice@example.test'], 'Subject: relay-after-refusal\r\n\r\nyes\r\n')).code, 250);
  c.close();
  await relay.settle();
  assert.equal((await relay.archive.stats()).messages, before + 1);
  assert.equal(await archived(relay, 'alice', 'Inbox', 'upstream-refuses'), null);
  assert.equal(relay.running.intake.heldCount(), 0, 'the held entry was removed');
  const metrics = await relay.running.app.service('metrics').registry.metrics();
  assert.match(metrics, /postern_relay_transactions_total\{outcome="rejected"\} [1-9]/);
  assert.match(metrics, /postern_relay_transactions_total\{outcome="delivered"\} [1-9]/);
  assert.match(metrics, /postern_relay_upstream_duration_seconds_count\{phase="data"\} [1-9]/);
});

test('AUTH is passed through: the upstream decides, the password is not logged, mail is attributed as sent', async () => {
  const c = await open();
  await c.cmd('EHLO client.example');
  const bad = await c.cmd(`AUTH PLAIN ${plain('alice@example.test', 'wrong-pass')}`);
  assert.equal(bad.code, 535, bad.text);
  const good = await c.cmd(`AUTH PLAIN ${plain('alice@example.test', 'alice-pass')}`);
  assert.equal(good.code, 235, good.text);
  // The envelope sender is not alice: attribution comes from the authenticated login.
  const reply = await sendMail(c, 'someone@elsewhere.test', ['carol@example.test'], 'From: someone@elsewhere.test\r\nSubject: relay-auth\r\n\r\nx\r\n');
  assert.equal(reply.code, 250, reply.text);
  c.close();
  await relay.settle();
  assert.ok(await archived(relay, 'alice', 'Sent', 'relay-auth'), 'archived as sent mail of the authenticated user');
  assert.ok(await archived(relay, 'carol', 'Inbox', 'relay-auth'));
  const logs = JSON.stringify(relay.logs);
  assert.ok(!logs.includes('wrong-pass') && !logs.includes('alice-pass'), 'no password in the log');
  assert.ok(relay.logs.some((l) => l.msg === 'Upstream refused authentication' && l.user === 'alice@example.test'));
});

test('AUTH LOGIN from the client is passed through too', async () => {
  const c = await open();
  await c.cmd('EHLO client.example');
  assert.equal((await c.cmd('AUTH LOGIN')).code, 334);
  assert.equal((await c.cmd(Buffer.from('alice@example.test').toString('base64'))).code, 334);
  assert.equal((await c.cmd(Buffer.from('alice-pass').toString('base64'))).code, 235);
  c.close();
});

test('RSET and a second transaction on one session; pipelined commands get their replies in order', async () => {
  const c = await open();
  await c.cmd('EHLO client.example');
  assert.equal((await c.cmd('MAIL FROM:<bob@example.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
  assert.equal((await c.cmd('RSET')).code, 250);
  c.write('MAIL FROM:<bob@example.test> BODY=8BITMIME\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n');
  const replies = [await c.read(), await c.read(), await c.read(), await c.read()];
  assert.deepEqual(replies.map((r) => r.code), [250, 550, 250, 354]);
  c.write('Subject: relay-pipelined\r\n\r\n8-bit: caf\u00e9\r\n.\r\n');
  assert.equal((await c.read()).code, 250);
  c.close();
  await Promise.all([relay.settle(), up.settle()]);
  const inbox = await archived(relay, 'alice', 'Inbox', 'relay-pipelined');
  const upstream = await archived(up, 'alice', 'Inbox', 'relay-pipelined');
  assert.ok(inbox && upstream && inbox.bytes.equals(upstream.bytes));
});

test('STARTTLS on the client leg, then a relayed message', async () => {
  const c = await open();
  await c.cmd('EHLO client.example');
  await c.starttls();
  const ehlo = await c.cmd('EHLO client.example');
  assert.ok(!ehlo.lines.some((l) => l.includes('STARTTLS')), ehlo.text);
  assert.equal((await sendMail(c, 'bob@example.test', ['alice@example.test'], 'Subject: relay-tls\r\n\r\nsecret\r\n')).code, 250);
  c.close();
  await relay.settle();
  assert.ok(await archived(relay, 'alice', 'Inbox', 'relay-tls'));
});

test('smuggling-shaped dot lines and bare LF are refused and never forwarded', async () => {
  const upBefore = (await up.archive.stats()).messages;
  const c = await open();
  await c.cmd('EHLO client.example');
  const smuggle = await sendMail(c, 'bob@example.test', ['alice@example.test'], 'Subject: relay-smuggle\r\n\r\nx\n.\r\nMAIL FROM:<evil@example.test>\r\n');
  assert.equal(smuggle.code, 554, smuggle.text);
  const bare = await sendMail(c, 'bob@example.test', ['alice@example.test'], 'Subject: relay-bare\r\n\r\nline\nother\r\n');
  assert.equal(bare.code, 554, bare.text);
  assert.match(bare.text, /bare CR or LF/);
  // The session is still usable and the upstream transaction was reset.
  assert.equal((await sendMail(c, 'bob@example.test', ['alice@example.test'], 'Subject: relay-clean\r\n\r\nok\r\n')).code, 250);
  c.close();
  await Promise.all([relay.settle(), up.settle()]);
  assert.equal((await up.archive.stats()).messages, upBefore + 1, 'only the clean message reached the upstream');
  assert.equal(await archived(relay, 'alice', 'Inbox', 'relay-smuggle'), null);
  assert.equal(relay.running.intake.heldCount(), 0);
});

test('a message over the advertised SIZE is refused by the upstream at MAIL FROM', async () => {
  const c = await open();
  await c.cmd('EHLO client.example');
  const r = await c.cmd('MAIL FROM:<bob@example.test> SIZE=2000000');
  assert.equal(r.code, 552, r.text);
  c.close();
});

test('idle upstream sessions are reused by the next client, but never after AUTH', async () => {
  const connections = async (): Promise<number> => {
    const text = await up.running.app.service('metrics').registry.metrics();
    return Number(/postern_connections_total\{listener="smtp"\} (\d+)/.exec(text)?.[1] ?? NaN);
  };
  const session = async (auth: boolean, subject: string): Promise<void> => {
    const c = await open();
    await c.cmd('EHLO client.example');
    if (auth) assert.equal((await c.cmd(`AUTH PLAIN ${plain('alice@example.test', 'alice-pass')}`)).code, 235);
    assert.equal((await sendMail(c, 'bob@example.test', ['alice@example.test'], `Subject: ${subject}\r\n\r\nx\r\n`)).code, 250);
    const closed = relay.logs.filter((l) => l.msg === 'Connection closed' && l.listener === 'relay').length;
    assert.equal((await c.cmd('QUIT')).code, 221);
    await c.waitClosed();
    // The relay hands the upstream session back to the pool as it logs the close.
    while (relay.logs.filter((l) => l.msg === 'Connection closed' && l.listener === 'relay').length === closed) await new Promise((r) => setTimeout(r, 10));
  };
  await session(false, 'relay-pool-1');
  const before = await connections();
  await session(false, 'relay-pool-2');
  await session(false, 'relay-pool-3');
  assert.equal(await connections(), before, 'no new upstream connection for the next clients');
  assert.ok(relay.logs.some((l) => l.msg === 'Upstream session reused from the pool'));
  await session(true, 'relay-pool-auth');
  upstreamMailUsers.length = 0;
  await session(false, 'relay-pool-after-auth');
  assert.deepEqual(upstreamMailUsers, [null], 'the next client did not inherit the authenticated upstream session');
});
