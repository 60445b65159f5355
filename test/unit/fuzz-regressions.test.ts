// Replays every input the fuzz tier (test/fuzz/) ever failed on: test/fixtures/fuzz/<target>/<kind>-<hash>.bin
// runs through its target in a watched worker thread (a hang or runaway allocation fails the test instead of
// stalling the run). A fixture with a <same name>.todo file next to it is a known, not yet fixed failure:
// reported as a todo with the reason in that file, so `npm test` stays green until it is fixed.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FIXTURE_ROOT, describeFailure, runJobs } from '../fuzz/harness.ts';
import { loadGroups } from '../fuzz/groups.ts';

const dirs = existsSync(FIXTURE_ROOT) ? readdirSync(FIXTURE_ROOT, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort() : [];
const fixtures = dirs.flatMap((target) => readdirSync(join(FIXTURE_ROOT, target)).filter((f) => f.endsWith('.bin')).sort().map((f) => ({ target, file: join(FIXTURE_ROOT, target, f) })));

test('fuzz fixtures name known targets', async () => {
  const groups = await loadGroups();
  const known = new Set(groups.flatMap((g) => g.group.targets.map((t) => t.name)));
  for (const d of dirs) assert.ok(known.has(d), `test/fixtures/fuzz/${d}/ belongs to no fuzz target`);
});

const groups = await loadGroups();
for (const { module, group } of groups) {
  const mine = fixtures.filter((f) => group.targets.some((t) => t.name === f.target));
  if (mine.length === 0) continue;
  const results = runJobs(module, mine.map((f) => ({ target: f.target, mode: 'replay' as const, file: f.file })), {
    deadlineMs: 20_000, heapMb: 512, rssMb: 2048, runs: 1, timeLimitMs: 60_000, seed: 1,
  });
  mine.forEach((f, i) => {
    const todoFile = f.file.replace(/\.bin$/, '.todo');
    const todo = existsSync(todoFile) ? readFileSync(todoFile, 'utf8').trim() : undefined;
    test(`fuzz regression ${f.target}/${f.file.slice(f.file.lastIndexOf('/') + 1)}`, todo === undefined ? {} : { todo }, async () => {
      const r = (await results)[i];
      assert.ok(r, 'replayed');
      assert.equal(r.failure, null, r.failure ? describeFailure(r.failure) : '');
    });
  });
}
