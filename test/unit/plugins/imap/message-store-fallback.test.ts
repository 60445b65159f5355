// A stored message whose IMAP data cannot be computed (its analysis exceeds the budget or fails) is
// served as one text/plain part of its CRLF view instead of being parsed on the main thread, and the
// fallback is not stored (a later upgrade may compute the real structure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { KvArchiveStore } from '../../../../core/storage/kv-archive.ts';
import { RocksEngine } from '../../../../core/storage/rocksdb-engine.ts';
import { PosternError } from '../../../../core/errors.ts';
import { MessageStore } from '../../../../plugins/imap/message-store.ts';

test('a message that cannot be analysed is served as one text/plain part, sizes of its CRLF view', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-fallback-'));
  const archive = new KvArchiveStore(new RocksEngine(join(dir, 'archive')));
  await archive.open();
  try {
    await archive.addUser({ name: 'alice', addresses: [] });
    const bytes = Buffer.from('Subject: hostile\nCc: )\n\nline one\nline two\n');
    await archive.commit({
      capture: { id: 'c1', listener: 'test', receivedAt: new Date().toISOString(), mailFrom: '', rcptTo: [], client: '127.0.0.1', helo: 't' },
      messageId: 'm1',
      summary: { date: null, from: '', to: '', cc: '', subject: '', messageIdHeader: null },
      blob: { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, open: () => Readable.from([bytes]) },
      fileInto: [{ user: 'alice', folder: 'Inbox' }],
      identities: [],
    });
    const errors: string[] = [];
    let computeCalls = 0;
    const store = new MessageStore(archive, 100, 1 << 20, () => undefined, () => {
      computeCalls++;
      return Promise.reject(new PosternError('MESSAGE_BUDGET', 'Analysing the message took longer than 60000 ms'));
    }, (_id, err) => errors.push(String(err)));
    const loaded = await store.load('m1');
    assert.ok(loaded);
    const viewSize = bytes.length + 5; // five bare LFs read as CRLF
    assert.equal(loaded.data.size, viewSize);
    assert.equal(loaded.data.headerSize, 0);
    assert.equal(loaded.data.bodystructure, `("text" "plain" NIL NIL NIL "7bit" ${viewSize} 5 NIL NIL NIL NIL)`);
    assert.equal(loaded.data.envelope, '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)');
    assert.equal(computeCalls, 1);
    assert.match(errors[0] ?? '', /longer than/);
    assert.equal((await archive.getMessage('m1'))?.attributes?.imap, undefined, 'the fallback is not stored');
  } finally {
    await archive.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
