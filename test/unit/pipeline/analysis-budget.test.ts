// The archiving budget: a message whose analysis loops forever or exhausts its worker's heap is
// archived raw-only (byte-exact, routed by its envelope, flagged) and its intake entry quarantined,
// while other mail keeps flowing; `intake retry` after the "upgrade" archives it fully, once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArchiver } from '../../../core/pipeline/archive-message.ts';
import { Intake, type IntakeRecord } from '../../../core/intake/intake.ts';
import { QueueManager } from '../../../core/intake/queue-manager.ts';
import { addIntakeRoutes } from '../../../core/intake/routes.ts';
import { AdminRoutes } from '../../../core/admin/routes.ts';
import { KvArchiveStore } from '../../../core/storage/kv-archive.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { HookRegistry } from '../../../core/app/hooks.ts';
import { App } from '../../../core/app/app.ts';
import { createMemoryLogger } from '../../../core/log.ts';
import { createMetrics } from '../../../core/metrics.ts';
import multidropRouter from '../../../core/router/multidrop-router.ts';
import { defaultConfig } from '../../../core/config/schema.ts';
import { testAnalysisPool } from '../../helpers/analysis.ts';
import { readAll } from '../../helpers/test-server.ts';

const HOSTILE = new URL('../../fixtures/analyzers/hostile.ts', import.meta.url).href;

test('a looping and a memory-hungry message are archived raw-only and quarantined while other mail flows; retry archives them fully', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-budget-'));
  const armed = join(dir, 'armed');
  writeFileSync(armed, '');
  const { logger, lines } = createMemoryLogger();
  const archive = new KvArchiveStore(new RocksEngine(join(dir, 'archive')));
  const intake = new Intake(new RocksEngine(join(dir, 'intake')), join(dir, 'intake'), 64 * 1024);
  await archive.open();
  await intake.open();
  const metrics = createMetrics();
  const pool = testAnalysisPool(logger, [{ plugin: 'hostile', module: HOSTILE, exportName: 'analyze', options: { armed } }], {
    workers: 2, timeoutMs: 1500, memoryMb: 48, onBudgetExceeded: (reason) => metrics.budgetExceeded.inc({ reason }),
  });
  const hooks = new HookRegistry(logger, 5000);
  const app = new App(logger, hooks);
  app.decorate('archive', archive);
  app.decorate('metrics', metrics);
  await app.register(multidropRouter, defaultConfig().routing);
  await archive.addUser({ name: 'alice', addresses: ['alice@example.com'] });
  await archive.addUser({ name: '_unrouted', addresses: [] });
  const seen: Record<string, unknown> = {};
  hooks.on('index', 'hostile', ({ context }) => {
    seen[context.summary.subject] = context.analysis.hostile;
    return undefined;
  });
  const queue = new QueueManager(intake, createArchiver({ archive, intake, hooks, log: logger, metrics, analysis: pool, unmatched: { user: '_unrouted', folder: 'Inbox' } }),
    { activeWindow: 4, maxAttempts: 3, retryBaseSeconds: 0.05, retryMaxSeconds: 0.1 }, logger);
  queue.start([]);
  try {
    const bodies = new Map<string, string>();
    const submit = async (subject: string, extra = ''): Promise<IntakeRecord> => {
      const body = `From: bob@else.org\r\nTo: alice@example.com\r\nCc: )\r\nSubject: ${subject}\r\n${extra}\r\nbody of ${subject}\r\n`;
      bodies.set(subject, body);
      const w = intake.writer();
      await w.write(Buffer.from(body));
      const { record, inline } = await w.commit({ listener: 'smtp', envelope: { mailFrom: 'bob@else.org', rcptTo: ['alice@example.com'] }, session: { remoteAddress: '127.0.0.1', helo: 'h', user: null } });
      queue.enqueue(record, inline);
      return record;
    };
    const loop = await submit('loops', 'X-Poison: loop\r\n');
    const hog = await submit('hogs', 'X-Poison: hog\r\n');
    for (let i = 0; i < 20; i++) await submit(`ordinary ${i}`);
    const deadline = Date.now() + 60000;
    while ((await archive.listEntries('alice', 'Inbox')).length < 22 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await queue.idle();

    const entries = await archive.listEntries('alice', 'Inbox');
    assert.equal(entries.length, 22, 'every message archived, the poisoned ones routed by their envelope');
    for (let i = 0; i < 20; i++) assert.equal(seen[`ordinary ${i}`], 'fine');
    for (const [subject, record] of [['loops', loop], ['hogs', hog]] as const) {
      const state = await intake.get(record.id);
      assert.equal(state?.state, 'corrupt', `${subject}: intake entry quarantined`);
      assert.match(state?.lastError ?? '', /^Quarantined: /);
      const message = await archive.getMessage(record.id);
      assert.ok(message, `${subject}: archived raw-only`);
      assert.ok(message.flags.some((f) => f.startsWith('analysis-failed: ')), `${subject}: flagged (${message.flags.join('; ')})`);
      const bytes = await readAll(await archive.openBlob(message.blobId));
      assert.equal(bytes.toString(), bodies.get(subject), `${subject}: stored byte-exact`);
    }
    const text = await metrics.registry.metrics();
    assert.match(text, /postern_archiving_budget_exceeded_total\{reason="timeout"\} 1/);
    assert.match(text, /postern_archiving_budget_exceeded_total\{reason="(memory|crash)"\} 1/);
    assert.ok(lines.some((l) => l.msg.startsWith('Intake entry quarantined')));

    // The "upgrade": the analyzers behave now. A retry archives each fully, merged into the same message.
    rmSync(armed);
    const routes = new AdminRoutes();
    addIntakeRoutes(routes, intake, (r) => queue.enqueue(r, null), logger);
    for (const record of [loop, hog]) {
      const m = routes.match('POST', ['intake', record.id, 'retry']);
      assert.ok(m);
      await m.handler({ method: 'POST', params: m.params, url: new URL('http://x/'), req: undefined as never, res: undefined as never, principal: 'admin-token' });
    }
    while ((await intake.list()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await queue.idle();
    assert.deepEqual(await intake.list(), [], 'retried entries left the intake');
    assert.equal(seen.loops, 'fine');
    assert.equal(seen.hogs, 'fine');
    assert.equal((await archive.listEntries('alice', 'Inbox')).length, 22, 'a retry files nothing twice');
  } finally {
    await queue.stop(2000);
    await pool.close();
    await intake.close();
    await archive.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
