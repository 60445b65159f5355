// The indexer extracts the next batch while the writer stores the previous one: every entry ends up
// indexed, writes stay in UID order (the cursor only moves forward), and a failed write stops the pass
// without an unhandled rejection; the next pass goes on from the last batch that was written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { IndexDb } from '../../../../plugins/search/index-db.ts';
import { inProcessWrites, type IndexWrites } from '../../../../plugins/search/index-writer.ts';
import { Indexer, type IndexerDeps } from '../../../../plugins/search/indexer.ts';
import type { ExtractedText } from '../../../../plugins/search/extract.ts';
import type { ArchiveEntry, ArchiveStore, MessageRecord } from '../../../../core/storage/types.ts';
import type { Logger } from '../../../../core/log.ts';

const MESSAGES = 40;
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function entry(uid: number): ArchiveEntry {
  return { user: 'u', folder: 'INBOX', uid, messageId: `m${uid}`, internalDate: '2026-01-01T00:00:00.000Z', size: 10, date: '2026-01-01T00:00:00.000Z', from: 'a@b.test', subject: `s${uid}` };
}

/** Just what the indexer reads of the archive: one folder of MESSAGES entries. */
function archive(): ArchiveStore {
  const entries = Array.from({ length: MESSAGES }, (_, i) => entry(i + 1));
  const fake = {
    folders: async () => [{ user: 'u', folder: 'INBOX', uidValidity: 1, uidNext: MESSAGES + 1, messages: MESSAGES }],
    listEntries: async (_u: string, _f: string, o?: { afterUid?: number; limit?: number }) => entries.filter((e) => e.uid > (o?.afterUid ?? 0)).slice(0, o?.limit ?? 1000),
    getMessage: async (id: string): Promise<MessageRecord> => ({
      id, blobId: `b-${id}`, size: 10, archivedAt: '2026-01-01T00:00:00.000Z', captures: [], flags: [],
      date: '2026-01-01T00:00:00.000Z', from: 'a@b.test', to: 'c@d.test', cc: '', subject: `subject ${id}`, messageIdHeader: null,
    } as unknown as MessageRecord),
    openBlob: async () => Readable.from([Buffer.from('0123456789')]),
  };
  return fake as unknown as ArchiveStore;
}

function text(): ExtractedText {
  return { head: 'h', rawhdr: 'r', body: 'body words', sender: 'a@b.test', rcpt_to: 'c@d.test', rcpt_cc: '', rcpt_bcc: '', subject: 's', attachment: '', hasAttachment: false, complete: true, attachmentFailures: [] };
}

const errors: string[] = [];
const log: Logger = {
  debug: () => undefined, info: () => undefined, warn: () => undefined,
  error: (m, f) => errors.push(`${m} ${JSON.stringify(f ?? {})}`),
  child: () => log,
};

function setup(writes: (db: IndexDb) => IndexWrites, extract: IndexerDeps['extract']): { db: IndexDb; indexer: Indexer; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-indexer-'));
  const db = new IndexDb(dir);
  const indexer = new Indexer({
    archive: archive(), db, writes: writes(db), log, extract,
    archives: async () => ['u'], intakeDepth: async () => 0, onIndexed: () => undefined, onFailure: () => undefined,
  }, { batch: 6, concurrency: 2, maxMessageBytes: 1_000_000, intervalSeconds: 3600, yieldToIntakeAbove: 100 });
  return { db, indexer, done: () => { db.close(); rmSync(dir, { recursive: true, force: true }); } };
}

test('the next batch is extracted while the previous one is written; all entries indexed in UID order', async () => {
  let writing = 0;
  let extractedDuringWrite = 0;
  const throughs: number[] = [];
  const { db, indexer, done } = setup((d) => {
    const w = inProcessWrites(d);
    return {
      ...w,
      write: async (...a) => {
        writing++;
        try {
          await delay(15);
          throughs.push(a[4]);
          await w.write(...a);
        } finally {
          writing--;
        }
      },
    };
  }, async () => {
    if (writing > 0) extractedDuringWrite++;
    await delay(1);
    return text();
  });
  try {
    indexer.wake();
    await indexer.idle();
    assert.deepEqual(errors, []);
    assert.equal(db.cursor('u', 'INBOX'), MESSAGES);
    assert.deepEqual(db.entryUids('u', 'INBOX', 0, 1000), Array.from({ length: MESSAGES }, (_, i) => i + 1));
    assert.deepEqual(throughs, [...throughs].sort((a, b) => a - b), 'writes in UID order');
    assert.equal(new Set(throughs).size, throughs.length, 'each batch written once');
    assert.ok(extractedDuringWrite > 0, 'extraction overlapped a write');
  } finally {
    await indexer.close();
    done();
  }
});

test('a failed write stops the pass without an unhandled rejection; the next pass resumes after the last written batch', async () => {
  let calls = 0;
  let failing = true;
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown): void => {
    unhandled.push(err);
  };
  process.on('unhandledRejection', onUnhandled);
  errors.length = 0;
  const { db, indexer, done } = setup((d) => {
    const w = inProcessWrites(d);
    return {
      ...w,
      write: async (...a) => {
        calls++;
        if (failing && calls === 2) {
          await delay(5);
          throw new Error('disk full');
        }
        await w.write(...a);
      },
    };
  }, async () => {
    // Extraction slower than the failing write: the failure happens while the next batch is prepared.
    await delay(3);
    return text();
  });
  try {
    indexer.wake();
    await indexer.idle();
    await delay(20);
    assert.deepEqual(unhandled, []);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0] as string, /disk full/);
    assert.equal(db.cursor('u', 'INBOX'), 6, 'only the first batch was written');
    failing = false;
    indexer.wake();
    await indexer.idle();
    assert.equal(db.cursor('u', 'INBOX'), MESSAGES);
    assert.equal(db.entryUids('u', 'INBOX', 0, 1000).length, MESSAGES);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await indexer.close();
    done();
  }
});
