// The jobs service over a real RocksDB job store: definitions, validation, runs with counts and
// sequence, errors, cancellation, deferred changes, sealed secrets, config jobs, restart recovery,
// interval schedules, results history ranges and metrics.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { KvJobStore } from '../../../core/jobs/kv-job-store.ts';
import { JobService } from '../../../core/jobs/service.ts';
import { SecretBox } from '../../../core/jobs/secrets.ts';
import { createMemoryLogger } from '../../../core/log.ts';
import { createMetrics } from '../../../core/metrics.ts';
import type { JobKind, JobRunContext } from '../../../core/jobs/types.ts';
import { isPosternError } from '../../../core/errors.ts';

let dir: string;
let engine: RocksEngine;
let store: KvJobStore;

interface TestOptions { messages: number; fail?: string | undefined; failAfter?: number | undefined; password?: string | undefined; wait?: boolean | undefined }
let seen: TestOptions[] = [];
let gate: { release: () => void; promise: Promise<void> } | null = null;

function makeGate(): void {
  let release = (): void => undefined;
  const promise = new Promise<void>((r) => (release = r));
  gate = { release, promise };
}

const testKind: JobKind<TestOptions> = {
  kind: 'test-import',
  description: 'counts messages',
  secrets: ['password'],
  schema: z.strictObject({ messages: z.number().int().min(0), fail: z.string().optional(), failAfter: z.number().optional(), password: z.string().optional(), wait: z.boolean().optional() }),
  async run(o, ctx: JobRunContext) {
    seen.push(o);
    const state = (await ctx.loadState<{ runs: number }>()) ?? { runs: 0 };
    await ctx.saveState({ runs: state.runs + 1 });
    for (let i = 0; i < o.messages; i++) {
      if (ctx.signal.aborted) throw ctx.signal.reason as Error;
      ctx.progress('importing', `message ${i + 1}`);
      ctx.count({ found: 1, archived: 1 });
      if (o.failAfter === i) {
        ctx.count({ failed: 1 });
        ctx.error(`message ${i + 1} failed`);
      }
    }
    if (o.wait && gate) {
      await Promise.race([gate.promise, new Promise((_, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason as Error)))]);
    }
    if (o.fail) throw new Error(o.fail);
    return { summary: { runs: state.runs + 1 } };
  },
};

