// The conformance suite every ArchiveStore backend must pass. It speaks only the interface in types.ts
// (no engine handles, no key encodings), so the same tests hold the embedded and scale-out backends to
// one behaviour. A backend's test file calls runArchiveStoreConformance with a factory for fresh stores.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { blobIdentity } from './types.ts';
import type {
  ArchiveCommit, ArchiveEntry, ArchiveStore, BlobSource, CaptureRecord, FileInto, MessageSummaryFields,
} from './types.ts';

/**
 * A fresh, empty, opened store. `reopen()` is called only after the suite has closed `store`; it opens a
 * new store over the same data and returns it. `cleanup()` closes whatever is still open (closing an
 * already closed store must be harmless) and removes the data.
 */
export interface ConformanceHarness {
  store: ArchiveStore;
  reopen(): Promise<ArchiveStore>;
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;

/** A blob over fixed bytes, streamed in pieces so backends see several reads per blob. */
function blobOf(bytes: Buffer, pieceSize = 64 * 1024): BlobSource {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return {
    sha256,
    size: bytes.length,
    open: () => {
      const pieces: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += pieceSize) pieces.push(bytes.subarray(i, Math.min(i + pieceSize, bytes.length)));
      return Readable.from(pieces);
    },
  };
}

function mailBytes(n: number | string, extra = ''): Buffer {
  return Buffer.from(`From: sender@example.org\r\nTo: alice@example.com\r\nSubject: Message ${n}\r\n\r\nBody ${n}${extra}\r\n`);
}

