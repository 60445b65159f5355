// Transcript tests for the POP3 proxy against a scripted upstream (test/protocol/pop3-helpers.ts):
// greeting and APOP, CAPA reconciliation, USER/PASS and AUTH PLAIN passed through, STLS and
// implicit TLS on the client leg, RETR captured byte for byte into the login's archive with the
// final "." only after the intake commit, DELE guarded, re-retrieval archiving nothing new.
// The same flows against real Dovecot and real clients are in test/interop/pop3-proxy.test.ts.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestServer, readAll, type TestServer } from '../helpers/test-server.ts';
import { freePort } from '../interop/harness.ts';
import { FakeUpstream, Pop3TestClient, unstuff } from './pop3-helpers.ts';

const PASSWORD = 'Very-Secret-Pw-7731';
const MESSAGES = [
  Buffer.from('From: Carol <carol@else.org>\r\nTo: alice@example.com\r\nSubject: first\r\nMessage-ID: <p1@else.org>\r\n\r\nHello\r\n.leading dot\r\n..two dots\r\n.\r\nlast\r\n'),
  Buffer.from('From: dave@else.org\r\nTo: alice@example.com\r\nSubject: second\r\nMessage-ID: <p2@else.org>\r\n\r\nbody two\r\n'),
  Buffer.from('From: erin@else.org\r\nTo: alice@example.com\r\nSubject: third\r\nMessage-ID: <p3@else.org>\r\n\r\nbody three\r\n'),
];

async function archived(srv: TestServer, user: string): Promise<Buffer[]> {
  await srv.settle();
  const out: Buffer[] = [];
  for (const e of await srv.archive.listEntries(user, 'Inbox')) {
    const m = await srv.archive.getMessage(e.messageId);
    out.push(await readAll(await srv.archive.openBlob(m?.blobId ?? '')));
  }
  return out;
}

async function login(port: number, opts: { tls?: boolean } = {}): Promise<Pop3TestClient> {
  const c = await Pop3TestClient.open(port, opts);
  assert.match(await c.line(), /^\+OK Postern/);
  assert.match(await c.cmd('USER alice'), /^\+OK/);
  assert.match(await c.cmd(`PASS ${PASSWORD}`), /^\+OK/);
  return c;
}

