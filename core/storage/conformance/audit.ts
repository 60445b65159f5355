// Conformance block 'audit and integrity roles': the append-only audit record sequence (append, read in
// order and in reverse, head marker, refusal of overwrites and gaps, durability across reopen, no way to
// update or delete) and the integrity reader (full scans of blobs, messages and entries; decoded chunks).
// Trusts only the ArchiveStore interface and the shared fixtures; hands on registered node:test cases.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AuditStoreRecord, Scanned } from '../types.ts';
import { MiB, commitOf, INBOX, SENT, type SuiteHelpers } from './fixtures.ts';

const rec = (seq: number): AuditStoreRecord => ({ seq, data: Buffer.from(`{"seq":${seq}}`) });
const head = (seq: number): { seq: number; hash: string } => ({ seq, hash: seq.toString(16).padStart(64, '0') });

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function values<T>(items: Array<Scanned<T>>): T[] {
  return items.map((s) => {
    assert.ok(s.ok, s.ok ? '' : `${s.where}: ${s.error}`);
    return s.value;
  });
}

export function describeAuditAndIntegrity({ withStore, withUsers }: SuiteHelpers): void {
  describe('audit role', () => {
    it('appends numbered records atomically and reads them back in order, from a seq, and in reverse', () => withStore(async ({ store }) => {
      const audit = store.audit();
      assert.equal(await audit.head(), null);
      assert.deepEqual(await collect(audit.read()), []);
      await audit.append([rec(1), rec(2)], head(2));
      await audit.append([rec(3)], head(3));
      assert.deepEqual((await collect(audit.read())).map((r) => [r.seq, r.data.toString()]), [[1, '{"seq":1}'], [2, '{"seq":2}'], [3, '{"seq":3}']]);
      assert.deepEqual((await collect(audit.read({ fromSeq: 2 }))).map((r) => r.seq), [2, 3]);
      assert.deepEqual((await collect(audit.read({ fromSeq: 2, limit: 1 }))).map((r) => r.seq), [2]);
      assert.deepEqual((await collect(audit.read({ reverse: true, limit: 1 }))).map((r) => r.seq), [3]);
      assert.deepEqual(await audit.head(), head(3));
    }));

    it('refuses to overwrite a record, to leave a gap, or a head that does not name the last record', () => withStore(async ({ store }) => {
      const audit = store.audit();
      await audit.append([rec(1)], head(1));
      await assert.rejects(audit.append([rec(1)], head(1)), { code: 'CONFLICT' });
      await assert.rejects(audit.append([rec(3)], head(3)), { code: 'CONFLICT' });
      await assert.rejects(audit.append([rec(2), rec(4)], head(4)), { code: 'CONFLICT' });
      await assert.rejects(audit.append([rec(2)], head(3)), { code: 'INVALID_INPUT' });
      await assert.rejects(audit.append([rec(2)], { seq: 2, hash: 'not-hex' }), { code: 'INVALID_INPUT' });
      await assert.rejects(audit.append([{ seq: 0, data: Buffer.from('x') }], head(0)), { code: 'INVALID_INPUT' });
      await assert.rejects(audit.append([{ seq: 2.5, data: Buffer.from('x') }], head(2)), { code: 'INVALID_INPUT' });
      await audit.append([], head(1));  // nothing to append: a no-op
      await audit.append([rec(2)], head(2));
      assert.deepEqual((await collect(audit.read())).map((r) => r.data.toString()), ['{"seq":1}', '{"seq":2}']);
    }));

    it('offers no method that updates or deletes a record', () => withStore(async ({ store }) => {
      const audit = store.audit() as unknown as Record<string, unknown>;
      for (const name of ['put', 'update', 'delete', 'del', 'remove', 'truncate', 'clear', 'write']) assert.equal(audit[name], undefined, name);
    }));

    it('keeps records and the head across a reopen and goes on after them', () => withStore(async (h) => {
      await h.store.audit().append([rec(1), rec(2)], head(2));
      await h.store.close();
      const store = await h.reopen();
      assert.deepEqual(await store.audit().head(), head(2));
      await assert.rejects(store.audit().append([rec(2)], head(2)), { code: 'CONFLICT' });
      await store.audit().append([rec(3)], head(3));
      assert.deepEqual((await collect(store.audit().read())).map((r) => r.seq), [1, 2, 3]);
    }));

    it('serialises concurrent appends: exactly one of two racing appends of the same seq wins', () => withStore(async ({ store }) => {
      const results = await Promise.allSettled([store.audit().append([rec(1)], head(1)), store.audit().append([rec(1)], head(1))]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    }));
  });

  describe('integrity reader', () => {
    it('scans every blob, message and entry, including large multi-chunk blobs, and decodes single chunks', () => withUsers(async (store) => {
      const big = randomBytes(2 * MiB + 123);
      await store.commit(commitOf({ n: 1, fileInto: [INBOX('alice'), SENT('bob')] }));
      await store.commit(commitOf({ n: 2, bytes: big, fileInto: [INBOX('bob')] }));
      const reader = store.integrity();
      const blobs = values(await collect(reader.blobs()));
      assert.equal(blobs.length, 2);
      const large = blobs.find((b) => b.size === big.length);
      assert.ok(large);
      assert.equal(large.refs, 1);
      assert.ok(large.chunks >= 3);
      const parts: Buffer[] = [];
      for (let n = 0; n < large.chunks; n++) {
        const c = await reader.chunk(large.sha256, n);
        assert.ok(c, `chunk ${n}`);
        parts.push(c);
      }
      assert.ok(Buffer.concat(parts).equals(big));
      assert.equal(await reader.chunk(large.sha256, large.chunks), null);
      assert.deepEqual(await reader.blob(large.sha256), large);
      assert.equal(await reader.blob('0'.repeat(64)), null);
      assert.deepEqual(values(await collect(reader.messages())).map((m) => m.id).sort(), ['msg-1', 'msg-2']);
      assert.deepEqual(values(await collect(reader.entries())).map((e) => `${e.user}/${e.folder}/${e.uid}/${e.messageId}`).sort(),
        ['alice/Inbox/1/msg-1', 'bob/Inbox/1/msg-2', 'bob/Sent/1/msg-1']);
    }));

    it('still scans the entries of a user removed from the directory', () => withUsers(async (store) => {
      await store.commit(commitOf({ n: 1, fileInto: [INBOX('bob')] }));
      await store.removeUser('bob');
      assert.deepEqual(values(await collect(store.integrity().entries())).map((e) => e.user), ['bob']);
    }));
  });
}
