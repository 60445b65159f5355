// Relay proxy failure paths: an upstream that is down, one that stalls after the message or dies
// in the middle of it, one that drops an idle session, an intake that cannot commit, a crash
// between the upstream's 250 and the release (held entries at restart), local and no AUTH, and
// clients that misbehave. Misbehaving upstreams are scripted sockets (no real server does this);
// well-behaved upstreams are a real Postern SMTP endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { hashPassword } from '../../core/smtp/password.ts';
import type { Config } from '../../core/config/schema.ts';

/** A scripted upstream: greets, answers EHLO/MAIL/RCPT/RSET/QUIT, and hands DATA to `onData`. */
async function scriptedUpstream(onData: (socket: Socket, n: number) => void, dropAtData: (n: number) => boolean = () => false, override: (line: string) => string | undefined = () => undefined): Promise<{ port: number; server: Server; sessions: () => number; bodies: string[][] }> {
  const bodies: string[][] = [];
  let sessions = 0;
  let messages = 0;
  let dataCommands = 0;
  const server = createServer((socket) => {
    sessions += 1;
    socket.write('220 scripted ESMTP\r\n');
    let buf = '';
    let inData = false;
    let body: string[] = [];
    socket.on('error', () => undefined);
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const i = buf.indexOf('\r\n');
        if (i < 0) return;
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            messages += 1;
            bodies.push(body);
            body = [];
            onData(socket, messages);
          } else body.push(line);
          continue;
        }
        const cmd = line.slice(0, 4).toUpperCase();
        const special = override(line);
        if (special !== undefined) socket.write(special);
        else if (cmd === 'EHLO') socket.write('250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n');
        else if (cmd === 'DATA') {
          dataCommands += 1;
          if (dropAtData(dataCommands)) {
            socket.destroy();
            return;
          }
          inData = true;
          socket.write('354 go\r\n');
        } else if (cmd === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 2.0.0 ok\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, server, sessions: () => sessions, bodies };
}

async function relayTo(upstream: string, more: (c: Config) => void = () => undefined, dataDir?: string): Promise<TestServer> {
  const srv = await startTestServer((c) => {
    c.relay.port = 0;
    c.relay.upstream = upstream;
    c.relay.auth.allowInsecure = true;
    more(c);
  }, dataDir);
  await srv.archive.addUser({ name: 'alice', addresses: ['alice@example.test'] }).catch(() => undefined);
  return srv;
}

async function open(srv: TestServer): Promise<{ c: SmtpClient; greeting: number }> {
  const c = await SmtpClient.open(srv.running.relayPort ?? 0);
  const g = await c.read();
  return { c, greeting: g.code };
}

async function freePortNumber(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const addr = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return typeof addr === 'object' && addr ? addr.port : 0;
}

test('an unreachable upstream: the client gets 421, nothing is archived, the outcome is counted', async () => {
  const srv = await relayTo(`127.0.0.1:${await freePortNumber()}`);
  try {
    const c = await SmtpClient.open(srv.running.relayPort ?? 0);
    const g = await c.read();
    assert.equal(g.code, 421, g.text);
    assert.match(g.text, /Upstream mail server unavailable/);
    await c.waitClosed();
    assert.equal((await srv.archive.stats()).messages, 0);
    assert.ok(srv.logs.some((l) => l.msg === 'Upstream unavailable; refusing the client with 421'));
    assert.match(await srv.running.app.service('metrics').registry.metrics(), /postern_relay_transactions_total\{outcome="upstream_unavailable"\} 1/);
  } finally {
    await srv.stop();
  }
});