describe('POP3 proxy', () => {
  let upstream: FakeUpstream;
  let srv: TestServer;
  let tlsPort: number;
  before(async () => {
    upstream = new FakeUpstream({ user: 'alice', password: PASSWORD, messages: MESSAGES });
    await upstream.start();
    tlsPort = await freePort();
    srv = await startTestServer((c) => {
      c.pop3.upstream = `127.0.0.1:${upstream.port}`;
      c.pop3.port = 0;
      c.pop3.tlsPort = tlsPort;
      c.plugins = [{ name: 'dedup', config: { expectedMessages: 1000 } }];
      c.users = [{ name: 'alice', addresses: [], domains: [], pop3Users: ['alice'], groups: [] }];
    });
  });
  after(async () => {
    await srv.stop();
    await upstream.stop();
  });

  test('the status reports the POP3 listeners', async () => {
    assert.ok(srv.running.pop3Port && srv.running.pop3Port > 0);
    assert.equal(srv.running.pop3sPort, tlsPort);
  });

  test('the greeting is Postern\'s and carries the upstream APOP timestamp; APOP is relayed and attributed', async () => {
    const c = await Pop3TestClient.open(srv.running.pop3Port ?? 0);
    const greeting = await c.line();
    assert.equal(greeting, `+OK Postern POP3 proxy ready ${upstream.timestamp}`);
    const digest = createHash('md5').update(upstream.timestamp + PASSWORD).digest('hex');
    assert.match(await c.cmd(`APOP alice ${digest}`), /^\+OK/);
    assert.match(await c.cmd('STAT'), /^\+OK 3 /);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    c.close();
  });

  test('CAPA is reconciled: STLS is Postern\'s, PIPELINING and unknown extensions hidden, SASL narrowed to PLAIN', async () => {
    const c = await Pop3TestClient.open(srv.running.pop3Port ?? 0);
    await c.line();
    assert.equal(await c.cmd('CAPA'), '+OK Capability list follows');
    const caps = (await c.body()).toString('latin1').trim().split('\r\n');
    assert.deepEqual(caps, ['TOP', 'UIDL', 'RESP-CODES', 'STLS', 'USER', 'SASL PLAIN', 'IMPLEMENTATION Postern']);
    // After login: no STLS, no credentials offered.
    assert.match(await c.cmd('USER alice'), /^\+OK/);
    assert.match(await c.cmd(`PASS ${PASSWORD}`), /^\+OK/);
    assert.equal(await c.cmd('CAPA'), '+OK Capability list follows');
    assert.deepEqual((await c.body()).toString('latin1').trim().split('\r\n'), ['TOP', 'UIDL', 'RESP-CODES', 'IMPLEMENTATION Postern']);
    c.close();
  });

  test('RETR streams the message with dot-stuffing preserved and archives the unstuffed bytes to the login\'s user', async () => {
    const c = await login(srv.running.pop3Port ?? 0);
    assert.match(await c.cmd('RETR 1'), /^\+OK/);
    const body = await c.body();
    // When the client sees the end of the message, it is already in the intake or the archive.
    const pending = (await srv.running.intake.list(100)).length;
    const inArchive = (await srv.archive.listEntries('alice', 'Inbox')).length;
    assert.ok(pending + inArchive >= 1, 'message durable before the final "."');
    assert.match(body.toString('latin1'), /\r\n\.\.leading dot\r\n\.\.\.two dots\r\n\.\.\r\nlast\r\n$/);
    assert.deepEqual(unstuff(body), MESSAGES[0]);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    c.close();
    const got = await archived(srv, 'alice');
    assert.equal(got.length, 1);
    assert.deepEqual(got[0], MESSAGES[0]);
    const entry = (await srv.archive.listEntries('alice', 'Inbox'))[0];
    assert.equal(entry?.subject, 'first');
  });

  test('retrieving the same message again archives nothing new', async () => {
    const before = (await archived(srv, 'alice')).length;
    const c = await login(srv.running.pop3Port ?? 0);
    assert.match(await c.cmd('RETR 1'), /^\+OK/);
    assert.deepEqual(unstuff(await c.body()), MESSAGES[0]);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    c.close();
    assert.equal((await archived(srv, 'alice')).length, before);
    // The same bytes for the same owner were durable already: released without a second commit.
    assert.ok(srv.logs.some((l) => l.msg === 'POP3 message already captured earlier' && l.msgNumber === 1));
  });

  test('LIST, UIDL, TOP, NOOP and RSET are relayed; TOP archives nothing', async () => {
    const before = (await archived(srv, 'alice')).length;
    const c = await login(srv.running.pop3Port ?? 0);
    assert.match(await c.cmd('LIST'), /^\+OK/);
    assert.deepEqual((await c.body()).toString('latin1').trim().split('\r\n'), MESSAGES.map((m, i) => `${i + 1} ${m.length}`));
    assert.equal(await c.cmd('LIST 2'), `+OK 2 ${MESSAGES[1]?.length}`);
    assert.match(await c.cmd('UIDL'), /^\+OK/);
    assert.equal((await c.body()).toString('latin1').trim().split('\r\n').length, 3);
    assert.match(await c.cmd('TOP 2 0'), /^\+OK/);
    assert.match((await c.body()).toString('latin1'), /^From: dave@else\.org\r\n[\s\S]*\r\n\r\n$/);
    assert.match(await c.cmd('NOOP'), /^\+OK/);
    assert.match(await c.cmd('RSET'), /^\+OK/);
    assert.match(await c.cmd('RETR 99'), /^-ERR/);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    c.close();
    assert.equal((await archived(srv, 'alice')).length, before);
  });

  test('DELE of a message not retrieved first captures it unseen, then deletes; DELE after RETR deletes directly', async () => {
    const mark = upstream.commands.length;
    const c = await login(srv.running.pop3Port ?? 0);
    assert.match(await c.cmd('DELE 2'), /^\+OK message 2 deleted/);
    assert.match(await c.cmd('RETR 3'), /^\+OK/);
    await c.body();
    assert.match(await c.cmd('DELE 3'), /^\+OK message 3 deleted/);
    assert.match(await c.cmd('RSET'), /^\+OK/);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    c.close();
    const seen = upstream.commands.slice(mark).filter((l) => /^(RETR|DELE)/.test(l));
    assert.deepEqual(seen, ['RETR 2', 'DELE 2', 'RETR 3', 'DELE 3']);
    const got = await archived(srv, 'alice');
    assert.ok(got.some((m) => m.equals(MESSAGES[1] as Buffer)), 'message 2 archived before its DELE');
    assert.ok(got.some((m) => m.equals(MESSAGES[2] as Buffer)));
  });

  test('AUTH PLAIN is passed through (initial response and continuation) and attributes the login', async () => {
    const blob = Buffer.from(`\0alice\0${PASSWORD}`).toString('base64');
    const c1 = await Pop3TestClient.open(srv.running.pop3Port ?? 0);
    await c1.line();
    assert.match(await c1.cmd(`AUTH PLAIN ${blob}`), /^\+OK/);
    assert.match(await c1.cmd('STAT'), /^\+OK/);
    c1.close();
    const c2 = await Pop3TestClient.open(srv.running.pop3Port ?? 0);
    await c2.line();
    assert.equal(await c2.cmd('AUTH PLAIN'), '+ ');
    assert.match(await c2.cmd(blob), /^\+OK/);
    assert.match(await c2.cmd('QUIT'), /^\+OK/);
    c2.close();
    const c3 = await Pop3TestClient.open(srv.running.pop3Port ?? 0);
    await c3.line();
    assert.match(await c3.cmd('AUTH CRAM-MD5'), /^-ERR Unsupported SASL mechanism/);
    assert.match(await c3.cmd(`AUTH PLAIN ${Buffer.from('\0alice\0wrong').toString('base64')}`), /^-ERR \[AUTH\]/);
    assert.equal(await c3.cmd('AUTH PLAIN'), '+ ');
    assert.equal(await c3.cmd('not base64!'), '-ERR Invalid SASL response; authentication cancelled');
    assert.match(await c3.cmd('STAT'), /^-ERR Not logged in/);
    c3.close();
    const logins = srv.logs.filter((l) => l.msg === 'POP3 login through the proxy').map((l) => l.login);
    assert.ok(logins.filter((l) => l === 'alice').length >= 2);
  });

  test('STLS on the client leg: TLS handshake with Postern, then the session continues', async () => {
    const plain = await Pop3TestClient.open(srv.running.pop3Port ?? 0);
    await plain.line();
    assert.equal(await plain.cmd('STLS'), '+OK Begin TLS negotiation');
    const c = await plain.startTls();
    assert.equal(await c.cmd('STLS'), '-ERR Already using TLS');
    assert.equal(await c.cmd('CAPA'), '+OK Capability list follows');
    assert.ok(!(await c.body()).toString('latin1').includes('STLS'));
    assert.match(await c.cmd('USER alice'), /^\+OK/);
    assert.match(await c.cmd(`PASS ${PASSWORD}`), /^\+OK/);
    assert.match(await c.cmd('RETR 1'), /^\+OK/);
    assert.deepEqual(unstuff(await c.body()), MESSAGES[0]);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    c.close();
  });

  test('implicit TLS (POP3S) listener', async () => {
    const c = await login(tlsPort, { tls: true });
    assert.match(await c.cmd('RETR 3'), /^\+OK/);
    assert.deepEqual(unstuff(await c.body()), MESSAGES[2]);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    c.close();
  });

  test('credentials never reach the log, and the proxy metrics are exported', async () => {
    await srv.settle();
    const text = JSON.stringify(srv.logs);
    assert.ok(!text.includes(PASSWORD), 'password in the log');
    assert.ok(!text.includes(Buffer.from(`\0alice\0${PASSWORD}`).toString('base64')), 'AUTH PLAIN response in the log');
    const digest = createHash('md5').update(upstream.timestamp + PASSWORD).digest('hex');
    assert.ok(!text.includes(digest), 'APOP digest in the log');
    const metrics = await srv.running.app.service('metrics').registry.metrics();
    assert.match(metrics, /postern_pop3_sessions_total\{outcome="quit"\} \d+/);
    assert.match(metrics, /postern_pop3_retrieved_total [1-9]/);
    assert.match(metrics, /postern_pop3_captured_bytes_total [1-9]/);
    assert.match(metrics, /postern_connections_total\{listener="pop3"\} [1-9]/);
  });
});

