// The process guard of `postern serve`: an unhandled rejection is logged with its context and counted,
// and the process keeps running (checked in a real child process, where Node would otherwise exit);
// an uncaught exception is logged, counted and followed by a graceful stop and exit 1; logging is
// rate-limited while counting is not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createMemoryLogger } from '../../../core/log.ts';
import { createMetrics } from '../../../core/metrics.ts';
import { installProcessGuard } from '../../../core/app/process-guard.ts';

async function count(metrics: ReturnType<typeof createMetrics>, name: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? NaN);
}

test('an unhandled rejection is logged with its context and counted; logging is rate-limited', async () => {
  const { logger, lines } = createMemoryLogger();
  const metrics = createMetrics();
  const proc = new EventEmitter();
  const remove = installProcessGuard({ log: logger, metrics, shutdown: async () => assert.fail('no stop for a rejection'), logPerMinute: 3 }, proc);
  const err = Object.assign(new Error('boom in a handler'), { code: 'ECONNRESET' });
  proc.emit('unhandledRejection', err, Promise.resolve());
  const hostile = { get message(): string { throw new Error('no'); } };
  proc.emit('unhandledRejection', hostile, Promise.resolve());
  for (let i = 0; i < 10; i++) proc.emit('unhandledRejection', 'plain string', Promise.resolve());
  assert.equal(await count(metrics, 'postern_unhandled_rejections_total'), 12);
  const logged = lines.filter((l) => l.msg.startsWith('Unhandled promise rejection'));
  assert.equal(logged.length, 3, 'at most logPerMinute lines');
  assert.equal(logged[0]?.err, 'boom in a handler');
  assert.equal(logged[0]?.code, 'ECONNRESET');
  assert.ok(Array.isArray(logged[0]?.stack) && (logged[0]?.stack as string[]).length > 0);
  remove();
  assert.equal(proc.listenerCount('unhandledRejection'), 0);
});

test('an uncaught exception is logged, counted, and followed by a graceful stop and exit 1', async () => {
  const { logger, lines } = createMemoryLogger();
  const metrics = createMetrics();
  const proc = new EventEmitter();
  const stops: string[] = [];
  const exited = new Promise<number>((resolve) => {
    installProcessGuard({ log: logger, metrics, shutdown: async (reason) => void stops.push(reason), exit: resolve }, proc);
  });
  proc.emit('uncaughtException', new TypeError('bad state'), 'uncaughtException');
  assert.equal(await exited, 1);
  assert.deepEqual(stops, ['uncaught exception']);
  assert.equal(await count(metrics, 'postern_uncaught_exceptions_total'), 1);
  assert.ok(lines.some((l) => l.msg === 'Uncaught exception; stopping the server' && l.err === 'bad state' && l.name === 'TypeError'));
});

test('in a real process, an unhandled rejection no longer ends it', async () => {
  const guard = fileURLToPath(new URL('../../../core/app/process-guard.ts', import.meta.url));
  const metricsPath = fileURLToPath(new URL('../../../core/metrics.ts', import.meta.url));
  const logPath = fileURLToPath(new URL('../../../core/log.ts', import.meta.url));
  const script = `
    const { installProcessGuard } = await import(${JSON.stringify(guard)});
    const { createMetrics } = await import(${JSON.stringify(metricsPath)});
    const { createLogger } = await import(${JSON.stringify(logPath)});
    const metrics = createMetrics();
    installProcessGuard({ log: createLogger({ format: 'json' }), metrics, shutdown: async () => {} });
    Promise.reject(new Error('nobody handles this'));
    await new Promise((r) => setTimeout(r, 100));
    console.log('still running', (await metrics.unhandledRejections.get()).values[0].value);
  `;
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout.trim(), 'still running 1');
  assert.match(out.stderr, /Unhandled promise rejection; the server keeps running/);
  assert.match(out.stderr, /nobody handles this/);
});