test('an upstream that never answers the end of data: 451 to the client, the message is archived flagged (outcome unknown)', async () => {
  const up = await scriptedUpstream(() => undefined); // swallow the message, never reply
  const srv = await relayTo(`127.0.0.1:${up.port}`, (c) => { c.relay.dataTimeoutSeconds = 0.5; });
  try {
    const { c } = await open(srv);
    await c.cmd('EHLO client.example');
    const r = await sendMail(c, 'bob@example.test', ['alice@example.test'], 'Subject: relay-stalled\r\n\r\nx\r\n');
    assert.equal(r.code, 451, r.text);
    c.close();
    await srv.settle();
    const [entry] = await srv.archive.listEntries('alice', 'Inbox');
    assert.equal(entry?.subject, 'relay-stalled', 'archived: the upstream may have delivered it');
    assert.deepEqual((await srv.archive.getMessage(entry.messageId))?.flags, ['relay-outcome-unknown']);
    assert.ok(srv.logs.some((l) => /no reply after the message was sent/.test(l.msg)));
  } finally {
    await srv.stop();
    up.server.close();
  }
});

test('an upstream that closes before the end of data: 451, nothing archived; the session reconnects upstream', async () => {
  const up = await scriptedUpstream((socket) => socket.write('250 2.0.0 queued\r\n'), (n) => n === 1);
  const srv = await relayTo(`127.0.0.1:${up.port}`);
  try {
    const { c } = await open(srv);
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('MAIL FROM:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: relay-cut\r\n\r\nx\r\n.\r\n');
    const r = await c.read();
    assert.equal(r.code, 451, r.text);
    assert.ok(srv.logs.some((l) => l.msg === 'Upstream failed during the transaction; nothing archived'));
    // Same client session: the relay reconnects to the upstream for the next transaction.
    assert.equal((await sendMail(c, 'bob@example.test', ['alice@example.test'], 'Subject: relay-after-cut\r\n\r\ny\r\n')).code, 250);
    c.close();
    await srv.settle();
    assert.ok(up.sessions() >= 2, 'a second upstream session was opened');
    assert.ok(srv.logs.some((l) => l.msg === 'Upstream connection was closed; reconnecting'));
    const subjects = (await srv.archive.listEntries('alice', 'Inbox')).map((e) => e.subject);
    assert.deepEqual(subjects, ['relay-after-cut']);
    assert.equal(srv.running.intake.heldCount(), 0);
  } finally {
    await srv.stop();
    up.server.close();
  }
});

test('an upstream that answers with a malformed multi-line reply: 451 to the client and a log line', async () => {
  const up = await scriptedUpstream(() => undefined, () => false, (line) => (/^MAIL/i.test(line) ? '250-first\r\n550 changed code\r\n' : undefined));
  const srv = await relayTo(`127.0.0.1:${up.port}`);
  try {
    const { c } = await open(srv);
    await c.cmd('EHLO client.example');
    const r = await c.cmd('MAIL FROM:<bob@example.test>');
    assert.equal(r.code, 451, r.text);
    assert.ok(srv.logs.some((l) => l.msg === 'Upstream unavailable at MAIL FROM' && /changed the reply code/.test(String(l.err))));
    assert.equal((await c.cmd('QUIT')).code, 221);
    c.close();
  } finally {
    await srv.stop();
    up.server.close();
  }
});

