// Blobs at rest: compressed by default and, with storage.encryptionKeyFile, sealed with AES-256-GCM —
// the message bytes never appear in the database files (metadata such as the subject stays readable
// for listings), and reads return the original bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { startTestServer, readAll } from '../helpers/test-server.ts';

const MARKER = 'plaintext-marker-7f3a';
const body = `Subject: ${MARKER}\r\n\r\n${`${MARKER} line of text that compresses well\r\n`.repeat(200)}`;

async function archiveOnce(configure: Parameters<typeof startTestServer>[0]): Promise<{ files: Buffer; roundTrip: Buffer }> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-rest-'));
  try {
    const srv = await startTestServer(configure, dir);
    await srv.archive.addUser({ name: 'alice', addresses: ['alice@example.com'] });
    const c = await SmtpClient.open(srv.smtpPort);
    await c.read();
    await c.cmd('EHLO t');
    assert.equal((await sendMail(c, 'x@else.org', ['alice@example.com'], body)).code, 250);
    c.close();
    await srv.settle();
    const [entry] = await srv.archive.listEntries('alice', 'Inbox');
    const msg = await srv.archive.getMessage(entry?.messageId ?? '');
    const roundTrip = await readAll(await srv.archive.openBlob(msg?.blobId ?? ''));
    await srv.running.shutdown('test');
    const archiveDir = join(dir, 'archive');
    const files = Buffer.concat(readdirSync(archiveDir).map((f) => readFileSync(join(archiveDir, f))));
    return { files, roundTrip };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('with no codec the text is in the database files (the check below can see it)', async () => {
  const { files, roundTrip } = await archiveOnce((c) => { c.storage.compression.codec = 'none'; });
  assert.equal(roundTrip.toString(), body);
  assert.ok(files.includes(`${MARKER} line of text`));
});

test('compressed by default: the stored bytes are smaller and the text is not there verbatim', async () => {
  const { files, roundTrip } = await archiveOnce(() => undefined);
  assert.equal(roundTrip.toString(), body);
  assert.equal(files.indexOf(`${MARKER} line of text that compresses well\r\n${MARKER}`), -1);
});

test('encrypted with a key file: reads return the original bytes; a malformed key file stops the start', async () => {
  const keyDir = mkdtempSync(join(tmpdir(), 'postern-key-'));
  try {
    const keyFile = join(keyDir, 'blob.key');
    writeFileSync(keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    const { files, roundTrip } = await archiveOnce((c) => { c.storage.compression.codec = 'none'; c.storage.encryptionKeyFile = keyFile; });
    assert.equal(roundTrip.toString(), body);
    // Metadata (subject, addresses) stays readable for listing; the message bytes are sealed.
    assert.equal(files.indexOf(`${MARKER} line of text`), -1, 'no message text in the database files');
    writeFileSync(keyFile, 'not a key\n');
    await assert.rejects(startTestServer((c) => { c.storage.encryptionKeyFile = keyFile; }), /must hold 64 hex characters/);
  } finally {
    rmSync(keyDir, { recursive: true, force: true });
  }
});
