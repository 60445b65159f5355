// The fuzz tier (`npm run test:fuzz`): every target of every group (groups.ts) is fuzzed with fast-check
// in a watched worker thread (harness.ts), two groups at a time. The time budget is shared out evenly:
// POSTERN_FUZZ_SECONDS (default 130) of wall time for the whole tier on two cores; POSTERN_FUZZ_RUNS caps
// the inputs per target; POSTERN_FUZZ_SEED replays a run; POSTERN_FUZZ_GROUPS / POSTERN_FUZZ_TARGETS
// (comma-separated names / name fragments) narrow it. Each failure is saved under test/fixtures/fuzz/
// (POSTERN_FUZZ_SAVE=0 to skip), where test/unit/fuzz-regressions.test.ts replays it in `npm test`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeFailure, optionsFromEnv, runJobs, saveFailure } from './harness.ts';
import { EXTRA_GROUP_NAMES, GROUP_NAMES, loadGroups } from './groups.ts';

const CONCURRENCY = 2;
const list = (name: string): string[] | null => {
  const raw = process.env[name];
  return raw === undefined || raw.trim() === '' ? null : raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
};

const groupFilter = list('POSTERN_FUZZ_GROUPS');
const targetFilter = list('POSTERN_FUZZ_TARGETS');
const groups = (await loadGroups([...GROUP_NAMES, ...EXTRA_GROUP_NAMES].filter((g) => (groupFilter === null ? GROUP_NAMES.includes(g) : groupFilter.includes(g)))))
  .map(({ module, group }) => ({ module, group: group.group, targets: group.targets.filter((t) => targetFilter === null || targetFilter.some((f) => t.name.includes(f))) }))
  .filter((g) => g.targets.length > 0);
const targetCount = groups.reduce((n, g) => n + g.targets.length, 0);
const seconds = Number(process.env.POSTERN_FUZZ_SECONDS ?? 130);
const perTargetMs = Math.max(1000, Math.floor((seconds * 1000 * CONCURRENCY) / Math.max(1, targetCount)));
const opts = optionsFromEnv(perTargetMs);
const save = process.env.POSTERN_FUZZ_SAVE !== '0';

console.log(`fuzz tier: ${targetCount} targets in ${groups.length} groups, ${perTargetMs} ms each, deadline ${opts.deadlineMs} ms per call, heap ${opts.heapMb} MiB, seed ${opts.seed} (POSTERN_FUZZ_SEED=${opts.seed} replays)`);

describe('fuzz tier', { concurrency: CONCURRENCY }, () => {
  for (const g of groups) {
    it(g.group, { timeout: perTargetMs * g.targets.length * 3 + 120_000 }, async () => {
      const results = await runJobs(g.module, g.targets.map((t) => ({ target: t.name, mode: 'fuzz' as const })), opts);
      const failures = [];
      for (const r of results) {
        console.log(`fuzz ${r.job.target}: ${r.runs} inputs in ${(r.ms / 1000).toFixed(1)} s${r.failure ? ` — ${r.failure.kind.toUpperCase()}` : ''}`);
        if (r.failure) {
          if (save) saveFailure(r.failure);
          failures.push(r.failure);
        }
      }
      assert.equal(failures.length, 0, `${failures.length} failure(s):\n${failures.map(describeFailure).join('\n')}`);
    });
  }
});
