// Transcript tests for the SMTP journaling endpoint: client lines -> server replies, against a live
// server on an ephemeral port, with the archive checked afterwards.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { startTestServer, readAll, type TestServer } from '../helpers/test-server.ts';

async function archived(srv: TestServer, user: string, folder = 'Inbox'): Promise<Buffer[]> {
  await srv.settle();
  const out: Buffer[] = [];
  for (const e of await srv.archive.listEntries(user, folder)) {
    const m = await srv.archive.getMessage(e.messageId);
    out.push(await readAll(await srv.archive.openBlob(m?.blobId ?? '')));
  }
  return out;
}

async function session(srv: TestServer): Promise<SmtpClient> {
  const c = await SmtpClient.open(srv.smtpPort);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

describe('SMTP endpoint', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer((c) => {
      c.smtp.maxMessageSize = 64 * 1024;
      c.smtp.maxRecipients = 3;
      c.intake.inlineMaxBytes = 4096;
    });
    await srv.archive.addUser({ name: 'alice', addresses: ['alice@example.com'] });
    await srv.archive.addUser({ name: 'bob', addresses: ['bob@example.com'] });
  });
  after(() => srv.stop());

  test('EHLO advertises the extensions journaling MTAs use, and no AUTH when it is off', async () => {
    const c = await SmtpClient.open(srv.smtpPort);
    const greeting = await c.read();
    assert.equal(greeting.code, 220);
    const ehlo = await c.cmd('EHLO mta.example');
    assert.equal(ehlo.code, 250);
    for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE 65536', 'DSN', 'STARTTLS']) {
      assert.ok(ehlo.lines.some((l) => l.slice(4) === ext), `missing ${ext} in ${ehlo.text}`);
    }
    assert.ok(!ehlo.lines.some((l) => l.slice(4).startsWith('AUTH')), ehlo.text);
    assert.equal((await c.cmd('QUIT')).code, 221);
    c.close();
  });

  test('a message is answered 250 with its intake id and archived byte for byte into each known recipient', async () => {
    const c = await session(srv);
    const body = 'From: Carol <carol@else.org>\r\nTo: alice@example.com\r\nSubject: hello\r\nMessage-ID: <a1@else.org>\r\n\r\nLine one\r\n..leading dot\r\n';
    const reply = await sendMail(c, 'carol@else.org', ['alice@example.com', 'BOB@Example.COM', 'nobody@example.com'], body);
    assert.equal(reply.code, 250);
    assert.match(reply.text, /^250 2\.0\.0 Ok: queued as [0-9a-z]{19}$/);
    c.close();
    const expected = Buffer.from(body.replace('..leading', '.leading'));
    const a = await archived(srv, 'alice');
    assert.ok(a.some((b) => b.equals(expected)), 'alice has the exact bytes');
    const b = await archived(srv, 'bob');
    assert.ok(b.some((x) => x.equals(expected)), 'bob has the exact bytes');
  });

  test('the sender, when a known user, gets the message in Sent', async () => {
    const c = await session(srv);
    const body = 'From: alice@example.com\r\nSubject: sent-by-alice\r\n\r\nhi\r\n';
    assert.equal((await sendMail(c, 'alice@example.com', ['outside@else.org'], body)).code, 250);
    c.close();
    const sent = await archived(srv, 'alice', 'Sent');
    assert.ok(sent.some((b) => b.equals(Buffer.from(body))));
  });

  test('a message for no known user is kept in the unmatched archive, never dropped', async () => {
    const c = await session(srv);
    const body = 'Subject: for-nobody\r\n\r\nx\r\n';
    assert.equal((await sendMail(c, 'x@else.org', ['y@else.org'], body)).code, 250);
    c.close();
    const kept = await archived(srv, '_unrouted');
    assert.ok(kept.some((b) => b.equals(Buffer.from(body))));
  });

  test('PIPELINING: a whole transaction in one write gets every reply in order', async () => {
    const c = await session(srv);
    c.write('MAIL FROM:<p@else.org>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n');
    assert.equal((await c.read()).code, 250);
    assert.equal((await c.read()).code, 250);
    assert.equal((await c.read()).code, 250);
    assert.equal((await c.read()).code, 354);
    c.write('Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n');
    assert.equal((await c.read()).code, 250);
    assert.equal((await c.read()).code, 221);
    c.close();
  });

  test('SIZE above the limit is refused at MAIL FROM; a body that grows past it is refused with 552 and not stored', async () => {
    const c = await session(srv);
    const big = await c.cmd('MAIL FROM:<s@else.org> SIZE=999999');
    assert.equal(big.code, 552);
    assert.equal((await c.cmd('MAIL FROM:<s@else.org>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    await srv.settle();
    const line = 'x'.repeat(998) + '\r\n';
    for (let i = 0; i < 200; i++) c.write(line); // ~200 KB, limit is 64 KB
    c.write('.\r\n');
    const reply = await c.read();
    assert.equal(reply.code, 552);
    assert.match(reply.text, /5\.3\.4/);
    assert.equal(srv.running.intake.counts().active, 0, 'nothing was committed to the intake');
    assert.deepEqual(readdirSync(join(srv.dataDir, 'intake', 'spool')), []);
    assert.ok(srv.logs.some((l) => l.msg === 'Message refused' && l.reason === 'size'));
    // The session stays usable.
    assert.equal((await sendMail(c, 's@else.org', ['alice@example.com'], 'Subject: after-oversize\r\n\r\nok\r\n')).code, 250);
    c.close();
  });

  test('an over-long command line gets 421 and the connection is closed (bounded buffer)', async () => {
    const c = await session(srv);
    c.write('MAIL FROM:<' + 'a'.repeat(100000) + '@else.org>\r\n');
    const reply = await c.read();
    assert.equal(reply.code, 421);
    assert.match(reply.text, /Command line too long/);
    await c.waitClosed();
  });

  test('more recipients than the limit get 452 4.5.3', async () => {
    const c = await session(srv);
    assert.equal((await c.cmd('MAIL FROM:<r@else.org>')).code, 250);
    for (let i = 0; i < 3; i++) assert.equal((await c.cmd(`RCPT TO:<r${i}@else.org>`)).code, 250);
    const over = await c.cmd('RCPT TO:<r9@else.org>');
    assert.equal(over.code, 452);
    assert.match(over.text, /4\.5\.3/);
    c.close();
  });

  for (const [name, seq] of [['LF.LF', '\n.\n'], ['LF.CRLF', '\n.\r\n'], ['CRLF.LF', '\r\n.\n'], ['CR.CR', '\r.\r']] as const) {
    test(`SMTP smuggling: a lone dot framed as ${name} is refused with 554 and the smuggled commands never run`, async () => {
      const c = await session(srv);
      assert.equal((await c.cmd('MAIL FROM:<attacker@else.org>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<alice@example.com>')).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      // Messages of earlier tests may still be on their way into the archive: count after they land.
      await srv.settle();
      const before = (await srv.archive.stats()).messages;
      c.write(`Subject: smuggle\r\n\r\nhello${seq}MAIL FROM:<ceo@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: forged\r\n\r\nforged\r\n.\r\n`);
      const reply = await c.read();
      assert.equal(reply.code, 554, reply.text);
      assert.match(reply.text, /5\.5\.2/);
      // Exactly one reply: the smuggled MAIL/RCPT/DATA were message content, not commands.
      assert.equal((await c.cmd('NOOP')).code, 250);
      c.close();
      await srv.settle();
      assert.equal((await srv.archive.stats()).messages, before);
      assert.ok(srv.logs.some((l) => l.msg === 'Message refused' && l.reason === 'smuggling'));
    });
  }

  test('bare LF inside a message is archived unaltered by default and counted', async () => {
    const c = await session(srv);
    const body = 'Subject: bare-lf\r\n\r\nunix line\nnext line\r\n';
    assert.equal((await sendMail(c, 'l@else.org', ['alice@example.com'], body)).code, 250);
    c.close();
    const a = await archived(srv, 'alice');
    assert.ok(a.some((b) => b.equals(Buffer.from(body))));
    const metrics = await srv.running.app.service('metrics').registry.metrics();
    assert.match(metrics, /postern_bare_line_ending_messages_total\{listener="smtp"\} [1-9]/);
  });

  test('8-bit headers and an SMTPUTF8 address are accepted and stored unaltered', async () => {
    const c = await session(srv);
    const body = Buffer.from('From: Jürgen <jürgen@bücher.example>\r\nSubject: Grüße – ünïcödé\r\n\r\nKörper\r\n', 'utf8');
    assert.equal((await c.cmd('MAIL FROM:<jürgen@bücher.example> SMTPUTF8 BODY=8BITMIME')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.com> NOTIFY=NEVER')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(body);
    c.write('.\r\n');
    assert.equal((await c.read()).code, 250);
    c.close();
    const a = await archived(srv, 'alice');
    assert.ok(a.some((b) => b.equals(body)));
    const entries = await srv.archive.listEntries('alice', 'Inbox');
    assert.ok(entries.some((e) => e.subject === 'Grüße – ünïcödé'));
  });

  test('a message larger than the inline limit is spooled to a file, archived exactly, and the spool file removed', async () => {
    const c = await session(srv);
    const lines: string[] = ['Subject: spooled', ''];
    for (let i = 0; i < 600; i++) lines.push(`line ${i} ${'y'.repeat(60)}`);
    const body = lines.join('\r\n') + '\r\n';
    assert.ok(body.length > 4096 && body.length < 64 * 1024);
    assert.equal((await sendMail(c, 'big@else.org', ['bob@example.com'], body)).code, 250);
    c.close();
    const b = await archived(srv, 'bob');
    assert.ok(b.some((x) => x.equals(Buffer.from(body))));
    assert.deepEqual(readdirSync(join(srv.dataDir, 'intake', 'spool')), []);
  });

  test('STARTTLS then a transaction over TLS', async () => {
    const c = await session(srv);
    await c.starttls();
    assert.equal((await c.cmd('EHLO tls.example')).code, 250);
    assert.equal((await sendMail(c, 't@else.org', ['alice@example.com'], 'Subject: over-tls\r\n\r\nsecret\r\n')).code, 250);
    c.close();
    await srv.settle();
    const entries = await srv.archive.listEntries('alice', 'Inbox');
    assert.ok(entries.some((e) => e.subject === 'over-tls'));
  });
});

describe('SMTP endpoint limits and plugins', () => {
  test('idle clients are disconnected with 421 after the idle timeout', async () => {
    const srv = await startTestServer((c) => { c.smtp.idleTimeoutSeconds = 1; });
    try {
      const c = await SmtpClient.open(srv.smtpPort);
      assert.equal((await c.read()).code, 220);
      const reply = await c.read(5000);
      assert.equal(reply.code, 421);
      await c.waitClosed();
    } finally {
      await srv.stop();
    }
  });

  test('connections beyond maxConnections get 421', async () => {
    const srv = await startTestServer((c) => { c.smtp.maxConnections = 2; });
    try {
      const a = await SmtpClient.open(srv.smtpPort);
      const b = await SmtpClient.open(srv.smtpPort);
      assert.equal((await a.read()).code, 220);
      assert.equal((await b.read()).code, 220);
      const c = await SmtpClient.open(srv.smtpPort);
      assert.equal((await c.read()).code, 421);
      a.close(); b.close(); c.close();
    } finally {
      await srv.stop();
    }
  });

  test('an early talker is refused when detection is on', async () => {
    const srv = await startTestServer((c) => { c.smtp.earlyTalkerDelayMs = 300; });
    try {
      const c = await SmtpClient.open(srv.smtpPort);
      c.write('EHLO too.early\r\n');
      const first = await c.read();
      assert.equal(first.code, 421, first.text);
      c.close();
    } finally {
      await srv.stop();
    }
  });

  test('with earlyTalkerDelayMs 0 the greeting is sent without any timer; with 100 it waits for one', async (t) => {
    for (const delay of [0, 100]) {
      const srv = await startTestServer((c) => { c.smtp.earlyTalkerDelayMs = delay; });
      try {
        // Freeze timers: only a greeting that needs no timer can arrive.
        t.mock.timers.enable({ apis: ['setTimeout'] });
        const c = await SmtpClient.open(srv.smtpPort);
        let greeted = false;
        const greeting = c.read(60000).then((r) => { greeted = true; return r; });
        await new Promise((r) => setImmediate(r));
        for (let i = 0; i < 200 && !greeted; i++) await new Promise((r) => setImmediate(r));
        assert.equal(greeted, delay === 0, `delay ${delay}`);
        t.mock.timers.tick(delay);
        assert.equal((await greeting).code, 220);
        t.mock.timers.reset();
        c.close();
      } finally {
        t.mock.timers.reset();
        await srv.stop();
      }
    }
  });

  test('a plugin that throws during RCPT TO yields 451, never a 5xx', async () => {
    const srv = await startTestServer();
    try {
      srv.running.app.hooks.on('rcptTo', 'broken', () => { throw new Error('bug'); });
      const c = await session(srv);
      assert.equal((await c.cmd('MAIL FROM:<a@else.org>')).code, 250);
      const reply = await c.cmd('RCPT TO:<b@else.org>');
      assert.equal(reply.code, 451);
      assert.ok(srv.logs.some((l) => l.msg === 'Hook failed; answering with a temporary failure' && l.plugin === 'broken'));
      c.close();
    } finally {
      await srv.stop();
    }
  });

  test('a plugin gate on dataEnd can reject with its own code', async () => {
    const srv = await startTestServer();
    try {
      srv.running.app.hooks.on('dataEnd', 'policy', ({ headers }) =>
        headers.fields.some((f) => f.name.toLowerCase() === 'x-block') ? { kind: 'reject', code: 550, text: '5.7.1 Blocked by policy' } : undefined);
      const c = await session(srv);
      const reply = await sendMail(c, 'a@else.org', ['b@else.org'], 'X-Block: yes\r\n\r\nx\r\n');
      assert.equal(reply.code, 550);
      assert.equal((await sendMail(c, 'a@else.org', ['b@else.org'], 'Subject: fine\r\n\r\nx\r\n')).code, 250);
      c.close();
    } finally {
      await srv.stop();
    }
  });

  test('bareLineEndings: reject refuses bare LF with 554 5.6.0', async () => {
    const srv = await startTestServer((c) => { c.smtp.bareLineEndings = 'reject'; });
    try {
      const c = await session(srv);
      const reply = await sendMail(c, 'a@else.org', ['b@else.org'], 'Subject: x\r\n\r\nbare\nlf\r\n');
      assert.equal(reply.code, 554);
      assert.match(reply.text, /5\.6\.0/);
      c.close();
    } finally {
      await srv.stop();
    }
  });
});
