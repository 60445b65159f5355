// Interop with swaks, a real SMTP client: plain, STARTTLS, PIPELINING and 8-bit content. After each
// delivery the message must be in the recipient's Inbox and the sender's Sent folder with exactly the
// bytes swaks sent, and nowhere else.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeTempDir, startPostern, type PosternServer } from './harness.ts';
import { assertDelivered, describeDiff, sentContent, swaks } from './swaks.ts';

const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';

let server: PosternServer;
const tmp = makeTempDir('postern-swaks-');

before(async () => {
  server = await startPostern({ name: 'swaks' });
  await Promise.all([server.addUser('alice', [ALICE]), server.addUser('bob', [BOB]), server.addUser('carol', [CAROL])]);
});

after(async () => {
  await server?.stop().catch(() => undefined);
  tmp.cleanup();
});

function smtpAddr(): string {
  return `127.0.0.1:${server.smtpPort}`;
}

const markers: string[] = [];

/** Checks the archive after bob -> alice: alice/Inbox and bob/Sent hold exactly `expected`. */
async function assertArchived(marker: string, expected: Buffer): Promise<void> {
  markers.push(marker);
  const inbox = await server.waitForMessage('alice', 'Inbox', marker);
  assert.equal(inbox.from.includes(BOB), true, `alice/Inbox row's FROM should name ${BOB}: ${JSON.stringify(inbox)}`);
  // Each CLI call starts a Node process (~0.6 s), so independent look-ups run side by side.
  const [got, sentRows] = await Promise.all([server.get('alice', inbox.uid, 'Inbox'), server.list('bob', 'Sent')]);
  assert.ok(got.equals(expected), `alice/Inbox UID ${inbox.uid} differs from what swaks sent: ${describeDiff(got, expected)}`);
  const sent = sentRows.filter((r) => r.subject.includes(marker));
  assert.equal(sent.length, 1, `bob/Sent must hold the message exactly once: ${JSON.stringify(sentRows)}`);
  const gotSent = await server.get('bob', sent[0]!.uid, 'Sent');
  assert.ok(gotSent.equals(expected), `bob/Sent UID ${sent[0]!.uid} differs from what swaks sent: ${describeDiff(gotSent, expected)}`);
}

test('plain SMTP: archived byte-exact in the recipient Inbox and the sender Sent', async () => {
  await server.diagnose('swaks-plain', async () => {
    const marker = `plain-${randomUUID()}`;
    const res = await swaks(['--server', smtpAddr(), '--from', BOB, '--to', ALICE, '--header', `Subject: swaks ${marker}`]);
    assertDelivered(res);
    assert.match(res.transcript, /^<-  250[- ]STARTTLS\s*$/m, 'EHLO must advertise STARTTLS');
    for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE', 'DSN']) {
      assert.match(res.transcript, new RegExp(`^<-  250[- ]${ext}\\b`, 'm'), `EHLO must advertise ${ext}`);
    }
    const expected = sentContent(res.transcript);
    assert.ok(expected.includes(marker), 'the sent content carries the marker');
    await assertArchived(marker, expected);
  });
});

test('STARTTLS (--tls): TLS is negotiated and the message is archived byte-exact', async () => {
  await server.diagnose('swaks-tls', async () => {
    const marker = `tls-${randomUUID()}`;
    const res = await swaks(['--server', smtpAddr(), '--tls', '--from', BOB, '--to', ALICE, '--header', `Subject: swaks ${marker}`]);
    assertDelivered(res);
    assert.match(res.transcript, /^=== TLS started with cipher /m, `TLS was not started:\n${res.transcript}`);
    assert.match(res.transcript, /^ ~> MAIL FROM:<bob@example\.test>/m, 'the transaction must run inside TLS');
    await assertArchived(marker, sentContent(res.transcript));
  });
});

test('PIPELINING (--pipeline): MAIL, RCPT and DATA go in one batch and the message is archived byte-exact', async () => {
  await server.diagnose('swaks-pipelining', async () => {
    const marker = `pipe-${randomUUID()}`;
    const res = await swaks(['--server', smtpAddr(), '--pipeline', '--from', BOB, '--to', ALICE, '--header', `Subject: swaks ${marker}`]);
    assertDelivered(res);
    // With pipelining swaks writes the three commands before reading any reply.
    assert.match(res.transcript, /^ -> MAIL FROM:<bob@example\.test>\r?\n -> RCPT TO:<alice@example\.test>\r?\n -> DATA\r?\n<-  250 /m, `commands were not pipelined:\n${res.transcript}`);
    await assertArchived(marker, sentContent(res.transcript));
  });
});

