// The conformance suite every ArchiveStore backend must pass. It speaks only the interface in types.ts
// (no engine handles, no key encodings), so the same tests hold the embedded and scale-out backends to
// one behaviour. A backend's test file calls runArchiveStoreConformance with a factory for fresh stores.
// The describe blocks live in conformance/ (users, rename, messages, idempotency, concurrency, audit, retention,
// jobs) over shared fixtures.
import { describe } from 'node:test';
import type { ArchiveStore } from './types.ts';
import type { ConformanceHarness } from './conformance/fixtures.ts';
import { describeUsers } from './conformance/users.ts';
import { describeBlobs, describeCommitsAndReads } from './conformance/messages.ts';
import { describeIdempotency } from './conformance/idempotency.ts';
import { describeConcurrency } from './conformance/concurrency.ts';
import { describeAuditAndIntegrity } from './conformance/audit.ts';
import { describeRetention } from './conformance/retention.ts';
import { describeJobs } from './conformance/jobs.ts';
import { describeRename } from './conformance/rename.ts';

export type { ConformanceHarness } from './conformance/fixtures.ts';

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
    const helpers = { withStore, withUsers };
    describeUsers(helpers);
    describeRename(helpers);
    describeCommitsAndReads(helpers);
    describeBlobs(helpers);
    describeIdempotency(helpers);
    describeConcurrency(helpers);
    describeAuditAndIntegrity(helpers);
    describeRetention(helpers);
    describeJobs(helpers);
  });
}
