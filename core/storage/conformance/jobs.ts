// Conformance block 'jobs role': job records (put replaces, list, delete with the job's state), per-job
// state as JSON, and the results history (ordered by start time, [from, to) ranges, per-job filter,
// limit, results outliving their job), all durable across a reopen.
// Trusts only the ArchiveStore interface; hands on registered node:test cases.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { JobRecord, JobResult } from '../../jobs/types.ts';
import type { SuiteHelpers } from './fixtures.ts';

function job(name: string, change: Partial<JobRecord> = {}): JobRecord {
  return {
    name, kind: 'import-pop3', schedule: null, options: { server: 'pop.example.org', password: 'enc:v1:AAAA' }, enabled: true, source: 'api',
    createdAt: '2026-01-01T00:00:00.000Z', createdBy: 'admin-token', updatedAt: '2026-01-01T00:00:00.000Z', updatedBy: 'admin-token',
    status: 'scheduled', command: '', detail: '', sequence: 0, lastRunAt: null, lastRunId: null, nextRunAt: null, pending: null, ...change,
  };
}

function result(jobName: string, startedAt: string, id: string): JobResult {
  return {
    id, job: jobName, kind: 'import-pop3', startedAt, endedAt: startedAt, status: 'succeeded', trigger: 'manual',
    counts: { found: 1, archived: 1, duplicates: 0, failed: 0 }, errors: [], summary: { note: `run ${id}` },
  };
}

export function describeJobs({ withStore }: SuiteHelpers): void {
  describe('jobs role', () => {
    it('stores job records: get, list, replace, delete; unknown names are null', () => withStore(async ({ store }) => {
      const jobs = store.jobs();
      assert.equal(await jobs.getJob('nightly'), null);
      assert.deepEqual(await jobs.listJobs(), []);
      await jobs.putJob(job('nightly'));
      await jobs.putJob(job('adhoc', { schedule: '15m' }));
      assert.deepEqual(await jobs.getJob('nightly'), job('nightly'));
      assert.deepEqual((await jobs.listJobs()).map((j) => j.name).sort(), ['adhoc', 'nightly']);
      await jobs.putJob(job('nightly', { status: 'running', sequence: 7, pending: { name: 'nightly', kind: 'import-pop3', schedule: '1h', options: {}, enabled: false } }));
      const replaced = await jobs.getJob('nightly');
      assert.equal(replaced?.status, 'running');
      assert.equal(replaced?.sequence, 7);
      assert.equal(replaced?.pending?.schedule, '1h');
      assert.equal((await jobs.listJobs()).length, 2, 'put replaces, never duplicates');
      await jobs.deleteJob('adhoc');
      assert.equal(await jobs.getJob('adhoc'), null);
      assert.deepEqual((await jobs.listJobs()).map((j) => j.name), ['nightly']);
      await jobs.deleteJob('never-existed');  // deleting nothing is not an error
    }));

    it('keeps per-job state as JSON and drops it with the job', () => withStore(async ({ store }) => {
      const jobs = store.jobs();
      assert.equal(await jobs.getState('nightly'), null);
      await jobs.putJob(job('nightly'));
      const state = { folders: { INBOX: { uidValidity: 42, lastUid: 1000 }, 'Dossiers/2026': { uidValidity: 7, lastUid: 3 } }, uidl: ['a', 'b'] };
      await jobs.putState('nightly', state);
      assert.deepEqual(await jobs.getState('nightly'), state);
      await jobs.putState('nightly', { uidl: [] });
      assert.deepEqual(await jobs.getState('nightly'), { uidl: [] }, 'put replaces the state');
      assert.equal(await jobs.getState('other'), null, 'state is per job');
      await jobs.deleteJob('nightly');
      assert.equal(await jobs.getState('nightly'), null);
    }));

    it('lists results oldest first within [from, to), per job and up to a limit; results outlive their job', () => withStore(async ({ store }) => {
      const jobs = store.jobs();
      assert.deepEqual(await jobs.listResults({}), []);
      // Added out of order: the history is ordered by start time, not by insertion.
      await jobs.addResult(result('b', '2026-03-02T00:00:00.000Z', 'r3'));
      await jobs.addResult(result('a', '2026-03-01T00:00:00.000Z', 'r1'));
      await jobs.addResult(result('a', '2026-03-01T12:00:00.000Z', 'r2'));
      await jobs.addResult(result('a', '2026-03-03T00:00:00.000Z', 'r4'));
      assert.deepEqual((await jobs.listResults({})).map((r) => r.id), ['r1', 'r2', 'r3', 'r4']);
      assert.deepEqual((await jobs.listResults({ from: '2026-03-01T12:00:00.000Z' })).map((r) => r.id), ['r2', 'r3', 'r4'], 'from is inclusive');
      assert.deepEqual((await jobs.listResults({ to: '2026-03-02T00:00:00.000Z' })).map((r) => r.id), ['r1', 'r2'], 'to is exclusive');
      assert.deepEqual((await jobs.listResults({ from: '2026-03-01T06:00:00.000Z', to: '2026-03-02T06:00:00.000Z' })).map((r) => r.id), ['r2', 'r3']);
      assert.deepEqual((await jobs.listResults({ job: 'a' })).map((r) => r.id), ['r1', 'r2', 'r4']);
      assert.deepEqual((await jobs.listResults({ job: 'a', limit: 2 })).map((r) => r.id), ['r1', 'r2']);
      assert.deepEqual((await jobs.listResults({ job: 'nobody' })), []);
      assert.deepEqual((await jobs.listResults({ limit: 1 }))[0], result('a', '2026-03-01T00:00:00.000Z', 'r1'), 'a result reads back whole');
      // Two runs starting at the same instant are both kept.
      await jobs.addResult(result('c', '2026-03-01T00:00:00.000Z', 'r0'));
      assert.equal((await jobs.listResults({ to: '2026-03-01T00:00:01.000Z' })).length, 2);
      await jobs.putJob(job('a'));
      await jobs.deleteJob('a');
      assert.equal((await jobs.listResults({ job: 'a' })).length, 3, 'deleting a job keeps its results');
    }));

    it('keeps jobs, state and results across a reopen', () => withStore(async (h) => {
      await h.store.jobs().putJob(job('nightly', { status: 'running', lastRunId: 'r9' }));
      await h.store.jobs().putState('nightly', { lastUid: 5 });
      await h.store.jobs().addResult(result('nightly', '2026-04-01T00:00:00.000Z', 'r9'));
      await h.store.close();
      const store = await h.reopen();
      assert.equal((await store.jobs().getJob('nightly'))?.status, 'running');
      assert.deepEqual(await store.jobs().getState('nightly'), { lastUid: 5 });
      assert.deepEqual((await store.jobs().listResults({})).map((r) => r.id), ['r9']);
    }));
  });
}