function service(): { jobs: JobService; metrics: ReturnType<typeof createMetrics> } {
  const metrics = createMetrics();
  const jobs = new JobService({ store, log: createMemoryLogger().logger, metrics, secrets: SecretBox.inDataDir(dir) });
  jobs.registerKind(testKind);
  return { jobs, metrics };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-jobs-'));
  engine = new RocksEngine(join(dir, 'db'));
  await engine.open();
  store = new KvJobStore(engine);
  seen = [];
  gate = null;
});
afterEach(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

const def = (name: string, options: Record<string, unknown>, schedule: string | null = null) => ({ name, kind: 'test-import', schedule, enabled: true, options });

test('the number of jobs is bounded', async () => {
  const jobs = new JobService({ store, log: createMemoryLogger().logger, metrics: createMetrics(), secrets: SecretBox.inDataDir(dir), maxJobs: 2 });
  jobs.registerKind(testKind);
  await jobs.start([]);
  await jobs.create(def('one', { messages: 1 }), 't');
  await jobs.create(def('two', { messages: 1 }), 't');
  await assert.rejects(jobs.create(def('three', { messages: 1 }), 't'), (e: unknown) => isPosternError(e, 'INVALID_INPUT') && /at most 2 jobs/.test((e as Error).message));
  await jobs.remove('one', 't');
  await jobs.create(def('three', { messages: 1 }), 't');
  assert.deepEqual(jobs.list().map((j) => j.name), ['three', 'two']);
});

test('a kind registers once', () => {
  const { jobs } = service();
  assert.throws(() => jobs.registerKind(testKind), /registered twice/);
});

test('definitions are validated: name, kind, schedule, options; names are unique', async () => {
  const { jobs } = service();
  await jobs.start([]);
  await assert.rejects(jobs.create(def('Bad Name', { messages: 1 }), 't'), /Job name "Bad Name"/);
  await assert.rejects(jobs.create({ ...def('a', { messages: 1 }), kind: 'nope' }, 't'), /Job kind "nope" is not known/);
  await assert.rejects(jobs.create(def('a', { messages: 1 }, 'every tuesday'), 't'), /neither an interval/);
  await assert.rejects(jobs.create(def('a', { messages: 1 }, '0.1s'), 't'), /between 1s and 366d/);
  await assert.rejects(jobs.create(def('a', { messages: -1 }), 't'), /Options of job "a": messages/);
  await assert.rejects(jobs.create(def('a', { messages: 1, extra: true }), 't'), /Options of job "a"/);
  await jobs.create(def('a', { messages: 1 }, '*/5 * * * *'), 'tester');
  await assert.rejects(jobs.create(def('a', { messages: 1 }), 't'), (e: unknown) => isPosternError(e, 'CONFLICT'));
  const shown = jobs.show('a');
  assert.equal(shown.createdBy, 'tester');
  assert.equal(shown.status, 'scheduled');
  assert.ok(shown.nextRunAt && Date.parse(shown.nextRunAt) > Date.now());
  await jobs.stop(1000);
});

test('a run counts, advances the sequence, keeps state, and lands in the results history', async () => {
  const { jobs, metrics } = service();
  await jobs.start([]);
  await jobs.create(def('imp', { messages: 3 }), 't');
  await jobs.run('imp', 'manual', 'tester');
  await jobs.waitFor('imp');
  await jobs.run('imp', 'manual', 'tester');
  await jobs.waitFor('imp');
  const j = jobs.show('imp');
  assert.equal(j.status, 'succeeded');
  assert.equal(j.sequence, 6);
  assert.equal(j.command, 'importing');
  assert.equal(j.detail, 'message 3');
  const results = await jobs.results({ job: 'imp' });
  assert.equal(results.length, 2);
  assert.deepEqual(results[1]?.counts, { found: 3, archived: 3, duplicates: 0, failed: 0 });
  assert.deepEqual(results[1]?.summary, { runs: 2 });
  assert.equal(results[1]?.trigger, 'manual');
  const text = await metrics.registry.metrics();
  assert.match(text, /postern_job_runs_total\{kind="test-import",outcome="succeeded"\} 2/);
  assert.match(text, /postern_job_messages_total\{kind="test-import",result="archived"\} 6/);
  await jobs.stop(1000);
});

test('errors give completed-with-errors; a throw gives failed; running twice is refused', async () => {
  const { jobs } = service();
  await jobs.start([]);
  await jobs.create(def('e', { messages: 3, failAfter: 1 }), 't');
  await jobs.create(def('f', { messages: 1, fail: 'server went away' }), 't');
  await jobs.run('e', 'manual', 't');
  await jobs.waitFor('e');
  await jobs.run('f', 'manual', 't');
  await jobs.waitFor('f');
  assert.equal(jobs.show('e').status, 'completed-with-errors');
  assert.equal(jobs.show('f').status, 'failed');
  const [re] = await jobs.results({ job: 'e' });
  assert.deepEqual(re?.errors, ['message 2 failed']);
  const [rf] = await jobs.results({ job: 'f' });
  assert.deepEqual(rf?.errors, ['server went away']);
  makeGate();
  await jobs.create(def('w', { messages: 0, wait: true }), 't');
  await jobs.run('w', 'manual', 't');
  await assert.rejects(jobs.run('w', 'manual', 't'), /already running/);
  gate?.release();
  await jobs.waitFor('w');
  await jobs.stop(1000);
});

test('cancel stops a run (status cancelled); cancelling an idle job is refused', async () => {
  const { jobs } = service();
  await jobs.start([]);
  makeGate();
  await jobs.create(def('c', { messages: 1, wait: true }), 't');
  assert.throws(() => jobs.cancel('c', 't'), /is not running/);
  await jobs.run('c', 'manual', 't');
  jobs.cancel('c', 'operator');
  await jobs.waitFor('c');
  assert.equal(jobs.show('c').status, 'cancelled');
  assert.equal((await jobs.results({ job: 'c' }))[0]?.status, 'cancelled');
  await jobs.stop(1000);
});

test('a change to a running job applies after the current run', async () => {
  const { jobs } = service();
  await jobs.start([]);
  makeGate();
  await jobs.create(def('p', { messages: 1, wait: true }), 't');
  await jobs.run('p', 'manual', 't');
  const changed = await jobs.update('p', { options: { messages: 5 }, schedule: '1h' }, 'editor');
  assert.equal(changed.schedule, null, 'the running definition is unchanged');
  assert.deepEqual(changed.pending?.options, { messages: 5 });
  assert.equal(changed.updatedBy, 'editor');
  gate?.release();
  await jobs.waitFor('p');
  const after = jobs.show('p');
  assert.equal(after.schedule, '1h');
  assert.deepEqual(after.options, { messages: 5 });
  assert.equal(after.pending, null);
  assert.ok(after.nextRunAt);
  await jobs.run('p', 'manual', 't');
  await jobs.waitFor('p');
  assert.equal(seen.at(-1)?.messages, 5);
  await jobs.stop(1000);
});

test('secrets are sealed at rest, redacted when shown, kept on update, and clear for the run', async () => {
  const { jobs } = service();
  await jobs.start([]);
  await jobs.create(def('s', { messages: 0, password: 'hunter2' }), 't');
  assert.equal(jobs.show('s').options.password, '(secret)');
  const raw = await store.getJob('s');
  assert.match(String(raw?.options.password), /^enc:v1:/);
  assert.ok(!JSON.stringify(raw).includes('hunter2'));
  await jobs.update('s', { options: { messages: 1, password: '(secret)' } }, 't');
  await jobs.run('s', 'manual', 't');
  await jobs.waitFor('s');
  assert.equal(seen.at(-1)?.password, 'hunter2');
  assert.equal(readFileSync(join(dir, 'jobs-secret.key'), 'utf8').trim().length, 64);
  await jobs.stop(1000);
});

test('config jobs are loaded, read-only through the API, and removed when gone from the config', async () => {
  const first = service().jobs;
  await first.start([def('cfg', { messages: 2 })]);
  assert.equal(first.show('cfg').source, 'config');
  await assert.rejects(first.update('cfg', { enabled: false }, 't'), /defined in the configuration file/);
  await assert.rejects(first.remove('cfg', 't'), /defined in the configuration file/);
  await first.stop(1000);
  const second = service().jobs;
  await assert.rejects(second.start([def('cfg', { messages: 'x' })]), /jobs: "cfg": Options/);
  const third = service().jobs;
  await third.start([]);
  assert.throws(() => third.show('cfg'), /does not exist/);
  await third.stop(1000);
});

test('a run interrupted by a stop is recorded as failed at the next start', async () => {
  const { jobs } = service();
  await jobs.start([]);
  await jobs.create(def('r', { messages: 1 }), 't');
  // Simulate a crash mid-run: the stored record still says running.
  const rec = await store.getJob('r');
  assert.ok(rec);
  await store.putJob({ ...rec, status: 'running', lastRunAt: new Date().toISOString(), lastRunId: 'run-1' });
  await jobs.stop(1000);
  const again = service().jobs;
  await again.start([]);
  assert.equal(again.show('r').status, 'failed');
  const [res] = await again.results({ job: 'r' });
  assert.match(res?.errors[0] ?? '', /stopped while the job ran/);
  await again.stop(1000);
});

test('an interval schedule starts runs by itself', async () => {
  const { jobs } = service();
  await jobs.start([]);
  await jobs.create(def('tick', { messages: 1 }, '1s'), 't');
  for (let i = 0; i < 100 && (await jobs.results({ job: 'tick' })).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  const [res] = await jobs.results({ job: 'tick' });
  assert.equal(res?.trigger, 'schedule');
  assert.equal(res?.status, 'succeeded');
  await jobs.stop(1000);
});

test('results history: from/to select by start time', async () => {
  const base = { kind: 'test-import', endedAt: '', status: 'succeeded' as const, trigger: 'manual' as const, counts: { found: 0, archived: 0, duplicates: 0, failed: 0 }, errors: [], summary: {} };
  for (const [id, day] of [['a', '2026-01-01'], ['b', '2026-01-02'], ['c', '2026-01-03']] as const) {
    await store.addResult({ ...base, id, job: 'x', startedAt: `${day}T10:00:00.000Z` });
  }
  const { jobs } = service();
  const ids = async (q: { from?: string; to?: string }): Promise<string[]> => (await jobs.results(q)).map((r) => r.id);
  assert.deepEqual(await ids({}), ['a', 'b', 'c']);
  assert.deepEqual(await ids({ from: '2026-01-02T00:00:00.000Z' }), ['b', 'c']);
  assert.deepEqual(await ids({ to: '2026-01-02T00:00:00.000Z' }), ['a']);
  assert.deepEqual(await ids({ from: '2026-01-02T00:00:00.000Z', to: '2026-01-03T00:00:00.000Z' }), ['b']);
});

test('the results history is bounded: the oldest results beyond the limit are dropped', async () => {
  const small = new KvJobStore(engine, 3);
  const base = { job: 'x', kind: 'test-import', endedAt: '', status: 'succeeded' as const, trigger: 'manual' as const, counts: { found: 0, archived: 0, duplicates: 0, failed: 0 }, errors: [], summary: {} };
  for (let i = 0; i < 5; i++) await small.addResult({ ...base, id: `r${i}`, startedAt: `2026-01-0${i + 1}T00:00:00.000Z` });
  assert.equal(await small.prune(), 2);
  assert.deepEqual((await small.listResults({})).map((r) => r.id), ['r2', 'r3', 'r4']);
  assert.equal(await small.prune(), 0);
});
