// The dedup plugin end to end: copies of one mail through different hubs become one message (merged
// recipients, one blob), different mails stay apart, simultaneous copies on two connections merge,
// and the Bloom filter is saved at shutdown and reloaded (not rebuilt) at the next start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SmtpClient, sendMail } from '../../helpers/smtp-client.ts';
import { startTestServer, type TestServer } from '../../helpers/test-server.ts';

const mail = (hub: string, body = 'Quarterly numbers attached.\r\n'): string =>
  `Received: from ${hub}.example.com by mx.example.com; Mon, 3 Jun 2024 10:00:00 +0000\r\nReturn-Path: <b-${hub}@example.com>\r\n` +
  `From: carol@else.org\r\nTo: alice@example.com, bob@example.com\r\nSubject: Numbers\r\nDate: Mon, 3 Jun 2024 09:59:00 +0000\r\nMessage-ID: <n1@else.org>\r\n\r\n${body}`;

async function send(srv: TestServer, rcpt: string, data: string): Promise<void> {
  const c = await SmtpClient.open(srv.smtpPort);
  await c.read();
  await c.cmd('EHLO hub.example.com');
  assert.equal((await sendMail(c, 'carol@else.org', [rcpt], data)).code, 250);
  c.close();
}

/** Run fn against a server with dedup on; the data directory is removed afterwards unless kept. */
async function withDedup(fn: (srv: TestServer) => Promise<void>, dataDir?: string, keep = false): Promise<TestServer> {
  const srv = await startTestServer((c) => { c.plugins = [{ name: 'dedup', config: {} }]; }, dataDir);
  if (!(await srv.archive.getUser('alice'))) {
    await srv.archive.addUser({ name: 'alice', addresses: ['alice@example.com'] });
    await srv.archive.addUser({ name: 'bob', addresses: ['bob@example.com'] });
  }
  try {
    await fn(srv);
  } finally {
    await srv.running.shutdown('test');
    if (!keep) rmSync(srv.dataDir, { recursive: true, force: true });
  }
  return srv;
}

test('copies through two hubs are one message filed for each recipient, with one blob; a different body is another message', async () => {
  await withDedup(async (srv) => {
    await send(srv, 'alice@example.com', mail('hub-a'));
    await srv.settle();
    await send(srv, 'bob@example.com', mail('hub-b'));
    await srv.settle();
    const stats = await srv.archive.stats();
    assert.equal(stats.messages, 1);
    assert.equal(stats.blobs, 1, 'the merged copy stores no second blob');
    const [a] = await srv.archive.listEntries('alice', 'Inbox');
    const [b] = await srv.archive.listEntries('bob', 'Inbox');
    assert.equal(a?.messageId, b?.messageId);
    assert.equal((await srv.archive.getMessage(a?.messageId ?? ''))?.captures.length, 2);
    await send(srv, 'bob@example.com', mail('hub-c', 'Quarterly numbers attached!\r\n'));
    await srv.settle();
    assert.equal((await srv.archive.stats()).messages, 2, 'one changed byte in the body is another message');
    const metrics = await srv.running.app.service('metrics').registry.metrics();
    assert.match(metrics, /^postern_dedup_duplicates_total 1$/m);
  });
});

test('two copies arriving at the same moment on two connections become one message', async () => {
  await withDedup(async (srv) => {
    await Promise.all([send(srv, 'alice@example.com', mail('hub-x')), send(srv, 'bob@example.com', mail('hub-y'))]);
    await srv.settle();
    const stats = await srv.archive.stats();
    assert.equal(stats.messages, 1);
    assert.equal(stats.entries, 2);
  });
});

test('the filter is saved at shutdown and loaded, not rebuilt, at the next start', async () => {
  const first = await withDedup(async (srv) => {
    await send(srv, 'alice@example.com', mail('hub-a'));
    await srv.settle();
  }, undefined, true);
  assert.ok(existsSync(join(first.dataDir, 'dedup-bloom.json')));
  const second = await withDedup(async (srv) => {
    for (let i = 0; i < 100 && !srv.logs.some((l) => l.msg === 'Dedup filter loaded'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(srv.logs.some((l) => l.msg === 'Dedup filter loaded'), 'loaded from the file');
    await send(srv, 'bob@example.com', mail('hub-b'));
    await srv.settle();
    assert.equal((await srv.archive.stats()).messages, 1, 'the copy merged after a restart');
  }, first.dataDir);
  assert.equal(second.dataDir, first.dataDir);
});