test('8-bit header and body from a --data file, with a dot-stuffed line: archived byte-exact', async () => {
  await server.diagnose('swaks-8bit', async () => {
    const marker = `8bit-${randomUUID()}`;
    // Raw UTF-8 in headers and body, one raw Latin-1 byte (not valid UTF-8), and a line starting
    // with "." that swaks must dot-stuff and Postern must unstuff.
    const message = Buffer.concat([
      Buffer.from(
        [
          `From: =?UTF-8?Q?Bj=C3=B6rn?= <${BOB}>`,
          `To: Zoë Ærø <${ALICE}>`,
          `Subject: Grüße ✓ ${marker}`,
          `Message-ID: <${marker}@interop.test>`,
          'Date: Sun, 22 Nov 2026 08:00:00 +0000',
          'MIME-Version: 1.0',
          'Content-Type: text/plain; charset=utf-8',
          'Content-Transfer-Encoding: 8bit',
          '',
          'Ünïcödé body — 日本語 ✉',
          '.a line that starts with a dot',
          'raw latin-1 byte: ',
        ].join('\r\n'),
        'utf8',
      ),
      Buffer.from([0xe9]),
      // No final line break: swaks always ends the content with CRLF before the "." itself.
      Buffer.from(`\r\n\r\nend ${marker}`, 'utf8'),
    ]);
    const expected = Buffer.concat([message, Buffer.from('\r\n')]);
    const file = join(tmp.path, `${marker}.eml`);
    writeFileSync(file, message);
    const res = await swaks(['--server', smtpAddr(), '--from', BOB, '--to', ALICE, '--data', `@${file}`]);
    assertDelivered(res);
    assert.match(res.transcript, /^ -> \.\.a line that starts with a dot$/m, 'swaks must dot-stuff the line');
    const transcriptBytes = sentContent(res.transcript);
    assert.ok(transcriptBytes.equals(expected), `swaks sent something other than the file + CRLF: ${describeDiff(transcriptBytes, expected)}`);
    await assertArchived(marker, expected);
    const row = await server.waitForMessage('alice', 'Inbox', marker);
    assert.ok(row.subject.includes('Grüße ✓'), `archive list shows the 8-bit subject decoded as UTF-8: ${JSON.stringify(row)}`);
  });
});

test("a hostile address header (swaks --header 'Cc: )') is answered 250 and archived byte-exact; the server keeps serving", async () => {
  await server.diagnose('swaks-hostile-cc', async () => {
    // Once an endless loop in the IMAP address parser that grew memory until V8 aborted, at every start.
    const marker = `hostile-${randomUUID()}`;
    const res = await swaks(['--server', smtpAddr(), '--from', BOB, '--to', ALICE, '--header', 'Cc: )', '--header', `Subject: swaks ${marker}`]);
    assertDelivered(res);
    await assertArchived(marker, sentContent(res.transcript));
    const status = await server.waitDrained();
    assert.equal(status.intake.corrupt, 0, `nothing quarantined: ${JSON.stringify(status.intake)}`);
  });
});

test('routing is exact: no copy in alice/Sent, bob/Inbox or anywhere for carol', async () => {
  await server.diagnose('swaks-routing', async () => {
    assert.equal(markers.length, 5, 'the five delivery tests ran first');
    const folders = [['alice', 'Sent'], ['bob', 'Inbox'], ['carol', 'Inbox'], ['carol', 'Sent']] as const;
    const [inbox, sent, ...others] = await Promise.all([
      server.list('alice', 'Inbox'),
      server.list('bob', 'Sent'),
      ...folders.map(([u, f]) => server.list(u, f)),
    ]);
    assert.equal(inbox.length, 5, `alice/Inbox holds exactly the 5 messages: ${JSON.stringify(inbox)}`);
    assert.equal(sent.length, 5, `bob/Sent holds exactly the 5 messages: ${JSON.stringify(sent)}`);
    others.forEach((rows, i) => {
      assert.deepEqual(rows, [], `${folders[i]!.join('/')} must be empty`);
    });
    const status = await server.waitDrained();
    assert.equal(status.archive.messages, 5, `status --json counts 5 archived messages: ${JSON.stringify(status)}`);
  });
});

test('SIGTERM shuts the server down gracefully with exit code 0', async () => {
  const code = await server.stop();
  assert.equal(code, 0);
});