describe('POP3 proxy with a login no user claims', () => {
  test('the retrieved message is archived by normal routing only (here: the unmatched archive)', async () => {
    const upstream = new FakeUpstream({ user: 'alice', password: PASSWORD, messages: MESSAGES });
    await upstream.start();
    const srv = await startTestServer((c) => {
      c.pop3.upstream = `127.0.0.1:${upstream.port}`;
      c.pop3.port = 0;
      c.pop3.tlsPort = 0;
      c.users = [{ name: 'alice', addresses: [], domains: [], pop3Users: ['someone-else'], groups: [] }];
    });
    try {
      const c = await login(srv.running.pop3Port ?? 0);
      assert.match(await c.cmd('RETR 2'), /^\+OK/);
      assert.deepEqual(unstuff(await c.body()), MESSAGES[1]);
      assert.match(await c.cmd('QUIT'), /^\+OK/);
      c.close();
      assert.equal((await archived(srv, 'alice')).length, 0);
      assert.deepEqual(await archived(srv, '_unrouted'), [MESSAGES[1]]);
      const line = srv.logs.find((l) => l.msg === 'POP3 login through the proxy');
      assert.equal(line?.archiveUser, '(none: normal routing only)');
    } finally {
      await srv.stop();
      await upstream.stop();
    }
  });
});