async function readStream(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

interface CommitSpec {
  n: number | string;
  bytes?: Buffer;
  fileInto: FileInto[];
  captureId?: string;
  messageId?: string;
  mergeInto?: string;
  rcptTo?: string[];
}

function capture(id: string, rcptTo: string[]): CaptureRecord {
  return {
    id, listener: 'smtp', receivedAt: '2024-05-01T10:00:00.000Z', mailFrom: 'sender@example.org', rcptTo,
    client: '192.0.2.10', helo: 'mx.example.org',
  };
}

function summary(n: number | string): MessageSummaryFields {
  return {
    date: '2024-05-01T09:59:00.000Z', from: 'sender@example.org', to: 'alice@example.com', cc: '',
    subject: `Message ${n}`, messageIdHeader: `<m${n}@example.org>`,
  };
}

function commitOf(spec: CommitSpec): ArchiveCommit {
  return {
    capture: capture(spec.captureId ?? `cap-${spec.n}`, spec.rcptTo ?? ['alice@example.com']),
    messageId: spec.messageId ?? `msg-${spec.n}`,
    summary: summary(spec.n),
    blob: blobOf(spec.bytes ?? mailBytes(spec.n)),
    fileInto: spec.fileInto,
    ...(spec.mergeInto !== undefined ? { mergeInto: spec.mergeInto } : {}),
  };
}

const byPlace = (a: { user: string; folder: string }, b: { user: string; folder: string }): number =>
  a.user === b.user ? (a.folder < b.folder ? -1 : a.folder > b.folder ? 1 : 0) : a.user < b.user ? -1 : 1;

const INBOX = (user: string): FileInto => ({ user, folder: 'Inbox' });
const SENT = (user: string): FileInto => ({ user, folder: 'Sent' });

export function runArchiveStoreConformance(name: string, factory: () => Promise<ConformanceHarness>): void {
  async function withStore(fn: (h: ConformanceHarness) => Promise<void>): Promise<void> {
    const h = await factory();
    try {
      await fn(h);
    } finally {
      await h.cleanup();
    }
  }

  async function withUsers(fn: (store: ArchiveStore, h: ConformanceHarness) => Promise<void>): Promise<void> {
    await withStore(async (h) => {
      await h.store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
      await h.store.addUser({ name: 'bob', addresses: ['bob@example.com'] });
      await fn(h.store, h);
    });
  }

  describe(`ArchiveStore conformance: ${name}`, () => {
    describe('users', () => {
      it('owned domains and POP3 logins are identities with exactly one owner', () => withStore(async ({ store }) => {
        const a = await store.addUser({ name: 'alice', addresses: ['alice@example.com'], domains: ['Example.COM'], pop3Users: ['alice.pop'] });
        assert.deepEqual(a.domains, ['example.com']);
        assert.equal(await store.userByDomain('EXAMPLE.com'), 'alice');
        assert.equal(await store.userByPop3User('alice.pop'), 'alice');
        assert.equal(await store.userByPop3User('bob.pop'), null);
        await assert.rejects(store.addUser({ name: 'bob', addresses: [], domains: ['example.com'] }), { name: 'PosternError', code: 'CONFLICT' });
        await assert.rejects(store.addUser({ name: 'bob', addresses: [], pop3Users: ['alice.pop'] }), { name: 'PosternError', code: 'CONFLICT' });
        await assert.rejects(store.addUser({ name: 'bob', addresses: [], domains: ['not a domain'] }), { name: 'PosternError', code: 'INVALID_INPUT' });
      }));

      it('updateUser adds and removes identities atomically; removeUser frees them but keeps the archive', () => withStore(async ({ store }) => {
        await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
        await store.addUser({ name: 'bob', addresses: ['bob@example.com'] });
        const u = await store.updateUser('alice', { addAddresses: ['Ali@Example.com'], removeAddresses: ['ALICE@example.com'], addPop3Users: ['al'] });
        assert.deepEqual(u.addresses, ['Ali@example.com']);
        assert.equal(await store.userByAddress('alice@example.com'), null);
        assert.equal(await store.userByAddress('ali@example.com'), 'alice');
        assert.deepEqual(await store.getUser('alice'), u);
        await assert.rejects(store.updateUser('alice', { addAddresses: ['bob@example.com'] }), { name: 'PosternError', code: 'CONFLICT' });
        await assert.rejects(store.updateUser('alice', { removeAddresses: ['nobody@example.com'] }), { name: 'PosternError', code: 'NOT_FOUND' });
        await assert.rejects(store.updateUser('zed', { addAddresses: ['z@example.com'] }), { name: 'PosternError', code: 'NOT_FOUND' });
        assert.deepEqual((await store.getUser('alice'))?.addresses, ['Ali@example.com'], 'a failed change changes nothing');
        await store.commit(commitOf({ n: 'rm', fileInto: [INBOX('alice')] }));
        await store.removeUser('alice');
        assert.equal(await store.getUser('alice'), null);
        assert.equal(await store.userByAddress('ali@example.com'), null);
        assert.equal(await store.userByPop3User('al'), null);
        assert.equal((await store.listEntries('alice', 'Inbox')).length, 1, 'the archive of a removed user stays');
        await store.addUser({ name: 'carol', addresses: ['ali@example.com'] });
        assert.equal(await store.userByAddress('ali@example.com'), 'carol');
      }));

      it('adds, gets and lists users; unknown names are null', () => withStore(async ({ store }) => {
        const alice = await store.addUser({ name: 'alice', addresses: ['Alice@Example.COM', 'a.smith@example.com'] });
        assert.equal(alice.name, 'alice');
        assert.deepEqual(alice.addresses, ['Alice@example.com', 'a.smith@example.com'], 'domain lower-cased, local part kept as entered');
        assert.deepEqual(alice.domains, []);
        assert.deepEqual(alice.pop3Users, []);
        assert.ok(!Number.isNaN(Date.parse(alice.createdAt)), `createdAt "${alice.createdAt}" is a date`);
        await store.addUser({ name: 'bob', addresses: ['bob@example.com'] });
        assert.deepEqual(await store.getUser('alice'), alice);
        assert.equal(await store.getUser('carol'), null);
        const names = (await store.listUsers()).map((u) => u.name).sort();
        assert.deepEqual(names, ['alice', 'bob']);
      }));

      it('finds the owner of an address case-insensitively', () => withStore(async ({ store }) => {
        await store.addUser({ name: 'alice', addresses: ['Alice@Example.com'] });
        await store.addUser({ name: 'bob', addresses: ['bob@example.com'] });
        assert.equal(await store.userByAddress('alice@example.com'), 'alice');
        assert.equal(await store.userByAddress('ALICE@EXAMPLE.COM'), 'alice');
        assert.equal(await store.userByAddress('BoB@example.com'), 'bob');
        assert.equal(await store.userByAddress('carol@example.com'), null);
      }));

      it('refuses a duplicate user with CONFLICT', () => withStore(async ({ store }) => {
        await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
        await assert.rejects(store.addUser({ name: 'alice', addresses: ['other@example.com'] }), { name: 'PosternError', code: 'CONFLICT' });
        assert.equal(await store.userByAddress('other@example.com'), null);
        assert.equal((await store.listUsers()).length, 1);
      }));

      it('refuses an address owned by another user with CONFLICT and creates nothing', () => withStore(async ({ store }) => {
        await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
        await assert.rejects(store.addUser({ name: 'bob', addresses: ['bob@example.com', 'ALICE@example.com'] }), { name: 'PosternError', code: 'CONFLICT' });
        assert.equal(await store.getUser('bob'), null);
        assert.equal(await store.userByAddress('bob@example.com'), null);
        assert.equal(await store.userByAddress('alice@example.com'), 'alice');
        assert.equal((await store.stats()).users, 1);
      }));

      it('refuses concurrent users claiming one address: exactly one wins', () => withStore(async ({ store }) => {
        const results = await Promise.allSettled([
          store.addUser({ name: 'alice', addresses: ['shared@example.com'] }),
          store.addUser({ name: 'bob', addresses: ['shared@example.com'] }),
        ]);
        assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
        const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        assert.equal((rejected?.reason as { code?: unknown }).code, 'CONFLICT');
        assert.equal((await store.listUsers()).length, 1);
      }));

      it('refuses an invalid user name with INVALID_INPUT', () => withStore(async ({ store }) => {
        for (const bad of ['', 'Alice', 'has space', '.dot', 'x'.repeat(65), 'a/b']) {
          await assert.rejects(store.addUser({ name: bad, addresses: [] }), { name: 'PosternError', code: 'INVALID_INPUT' }, JSON.stringify(bad));
        }
        assert.deepEqual(await store.listUsers(), []);
      }));
    });

    describe('commits and reads', () => {
      it('files a new message into several folders of several users with UIDs from 1, increasing per folder', () => withUsers(async (store) => {
        const first = await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice'), SENT('alice'), INBOX('bob')] }));
        assert.equal(first.messageId, 'msg-1');
        assert.equal(first.alreadyCommitted, false);
        assert.deepEqual([...first.entries].sort(byPlace), [
          { user: 'alice', folder: 'Inbox', uid: 1 }, { user: 'alice', folder: 'Sent', uid: 1 }, { user: 'bob', folder: 'Inbox', uid: 1 },
        ]);
        const second = await store.commit(commitOf({ n: 2, fileInto: [INBOX('alice'), INBOX('bob')] }));
        assert.deepEqual([...second.entries].sort(byPlace), [{ user: 'alice', folder: 'Inbox', uid: 2 }, { user: 'bob', folder: 'Inbox', uid: 2 }]);
        const third = await store.commit(commitOf({ n: 3, fileInto: [SENT('alice')] }));
        assert.deepEqual(third.entries, [{ user: 'alice', folder: 'Sent', uid: 2 }]);
        assert.equal(await store.captureCommitted('cap-1'), 'msg-1');
        assert.equal(await store.captureCommitted('cap-3'), 'msg-3');
        assert.equal(await store.captureCommitted('cap-unknown'), null);
      }));

      it('reports folders with uidValidity, uidNext and message counts', () => withUsers(async (store) => {
        // Starts with a character outside the BMP: a backend must not assume names sort below U+FFFF.
        const odd = '😀 Ünïcode/Archiv';
        await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice'), SENT('alice')] }));
        await store.commit(commitOf({ n: 2, fileInto: [INBOX('alice'), { user: 'alice', folder: odd }] }));
        await store.commit(commitOf({ n: 3, fileInto: [INBOX('alice')] }));
        const folders = (await store.folders('alice')).sort((a, b) => (a.folder < b.folder ? -1 : 1));
        assert.deepEqual(folders.map((f) => [f.user, f.folder, f.uidNext, f.messages]), [
          ['alice', 'Inbox', 4, 3], ['alice', 'Sent', 2, 1], ['alice', odd, 2, 1],
        ]);
        for (const f of folders) assert.ok(Number.isInteger(f.uidValidity) && f.uidValidity >= 1 && f.uidValidity <= 0xffffffff, `uidValidity ${f.uidValidity}`);
        assert.deepEqual((await store.listEntries('alice', odd)).map((e) => e.messageId), ['msg-2']);
        assert.deepEqual(await store.folders('bob'), []);
      }));

      it('lists entries in UID order with afterUid and limit', () => withUsers(async (store) => {
        for (let n = 1; n <= 5; n++) await store.commit(commitOf({ n, fileInto: [INBOX('alice')] }));
        await store.commit(commitOf({ n: 6, fileInto: [SENT('alice'), INBOX('bob')] }));
        const all = await store.listEntries('alice', 'Inbox');
        assert.deepEqual(all.map((e) => [e.uid, e.messageId]), [[1, 'msg-1'], [2, 'msg-2'], [3, 'msg-3'], [4, 'msg-4'], [5, 'msg-5']]);
        const uids = async (options: { afterUid?: number; limit?: number }): Promise<number[]> =>
          (await store.listEntries('alice', 'Inbox', options)).map((e) => e.uid);
        assert.deepEqual(await uids({ afterUid: 2 }), [3, 4, 5]);
        assert.deepEqual(await uids({ limit: 2 }), [1, 2]);
        assert.deepEqual(await uids({ afterUid: 2, limit: 2 }), [3, 4]);
        assert.deepEqual(await uids({ afterUid: 0 }), [1, 2, 3, 4, 5]);
        assert.deepEqual(await uids({ afterUid: 5 }), []);
        assert.deepEqual(await uids({ afterUid: 99 }), []);
        assert.deepEqual((await store.listEntries('alice', 'Sent')).map((e) => e.messageId), ['msg-6']);
        assert.deepEqual(await store.listEntries('alice', 'Nope'), []);
        assert.deepEqual(await store.listEntries('carol', 'Inbox'), []);
      }));

      it('gets one entry with its summary fields; a missing UID is null', () => withUsers(async (store) => {
        const bytes = mailBytes(1);
        await store.commit(commitOf({ n: 1, bytes, fileInto: [INBOX('alice')] }));
        await store.commit(commitOf({ n: 2, fileInto: [INBOX('alice')] }));
        const entry = await store.getEntry('alice', 'Inbox', 1);
        assert.ok(entry);
        const { internalDate, ...rest } = entry;
        assert.deepEqual(rest, {
          user: 'alice', folder: 'Inbox', uid: 1, messageId: 'msg-1', size: bytes.length,
          date: '2024-05-01T09:59:00.000Z', from: 'sender@example.org', subject: 'Message 1',
        } satisfies Omit<ArchiveEntry, 'internalDate'>);
        assert.ok(!Number.isNaN(Date.parse(internalDate)), `internalDate "${internalDate}" is a date`);
        assert.deepEqual(await store.getEntry('alice', 'Inbox', 2), (await store.listEntries('alice', 'Inbox'))[1]);
        assert.equal(await store.getEntry('alice', 'Inbox', 3), null);
        assert.equal(await store.getEntry('alice', 'Inbox', 0), null);
        assert.equal(await store.getEntry('alice', 'Sent', 1), null);
        assert.equal(await store.getEntry('bob', 'Inbox', 1), null);
      }));

      it('keeps the message with its summary, blob id, size and capture (provenance)', () => withUsers(async (store) => {
        const bytes = mailBytes(7);
        const c = commitOf({ n: 7, bytes, fileInto: [INBOX('alice'), INBOX('bob')], rcptTo: ['alice@example.com', 'bob@example.com'] });
        await store.commit(c);
        const m = await store.getMessage('msg-7');
        assert.ok(m);
        assert.equal(m.id, 'msg-7');
        assert.equal(m.blobId, createHash('sha256').update(bytes).digest('hex'));
        assert.equal(m.size, bytes.length);
        assert.deepEqual(
          { date: m.date, from: m.from, to: m.to, cc: m.cc, subject: m.subject, messageIdHeader: m.messageIdHeader },
          summary(7),
        );
        assert.deepEqual(m.captures, [c.capture]);
        assert.ok(!Number.isNaN(Date.parse(m.archivedAt)), `archivedAt "${m.archivedAt}" is a date`);
        assert.equal(await store.getMessage('msg-unknown'), null);
      }));
    });

    describe('blobs', () => {
      it('streams the exact original bytes of a small blob', () => withUsers(async (store) => {
        const bytes = Buffer.concat([mailBytes(1), Buffer.from([0, 0xff, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a, 0x80])]);
        await store.commit(commitOf({ n: 1, bytes, fileInto: [INBOX('alice')] }));
        const m = await store.getMessage('msg-1');
        assert.ok(m);
        const stream = await store.openBlob(m.blobId);
        assert.ok(stream);
        assert.ok((await readStream(stream)).equals(bytes));
      }));

      it('streams the exact bytes of a 2.5 MiB blob spanning several chunks', () => withUsers(async (store) => {
        const bytes = randomBytes(Math.floor(2.5 * MiB));
        const sha = createHash('sha256').update(bytes).digest('hex');
        await store.commit(commitOf({ n: 1, bytes, fileInto: [INBOX('alice')] }));
        const stream = await store.openBlob(sha);
        assert.ok(stream);
        const got = await readStream(stream);
        assert.equal(got.length, bytes.length);
        assert.equal(createHash('sha256').update(got).digest('hex'), sha);
        assert.ok(got.equals(bytes));
        assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 1, entries: 1, blobs: 1, blobBytes: bytes.length });
      }));

      it('streams a blob of exactly 1 MiB and one of 1 MiB + 1 byte', () => withUsers(async (store) => {
        const exact = randomBytes(MiB);
        const over = randomBytes(MiB + 1);
        await store.commit(commitOf({ n: 1, bytes: exact, fileInto: [INBOX('alice')] }));
        await store.commit(commitOf({ n: 2, bytes: over, fileInto: [INBOX('alice')] }));
        for (const bytes of [exact, over]) {
          const stream = await store.openBlob(createHash('sha256').update(bytes).digest('hex'));
          assert.ok(stream);
          assert.ok((await readStream(stream)).equals(bytes));
        }
      }));

      it('stores and streams a 0-byte blob', () => withUsers(async (store) => {
        const empty = Buffer.alloc(0);
        const r = await store.commit(commitOf({ n: 1, bytes: empty, fileInto: [INBOX('alice')] }));
        assert.deepEqual(r.entries, [{ user: 'alice', folder: 'Inbox', uid: 1 }]);
        const m = await store.getMessage('msg-1');
        assert.ok(m);
        assert.equal(m.size, 0);
        assert.equal(m.blobId, createHash('sha256').update(empty).digest('hex'));
        const stream = await store.openBlob(m.blobId);
        assert.ok(stream, 'the empty blob exists');
        assert.equal((await readStream(stream)).length, 0);
        assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 1, entries: 1, blobs: 1, blobBytes: 0 });
      }));

      it('answers null for an unknown blob', () => withStore(async ({ store }) => {
        assert.equal(await store.openBlob(createHash('sha256').update('nothing').digest('hex')), null);
      }));

      it('stores the same bytes once when two messages share them', () => withUsers(async (store) => {
        const bytes = mailBytes('shared');
        await store.commit(commitOf({ n: 1, bytes, fileInto: [INBOX('alice')] }));
        await store.commit(commitOf({ n: 2, bytes, fileInto: [INBOX('bob')] }));
        const [m1, m2] = [await store.getMessage('msg-1'), await store.getMessage('msg-2')];
        assert.ok(m1 && m2);
        assert.equal(m1.blobId, m2.blobId);
        assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 2, entries: 2, blobs: 1, blobBytes: bytes.length });
        const stream = await store.openBlob(m1.blobId);
        assert.ok(stream);
        assert.ok((await readStream(stream)).equals(bytes));
      }));

      it('stores the same bytes once when two messages share them concurrently (small and large)', () => withUsers(async (store) => {
        const small = mailBytes('shared');
        const large = randomBytes(Math.floor(1.5 * MiB));
        await Promise.all([
          store.commit(commitOf({ n: 1, bytes: small, fileInto: [INBOX('alice')] })),
          store.commit(commitOf({ n: 2, bytes: small, fileInto: [INBOX('bob')] })),
          store.commit(commitOf({ n: 3, bytes: large, fileInto: [INBOX('alice')] })),
          store.commit(commitOf({ n: 4, bytes: large, fileInto: [INBOX('bob')] })),
        ]);
        assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 4, entries: 4, blobs: 2, blobBytes: small.length + large.length });
        for (const bytes of [small, large]) {
          const stream = await store.openBlob(createHash('sha256').update(bytes).digest('hex'));
          assert.ok(stream);
          assert.ok((await readStream(stream)).equals(bytes));
        }
      }));
    });

    describe('idempotency and dedup', () => {
      it('flags are kept on the message, merged across captures, counted and listed', () => withUsers(async (store) => {
        await store.commit({ ...commitOf({ n: 'f1', fileInto: [INBOX('alice')] }), flags: ['journal-malformed: no message/rfc822 part'] });
        await store.commit({ ...commitOf({ n: 'f2', fileInto: [INBOX('bob')], captureId: 'cap-f2', mergeInto: 'msg-f1' }), flags: ['journal-malformed: garbled envelope line 3'] });
        await store.commit(commitOf({ n: 'plain', fileInto: [INBOX('alice')] }));
        const m = await store.getMessage('msg-f1');
        assert.deepEqual(m?.flags, ['journal-malformed: no message/rfc822 part', 'journal-malformed: garbled envelope line 3']);
        assert.deepEqual((await store.getMessage('msg-plain'))?.flags, []);
        assert.equal((await store.stats()).flagged, 1);
        const listed = await store.listFlagged();
        assert.deepEqual(listed.map((f) => [f.messageId, f.flags.length, f.subject]), [['msg-f1', 2, 'Message f1']]);
      }));

      it('identity keys merge a copy into the first message with the same bytes, also within one batch', () => withUsers(async (store) => {
        const bytes = mailBytes('twin');
        const [a, b] = await Promise.all([
          store.commit({ ...commitOf({ n: 't1', bytes, fileInto: [INBOX('alice')] }), identities: [blobIdentity(blobOf(bytes).sha256)] }),
          store.commit({ ...commitOf({ n: 't2', bytes, fileInto: [INBOX('bob'), INBOX('alice')] }), identities: [blobIdentity(blobOf(bytes).sha256)] }),
        ]);
        assert.equal(a.messageId, 'msg-t1');
        assert.equal(b.messageId, 'msg-t1', 'the second copy merged into the first');
        assert.deepEqual(b.entries.map((e) => e.user), ['bob'], 'alice already holds it');
        const later = await store.commit({ ...commitOf({ n: 't3', bytes, fileInto: [INBOX('bob')] }), identities: [blobIdentity(blobOf(bytes).sha256)] });
        assert.equal(later.messageId, 'msg-t1');
        assert.deepEqual(later.entries, []);
        assert.equal((await store.getMessage('msg-t1'))?.captures.length, 3);
        const other = await store.commit({ ...commitOf({ n: 't4', fileInto: [INBOX('bob')] }), identities: [blobIdentity(blobOf(mailBytes('t4')).sha256)] });
        assert.equal(other.messageId, 'msg-t4', 'different bytes make a new message');
        const stats = await store.stats();
        assert.equal(stats.messages, 2);
        assert.equal(stats.blobs, 2);
      }));

      it('messageByIdentity finds the message that claimed an identity; merges claim new keys too', () => withUsers(async (store) => {
        await store.commit({ ...commitOf({ n: 'b1', fileInto: [INBOX('alice')] }), identities: ['k:one'] });
        const copy = await store.commit({ ...commitOf({ n: 'b2', fileInto: [INBOX('bob')] }), identities: ['k:two', 'k:one'] });
        assert.equal(copy.messageId, 'msg-b1', 'merged by the shared key');
        assert.equal(await store.messageByIdentity('k:one'), 'msg-b1');
        assert.equal(await store.messageByIdentity('k:two'), 'msg-b1', 'the merged copy taught the message a new key');
        assert.equal(await store.messageByIdentity('k:none'), null);
        const listed: string[] = [];
        for await (const id of store.listIdentities('k:')) listed.push(id);
        assert.deepEqual(listed, ['k:one', 'k:two']);
      }));

      it('commits the same capture id once: a replay reports alreadyCommitted and changes nothing', () => withUsers(async (store) => {
        const c = commitOf({ n: 1, fileInto: [INBOX('alice'), INBOX('bob')] });
        const first = await store.commit(c);
        const before = await store.stats();
        const again = await store.commit(c);
        assert.deepEqual(again, { messageId: 'msg-1', entries: [], alreadyCommitted: true });
        // A replay under a different message id and other folders is still the same capture.
        const other = await store.commit({ ...commitOf({ n: 2, fileInto: [SENT('alice')] }), capture: c.capture });
        assert.deepEqual(other, { messageId: 'msg-1', entries: [], alreadyCommitted: true });
        assert.deepEqual(await store.stats(), before);
        assert.equal(first.entries.length, 2);
        assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => e.uid), [1]);
        assert.deepEqual(await store.listEntries('alice', 'Sent'), []);
        assert.equal(await store.getMessage('msg-2'), null);
        assert.equal((await store.getMessage('msg-1'))?.captures.length, 1);
        assert.deepEqual((await store.folders('alice')).map((f) => [f.folder, f.uidNext, f.messages]), [['Inbox', 2, 1]]);
      }));

      it('commits the same capture id once when both commits run concurrently', () => withUsers(async (store) => {
        const c = commitOf({ n: 1, fileInto: [INBOX('alice')] });
        const results = await Promise.all([store.commit(c), store.commit(c), store.commit(c)]);
        assert.deepEqual(results.map((r) => r.alreadyCommitted).sort(), [false, true, true]);
        assert.ok(results.every((r) => r.messageId === 'msg-1'));
        assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => e.uid), [1]);
        assert.equal((await store.getMessage('msg-1'))?.captures.length, 1);
        assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 1, entries: 1, blobs: 1, blobBytes: mailBytes(1).length });
      }));

      it('merges a capture into an existing message, filing it only where it is not yet held', () => withUsers(async (store) => {
        const original = mailBytes(1);
        const c1 = commitOf({ n: 1, bytes: original, fileInto: [INBOX('alice')] });
        await store.commit(c1);
        await store.commit(commitOf({ n: 2, fileInto: [INBOX('bob')] }));
        const before = await store.stats();
        // The same mail journaled again: other transport headers, so other bytes; dedup found msg-1.
        const copy = Buffer.concat([Buffer.from('Received: from relay.example.net\r\n'), original]);
        const c2 = commitOf({
          n: 'copy', bytes: copy, captureId: 'cap-copy', messageId: 'msg-copy', mergeInto: 'msg-1',
          fileInto: [INBOX('alice'), INBOX('bob'), SENT('alice')], rcptTo: ['bob@example.com'],
        });
        const r = await store.commit(c2);
        assert.equal(r.messageId, 'msg-1');
        assert.equal(r.alreadyCommitted, false);
        assert.deepEqual([...r.entries].sort(byPlace), [{ user: 'alice', folder: 'Sent', uid: 1 }, { user: 'bob', folder: 'Inbox', uid: 2 }]);
        const m = await store.getMessage('msg-1');
        assert.ok(m);
        assert.deepEqual(m.captures, [c1.capture, c2.capture]);
        assert.equal(m.blobId, c1.blob.sha256);
        assert.equal(m.size, original.length);
        assert.equal(await store.getMessage('msg-copy'), null);
        assert.equal(await store.captureCommitted('cap-copy'), 'msg-1');
        assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => [e.uid, e.messageId]), [[1, 'msg-1']]);
        assert.deepEqual((await store.listEntries('bob', 'Inbox')).map((e) => [e.uid, e.messageId]), [[1, 'msg-2'], [2, 'msg-1']]);
        assert.deepEqual(await store.stats(), { ...before, entries: before.entries + 2 });

        // A further copy for folders that all hold it already: a capture, no entries.
        const c3 = commitOf({ n: 'copy2', bytes: original, captureId: 'cap-copy2', mergeInto: 'msg-1', fileInto: [INBOX('alice'), SENT('alice')] });
        const r3 = await store.commit(c3);
        assert.deepEqual(r3, { messageId: 'msg-1', entries: [], alreadyCommitted: false });
        assert.equal((await store.getMessage('msg-1'))?.captures.length, 3);
        assert.deepEqual(await store.stats(), { ...before, entries: before.entries + 2 });
        const stream = await store.openBlob(m.blobId);
        assert.ok(stream);
        assert.ok((await readStream(stream)).equals(original));
      }));

      it('merges concurrent copies of a new message without filing it twice', () => withUsers(async (store) => {
        const bytes = mailBytes(1);
        await store.commit(commitOf({ n: 1, bytes, fileInto: [INBOX('alice')] }));
        const copies = [2, 3, 4].map((k) => commitOf({ n: k, bytes, captureId: `cap-copy-${k}`, mergeInto: 'msg-1', fileInto: [INBOX('alice'), INBOX('bob')] }));
        const results = await Promise.all(copies.map((c) => store.commit(c)));
        assert.deepEqual(results.flatMap((r) => r.entries), [{ user: 'bob', folder: 'Inbox', uid: 1 }]);
        assert.deepEqual((await store.listEntries('bob', 'Inbox')).map((e) => e.messageId), ['msg-1']);
        assert.deepEqual((await store.listEntries('alice', 'Inbox')).map((e) => e.messageId), ['msg-1']);
        assert.equal((await store.getMessage('msg-1'))?.captures.length, 4);
        assert.deepEqual(await store.stats(), { users: 2, flagged: 0, messages: 1, entries: 2, blobs: 1, blobBytes: bytes.length });
      }));

      it('files a message once when fileInto names the same user and folder twice', () => withUsers(async (store) => {
        const r = await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice'), INBOX('alice'), { user: 'alice', folder: 'Inbox' }] }));
        assert.deepEqual(r.entries, [{ user: 'alice', folder: 'Inbox', uid: 1 }]);
        assert.equal((await store.listEntries('alice', 'Inbox')).length, 1);
        assert.deepEqual((await store.folders('alice')).map((f) => [f.folder, f.uidNext, f.messages]), [['Inbox', 2, 1]]);
        assert.equal((await store.stats()).entries, 1);
      }));
    });

    describe('concurrency and durability', () => {
      it('gives 50 concurrent commits into one folder the UIDs 1..50, each once, listed in UID order', () => withUsers(async (store) => {
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.commit(commitOf({ n: i + 1, fileInto: [INBOX('alice')] }))));
        const uidOf = new Map<string, number>();
        for (const r of results) {
          assert.equal(r.entries.length, 1);
          const e = r.entries[0];
          assert.ok(e);
          assert.equal(e.folder, 'Inbox');
          uidOf.set(r.messageId, e.uid);
        }
        assert.deepEqual([...uidOf.values()].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
        const listed = await store.listEntries('alice', 'Inbox');
        assert.deepEqual(listed.map((e) => e.uid), Array.from({ length: 50 }, (_, i) => i + 1));
        for (const e of listed) assert.equal(uidOf.get(e.messageId), e.uid, `entry ${e.uid} points at the message that was given it`);
        assert.deepEqual((await store.folders('alice')).map((f) => [f.folder, f.uidNext, f.messages]), [['Inbox', 51, 50]]);
        assert.equal((await store.stats()).entries, 50);
      }));

      it('keeps data and UID counters across close and reopen', () => withStore(async (h) => {
        const store = h.store;
        const alice = await store.addUser({ name: 'alice', addresses: ['Alice@example.com'] });
        const big = randomBytes(Math.floor(2.5 * MiB));
        await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice'), SENT('alice')] }));
        await store.commit(commitOf({ n: 2, bytes: big, fileInto: [INBOX('alice')] }));
        await store.commit(commitOf({ n: 3, fileInto: [INBOX('alice')] }));
        const folders = await store.folders('alice');
        const entries = await store.listEntries('alice', 'Inbox');
        const message = await store.getMessage('msg-2');
        const stats = await store.stats();
        await store.close();

        const again = await h.reopen();
        assert.deepEqual(await again.getUser('alice'), alice);
        assert.equal(await again.userByAddress('ALICE@EXAMPLE.COM'), 'alice');
        assert.deepEqual(await again.folders('alice'), folders);
        assert.deepEqual(await again.listEntries('alice', 'Inbox'), entries);
        assert.deepEqual(await again.getMessage('msg-2'), message);
        assert.deepEqual(await again.stats(), stats);
        assert.equal(await again.captureCommitted('cap-3'), 'msg-3');
        const stream = await again.openBlob(createHash('sha256').update(big).digest('hex'));
        assert.ok(stream);
        assert.ok((await readStream(stream)).equals(big));

        assert.deepEqual(await again.commit(commitOf({ n: 1, fileInto: [INBOX('alice')] })), { messageId: 'msg-1', entries: [], alreadyCommitted: true });
        const next = await again.commit(commitOf({ n: 4, fileInto: [INBOX('alice'), SENT('alice')] }));
        assert.deepEqual([...next.entries].sort(byPlace), [{ user: 'alice', folder: 'Inbox', uid: 4 }, { user: 'alice', folder: 'Sent', uid: 2 }]);
        const after = await again.folders('alice');
        for (const f of after) {
          const was = folders.find((x) => x.folder === f.folder);
          assert.ok(was);
          assert.equal(f.uidValidity, was.uidValidity, `uidValidity of ${f.folder} unchanged`);
        }
        const fourth = mailBytes(4).length;
        assert.deepEqual(await again.stats(), { ...stats, messages: stats.messages + 1, entries: stats.entries + 2, blobs: stats.blobs + 1, blobBytes: stats.blobBytes + fourth });
      }));

      it('counts users, messages, entries, blobs and blob bytes exactly', () => withStore(async ({ store }) => {
        assert.deepEqual(await store.stats(), { users: 0, flagged: 0, messages: 0, entries: 0, blobs: 0, blobBytes: 0 });
        await store.addUser({ name: 'alice', addresses: ['alice@example.com'] });
        await store.addUser({ name: 'bob', addresses: ['bob@example.com'] });
        await store.addUser({ name: 'carol', addresses: [] });
        assert.deepEqual(await store.stats(), { users: 3, flagged: 0, messages: 0, entries: 0, blobs: 0, blobBytes: 0 });
        const a = mailBytes('a');
        const b = randomBytes(MiB + 17);
        const c1 = commitOf({ n: 1, bytes: a, fileInto: [INBOX('alice'), INBOX('bob')] });
        await store.commit(c1); // +1 message, +2 entries, +1 blob
        await store.commit(commitOf({ n: 2, bytes: b, fileInto: [SENT('alice')] })); // +1, +1, +1
        await store.commit(commitOf({ n: 3, bytes: a, fileInto: [SENT('bob')] })); // +1, +1, same blob
        await store.commit(c1); // replay: nothing
        await store.commit(commitOf({ n: 4, bytes: a, mergeInto: 'msg-2', fileInto: [SENT('alice'), INBOX('carol')] })); // +0, +1
        assert.deepEqual(await store.stats(), { users: 3, flagged: 0, messages: 3, entries: 5, blobs: 2, blobBytes: a.length + b.length });
      }));
    });
  });
}