test('a client that leaves while the upstream is still answering: the message is delivered intact and archived', async () => {
  const up = await scriptedUpstream((socket) => setTimeout(() => socket.write('250 2.0.0 queued late\r\n'), 300));
  const srv = await relayTo(`127.0.0.1:${up.port}`);
  try {
    const { c } = await open(srv);
    c.write('EHLO client.example\r\nMAIL FROM:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n');
    for (const code of [250, 250, 250, 354]) assert.equal((await c.read()).code, code);
    c.write('Subject: relay-leaver\r\n\r\nbody line\r\n.\r\n');
    c.close(); // gone before the upstream's reply
    for (let i = 0; i < 500 && !srv.logs.some((l) => l.msg === 'Message relayed'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(srv.logs.some((l) => l.msg === 'Message relayed'), JSON.stringify(srv.logs.slice(-8)));
    await srv.settle();
    assert.deepEqual(up.bodies, [['Subject: relay-leaver', '', 'body line']], 'nothing (no QUIT) was written into the message');
    const [entry] = await srv.archive.listEntries('alice', 'Inbox');
    assert.equal(entry?.subject, 'relay-leaver');
  } finally {
    await srv.stop();
    up.server.close();
  }
});

test('the intake cannot commit: 451 and nothing is forwarded (requireArchive)', async () => {
  const up = await startTestServer();
  const srv = await relayTo(`127.0.0.1:${up.smtpPort}`, (c) => { c.intake.inlineMaxBytes = 1024; });
  try {
    // A large message spools to a file; without the spool directory the intake cannot take it.
    rmSync(join(srv.dataDir, 'intake', 'spool'), { recursive: true, force: true });
    const { c } = await open(srv);
    await c.cmd('EHLO client.example');
    const r = await sendMail(c, 'bob@example.test', ['alice@example.test'], `Subject: relay-no-intake\r\n\r\n${'x'.repeat(4000)}\r\n`);
    assert.equal(r.code, 451, r.text);
    c.close();
    await up.settle();
    assert.equal((await up.archive.stats()).messages, 0, 'the upstream received nothing');
    assert.match(await srv.running.app.service('metrics').registry.metrics(), /postern_relay_transactions_total\{outcome="intake_failed"\} 1/);
  } finally {
    await srv.stop();
    await up.stop();
  }
});

test('requireArchive off: when the intake cannot commit, the message is still forwarded (and not archived)', async () => {
  const up = await startTestServer();
  const srv = await relayTo(`127.0.0.1:${up.smtpPort}`, (c) => { c.relay.requireArchive = false; });
  try {
    await srv.running.intake.close(); // every intake commit now fails
    const { c } = await open(srv);
    await c.cmd('EHLO client.example');
    const r = await sendMail(c, 'bob@example.test', ['alice@example.test'], 'Subject: relay-unarchived\r\n\r\nx\r\n');
    assert.equal(r.code, 250, r.text);
    c.close();
    await up.settle();
    assert.equal((await up.archive.stats()).messages, 1, 'the upstream received it');
    assert.equal((await srv.archive.stats()).messages, 0);
    assert.ok(srv.logs.some((l) => l.msg === 'Intake commit failed; forwarding without archiving (requireArchive is off)'));
    assert.match(await srv.running.app.service('metrics').registry.metrics(), /postern_relay_transactions_total\{outcome="intake_failed"\} 1/);
  } finally {
    await srv.stop();
    await up.stop();
  }
});

test('held entries left by a crash are archived at the next start, flagged; a client re-send archives nothing new', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-relay-crash-'));
  const up = await startTestServer();
  try {
    const body = Buffer.from('From: bob@example.test\r\nSubject: relay-crash\r\n\r\nonce\r\n');
    const first = await relayTo(`127.0.0.1:${up.smtpPort}`, () => undefined, dir);
    // The state a crash between the upstream's 250 and the release leaves behind.
    const w = first.running.intake.writer();
    await w.write(body);
    await w.commit({ listener: 'relay', envelope: { mailFrom: 'bob@example.test', rcptTo: ['alice@example.test'] }, session: { remoteAddress: '127.0.0.1', helo: 'c', user: null } }, { state: 'held' });
    await first.settle();
    assert.equal(first.running.intake.heldCount(), 1, 'the queue manager leaves held entries alone');
    assert.equal((await first.archive.stats()).messages, 0);
    await first.running.shutdown('test');

    const second = await relayTo(`127.0.0.1:${up.smtpPort}`, () => undefined, dir);
    try {
      await second.settle();
      assert.equal(second.running.intake.heldCount(), 0);
      const [entry] = await second.archive.listEntries('alice', 'Inbox');
      assert.equal(entry?.subject, 'relay-crash');
      assert.deepEqual((await second.archive.getMessage(entry.messageId))?.flags, ['relay-outcome-unknown'], 'the archive carries the flag');
      assert.ok(second.logs.some((l) => l.msg === 'Relayed message with unknown upstream outcome archived (flagged)'));
      // The client never got its reply and sends the same message again.
      const { c } = await open(second);
      await c.cmd('EHLO client.example');
      assert.equal((await sendMail(c, 'bob@example.test', ['alice@example.test'], body)).code, 250);
      c.close();
      await second.settle();
      assert.equal((await second.archive.stats()).messages, 1, 'the re-send merged into the archived message');
      assert.equal((await second.archive.listEntries('alice', 'Inbox')).length, 1);
    } finally {
      await second.running.shutdown('test');
    }
  } finally {
    await up.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('local AUTH: required, verified against the user directory, upstream unauthenticated', async () => {
  const up = await startTestServer();
  const srv = await relayTo(`127.0.0.1:${up.smtpPort}`, (c) => { c.relay.auth.mode = 'local'; });
  try {
    await srv.archive.updateUser('alice', { passwordHash: await hashPassword('local-pass') });
    const { c } = await open(srv);
    const ehlo = await c.cmd('EHLO client.example');
    assert.ok(ehlo.lines.some((l) => /AUTH PLAIN LOGIN/.test(l)), ehlo.text);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 530, 'AUTH is required');
    assert.equal((await c.cmd(`AUTH PLAIN ${Buffer.from('\0alice\0nope').toString('base64')}`)).code, 535);
    assert.equal((await c.cmd(`AUTH PLAIN ${Buffer.from('\0alice\0local-pass').toString('base64')}`)).code, 235);
    assert.equal((await sendMail(c, 'x@elsewhere.test', ['y@elsewhere.test'], 'Subject: relay-local\r\n\r\nz\r\n')).code, 250);
    c.close();
    await srv.settle();
    const [entry] = await srv.archive.listEntries('alice', 'Sent');
    assert.equal(entry?.subject, 'relay-local');
  } finally {
    await srv.stop();
    await up.stop();
  }
});

test('AUTH mode none, and an upstream without AUTH under passthrough: AUTH is not offered', async () => {
  const up = await startTestServer(); // its endpoint has AUTH off
  const none = await relayTo(`127.0.0.1:${up.smtpPort}`, (c) => { c.relay.auth.mode = 'none'; });
  const pass = await relayTo(`127.0.0.1:${up.smtpPort}`);
  try {
    for (const srv of [none, pass]) {
      const { c } = await open(srv);
      const ehlo = await c.cmd('EHLO client.example');
      assert.ok(!ehlo.lines.some((l) => /AUTH/.test(l)), ehlo.text);
      const r = await c.cmd(`AUTH PLAIN ${Buffer.from('\0a\0b').toString('base64')}`);
      assert.ok(r.code >= 500, r.text);
      c.close();
    }
  } finally {
    await none.stop();
    await pass.stop();
    await up.stop();
  }
});

test('misbehaving clients: garbage, over-long lines, disconnect mid-DATA — nothing forwarded, nothing held', async () => {
  const up = await startTestServer();
  const srv = await relayTo(`127.0.0.1:${up.smtpPort}`);
  try {
    const { c } = await open(srv);
    await c.cmd('EHLO client.example');
    c.write('FOO\r\nBAR baz\r\n');
    assert.ok((await c.read()).code >= 500);
    assert.ok((await c.read()).code >= 500);
    const long = await c.cmd(`MAIL FROM:<${'a'.repeat(5000)}@example.test>`);
    assert.ok(long.code >= 500, long.text);
    assert.equal((await c.cmd('MAIL FROM:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: relay-half\r\n\r\nhalf a message');
    await new Promise((r) => setTimeout(r, 100));
    c.close();
    // Wait until the relay has seen the client go (it then drops the half-read message).
    while (!srv.logs.some((l) => l.msg === 'Connection closed' && l.listener === 'relay')) await new Promise((r) => setTimeout(r, 20));
    await srv.settle();
    await up.settle();
    assert.equal((await up.archive.stats()).messages, 0, 'nothing reached the upstream');
    assert.equal((await srv.archive.stats()).messages, 0);
    assert.equal(srv.running.intake.heldCount(), 0);
  } finally {
    await srv.stop();
    await up.stop();
  }
});