describe('POP3 proxy with a large message', () => {
  test('a message larger than the in-memory limit streams into the intake and is archived byte for byte', async () => {
    const large = Buffer.concat([
      Buffer.from('From: big@else.org\r\nTo: alice@example.com\r\nSubject: large\r\nMessage-ID: <large@else.org>\r\n\r\n'),
      Buffer.from(`.dotted ${'y'.repeat(90)}\r\n${'z'.repeat(98)}\r\n`.repeat(15_000)),
    ]);
    const upstream = new FakeUpstream({ user: 'alice', password: PASSWORD, messages: [large] });
    await upstream.start();
    const srv = await startTestServer((c) => {
      c.pop3.upstream = `127.0.0.1:${upstream.port}`;
      c.pop3.port = 0;
      c.pop3.tlsPort = 0;
      c.users = [{ name: 'alice', addresses: [], domains: [], pop3Users: ['alice'], groups: [] }];
    });
    try {
      const c = await login(srv.running.pop3Port ?? 0);
      assert.match(await c.cmd('RETR 1'), /^\+OK/);
      assert.deepEqual(unstuff(await c.body(30_000)), large);
      // Again in the same session: streamed, recognised as already durable, not committed twice.
      assert.match(await c.cmd('RETR 1'), /^\+OK/);
      assert.deepEqual(unstuff(await c.body(30_000)), large);
      assert.match(await c.cmd('QUIT'), /^\+OK/);
      c.close();
      assert.deepEqual(await archived(srv, 'alice'), [large]);
      assert.ok(srv.logs.some((l) => l.msg === 'POP3 message already captured earlier'));
    } finally {
      await srv.stop();
      await upstream.stop();
    }
  });
});

describe('POP3 proxy with a UTF-8 password', () => {
  test('USER/PASS bytes beyond ASCII reach the upstream unchanged', async () => {
    const utf8 = Buffer.from('p\u00e4ssw\u00f6rd-\u20ac', 'utf8');
    const upstream = new FakeUpstream({ user: 'alice', password: utf8.toString('latin1'), messages: MESSAGES });
    await upstream.start();
    const srv = await startTestServer((c) => {
      c.pop3.upstream = `127.0.0.1:${upstream.port}`;
      c.pop3.port = 0;
      c.pop3.tlsPort = 0;
    });
    try {
      const c = await Pop3TestClient.open(srv.running.pop3Port ?? 0);
      await c.line();
      assert.match(await c.cmd('USER alice'), /^\+OK/);
      c.socket.write(Buffer.concat([Buffer.from('PASS '), utf8, Buffer.from('\r\n')]));
      assert.match(await c.line(), /^\+OK Logged in/);
      c.close();
      assert.ok(!JSON.stringify(srv.logs).includes('w\u00f6rd'));
    } finally {
      await srv.stop();
      await upstream.stop();
    }
  });
});
