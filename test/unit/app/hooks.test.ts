import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createMemoryLogger } from '../../../core/log.ts';
import { HookFailure, HookRegistry, type HookHandler, type HookObserver } from '../../../core/app/hooks.ts';
import { verdict } from '../../../core/app/verdict.ts';
import type { HookName, MessageContext, SessionInfo } from '../../../core/app/hook-types.ts';
import { parseHeaderBlock, summarize } from '../../../core/mime/headers.ts';

const session: SessionInfo = {
  id: 's1', listener: 'smtp', remoteAddress: '192.0.2.1', remotePort: 40000, helo: 'client.example', secure: false, user: null,
};

function messageContext(): MessageContext {
  const headers = parseHeaderBlock(Buffer.from('From: a@example.org\r\nSubject: Hi\r\n\r\nBody\r\n'));
  return {
    intakeId: 'i1', envelope: { mailFrom: 'a@example.org', rcptTo: ['b@example.com'] },
    session: { listener: 'smtp', remoteAddress: '192.0.2.1', helo: 'client.example', user: null },
    receivedAt: '2024-05-01T10:00:00.000Z', size: 40, sha256: '0'.repeat(64), headers, summary: summarize(headers),
    journal: null, assign: null, analysis: {},
    open: () => Readable.from([Buffer.from('From: a@example.org\r\nSubject: Hi\r\n\r\nBody\r\n')]),
  };
}

function setup(timeoutMs = 5000): {
  hooks: HookRegistry;
  failures: Array<[HookName, string, 'error' | 'timeout']>;
  lines: ReturnType<typeof createMemoryLogger>['lines'];
} {
  const { logger, lines } = createMemoryLogger();
  const failures: Array<[HookName, string, 'error' | 'timeout']> = [];
  const observer: HookObserver = { onError: (hook, plugin, kind) => failures.push([hook, plugin, kind]) };
  return { hooks: new HookRegistry(logger, timeoutMs, observer), failures, lines };
}

/** Resolves when the signal is aborted, with the signal's state at that moment. */
function untilAborted(signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(true);
    else signal.addEventListener('abort', () => resolve(signal.aborted), { once: true });
  });
}

describe('gate hooks', () => {
  it('stop at the first verdict; nothing and skip continue', async () => {
    const { hooks, failures } = setup();
    const calls: string[] = [];
    hooks.on('connect', 'a', () => { calls.push('a'); });
    hooks.on('connect', 'b', () => { calls.push('b'); return verdict.skip('not mine'); });
    hooks.on('connect', 'c', async () => { calls.push('c'); return null as never; });
    hooks.on('connect', 'd', async () => { calls.push('d'); return verdict.reject(554, '5.7.1 Go away'); });
    hooks.on('connect', 'e', () => { calls.push('e'); return verdict.accept(); });
    assert.deepEqual(await hooks.gate('connect', { session }), { kind: 'reject', code: 554, text: '5.7.1 Go away' });
    assert.deepEqual(calls, ['a', 'b', 'c', 'd']);
    assert.deepEqual(failures, []);
    assert.deepEqual(hooks.list('connect'), ['a', 'b', 'c', 'd', 'e']);
  });

  it('return accept, tempfail and disconnect verdicts as given', async () => {
    for (const v of [verdict.accept(), verdict.tempfail(421, '4.7.0 Later'), verdict.disconnect(421, 'Bye')]) {
      const { hooks } = setup();
      hooks.on('mailFrom', 'p', () => v);
      hooks.on('mailFrom', 'never', () => assert.fail('called after a verdict'));
      assert.deepEqual(await hooks.gate('mailFrom', { session, address: 'a@example.org', params: {} }), v);
    }
  });

  it('return null when no handler gives a verdict or none is registered', async () => {
    const { hooks } = setup();
    assert.equal(await hooks.gate('helo', { session, hostname: 'x' }), null);
    assert.equal(hooks.has('helo'), false);
    hooks.on('helo', 'a', () => undefined);
    hooks.on('helo', 'b', () => verdict.skip('no'));
    assert.equal(hooks.has('helo'), true);
    assert.equal(await hooks.gate('helo', { session, hostname: 'x' }), null);
  });

  it('pass the arguments and a per-call context to each handler', async () => {
    const { hooks } = setup();
    const seen: unknown[] = [];
    hooks.on('rcptTo', 'p', (args, ctx) => {
      seen.push(args.address, args.envelope.rcptTo, ctx.signal.aborted);
      ctx.log.info('handler ran');
    });
    await hooks.gate('rcptTo', { session, address: 'b@example.com', params: {}, envelope: { mailFrom: 'a@example.org', rcptTo: [] } });
    assert.deepEqual(seen, ['b@example.com', [], false]);
  });

  it('turn a throwing handler into tempfail 451, never a 5xx, and stop the chain', async () => {
    const throwers: Array<HookHandler<'dataEnd'>> = [
      () => { throw new Error('boom'); },
      async () => { throw new Error('async boom'); },
      () => Promise.reject(new TypeError('rejected')),
      () => { throw 'a string'; },
      // A plugin bug that tries to bounce with a malformed reply code.
      () => verdict.reject(250, 'not a rejection'),
    ];
    for (const thrower of throwers) {
      const { hooks, failures, lines } = setup();
      const after: string[] = [];
      hooks.on('dataEnd', 'buggy', thrower);
      hooks.on('dataEnd', 'later', () => { after.push('later'); return verdict.reject(550, '5.7.1 Should not be reached'); });
      const v = await hooks.gate('dataEnd', { session, envelope: { mailFrom: '', rcptTo: ['b@example.com'] }, size: 10, headers: parseHeaderBlock(Buffer.from('\r\n')) });
      assert.deepEqual(v, { kind: 'tempfail', code: 451, text: '4.3.0 Temporary local problem, try again later' });
      assert.deepEqual(after, []);
      assert.deepEqual(failures, [['dataEnd', 'buggy', 'error']]);
      const logged = lines.find((l) => l.level === 'error' && l.hook === 'dataEnd' && l.plugin === 'buggy');
      assert.ok(logged, 'the failure is logged with hook and plugin');
    }
  });

  it('turn a handler slower than the timeout into tempfail 451 and abort its signal', async () => {
    const { hooks, failures } = setup(30);
    let abortedSeen: boolean | null = null;
    let signal: AbortSignal | null = null;
    const handlerDone = new Promise<void>((done) => {
      hooks.on('data', 'slow', async (_args, ctx) => {
        signal = ctx.signal;
        abortedSeen = await untilAborted(ctx.signal);
        done();
        return verdict.accept();
      });
    });
    hooks.on('data', 'later', () => assert.fail('called after a timed-out handler'));
    const v = await hooks.gate('data', { session, envelope: { mailFrom: 'a@example.org', rcptTo: ['b@example.com'] } });
    assert.deepEqual(v, { kind: 'tempfail', code: 451, text: '4.3.0 Temporary local problem, try again later' });
    assert.deepEqual(failures, [['data', 'slow', 'timeout']]);
    await handlerDone;
    assert.equal(abortedSeen, true);
    assert.equal((signal as AbortSignal | null)?.aborted, true);
  });

  it('hand an aborted signal to a handler that first reads it after its timeout', async () => {
    const { hooks } = setup(20);
    let late: AbortSignal | null = null;
    const handlerDone = new Promise<void>((done) => {
      hooks.on('connect', 'late-reader', async (_args, ctx) => {
        await new Promise((r) => setTimeout(r, 60));
        late = ctx.signal;
        done();
      });
    });
    assert.equal((await hooks.gate('connect', { session }))?.kind, 'tempfail');
    await handlerDone;
    assert.equal((late as AbortSignal | null)?.aborted, true);
  });

  it('do not abort the signal of a handler that finished in time', async () => {
    const { hooks, failures } = setup(5000);
    let signal: AbortSignal | null = null;
    hooks.on('connect', 'quick', (_args, ctx) => { signal = ctx.signal; return verdict.accept(); });
    assert.deepEqual(await hooks.gate('connect', { session }), { kind: 'accept' });
    assert.equal((signal as AbortSignal | null)?.aborted, false);
    assert.deepEqual(failures, []);
  });
});

describe('collect hooks', () => {
  it('gather every part in plugin order and drop null and undefined', async () => {
    const { hooks } = setup();
    const context = messageContext();
    hooks.on('route', 'a', () => [{ user: 'alice', folder: 'Inbox', reason: 'a' }]);
    hooks.on('route', 'b', () => undefined);
    hooks.on('route', 'c', async () => null as never);
    hooks.on('route', 'd', async ({ context: c }) => [{ user: 'bob', folder: c.intakeId, reason: 'd' }]);
    hooks.on('route', 'e', () => []);
    assert.deepEqual(await hooks.collect('route', { context }), [
      [{ user: 'alice', folder: 'Inbox', reason: 'a' }],
      [{ user: 'bob', folder: 'i1', reason: 'd' }],
      [],
    ]);
    assert.deepEqual(await hooks.collect('parse', { context }), []);
  });

  it('keep falsy parts that are not null or undefined', async () => {
    const { hooks } = setup();
    hooks.on('dedup', 'a', () => null);
    hooks.on('dedup', 'b', () => ({ mergeInto: 'm1' }));
    assert.deepEqual(await hooks.collect('dedup', { context: messageContext() }), [{ mergeInto: 'm1' }]);
  });

  it('throw HookFailure naming the hook and plugin when a handler fails, and run no later handler', async () => {
    const { hooks, failures } = setup();
    const calls: string[] = [];
    hooks.on('index', 'a', () => { calls.push('a'); return { a: 1 }; });
    hooks.on('index', 'broken', () => { calls.push('broken'); throw new Error('index down'); });
    hooks.on('index', 'c', () => { calls.push('c'); return { c: 1 }; });
    await assert.rejects(hooks.collect('index', { context: messageContext(), messageId: 'm1' }), (err: unknown) => {
      assert.ok(err instanceof HookFailure);
      assert.equal(err.hook, 'index');
      assert.equal(err.plugin, 'broken');
      assert.notEqual(err.code, 'HOOK_TIMEOUT');
      assert.match(err.message, /index down/);
      assert.equal((err.cause as Error).message, 'index down');
      return true;
    });
    assert.deepEqual(calls, ['a', 'broken']);
    assert.deepEqual(failures, [['index', 'broken', 'error']]);
  });

  it('throw HookFailure with HOOK_TIMEOUT when a handler is too slow, aborting its signal', async () => {
    const { hooks, failures } = setup(30);
    let aborted: Promise<boolean> | null = null;
    hooks.on('retention', 'slow', (_args, ctx) => {
      aborted = untilAborted(ctx.signal);
      return new Promise(() => undefined);
    });
    await assert.rejects(hooks.collect('retention', { context: messageContext(), routes: [] }), (err: unknown) => {
      assert.ok(err instanceof HookFailure);
      assert.equal(err.code, 'HOOK_TIMEOUT');
      assert.equal(err.plugin, 'slow');
      assert.equal(err.hook, 'retention');
      return true;
    });
    assert.equal(await aborted, true);
    assert.deepEqual(failures, [['retention', 'slow', 'timeout']]);
  });
});

describe('notify hooks', () => {
  it('run every handler and swallow (but log and count) errors and timeouts', async () => {
    const { hooks, failures, lines } = setup(30);
    const calls: string[] = [];
    hooks.on('disconnect', 'a', () => { calls.push('a'); throw new Error('a failed'); });
    hooks.on('disconnect', 'slow', async (_args, ctx) => { calls.push('slow'); await untilAborted(ctx.signal); });
    hooks.on('disconnect', 'b', async () => { calls.push('b'); throw new Error('b failed'); });
    hooks.on('disconnect', 'c', () => { calls.push('c'); });
    assert.equal(await hooks.notify('disconnect', { session }), undefined);
    assert.deepEqual(calls, ['a', 'slow', 'b', 'c']);
    assert.deepEqual(failures, [['disconnect', 'a', 'error'], ['disconnect', 'slow', 'timeout'], ['disconnect', 'b', 'error']]);
    assert.deepEqual(lines.filter((l) => l.level === 'warn' && l.hook === 'disconnect').map((l) => l.plugin), ['a', 'slow', 'b']);
  });

  it('resolve with nothing registered', async () => {
    const { hooks } = setup();
    assert.equal(await hooks.notify('queued', { session, envelope: { mailFrom: '', rcptTo: [] }, intakeId: 'i', size: 1 }), undefined);
  });
});

describe('verdicts', () => {
  it('check reply codes by kind', () => {
    assert.deepEqual(verdict.reject(550, 'x'), { kind: 'reject', code: 550, text: 'x' });
    assert.deepEqual(verdict.tempfail(451, 'y'), { kind: 'tempfail', code: 451, text: 'y' });
    assert.deepEqual(verdict.disconnect(), { kind: 'disconnect', code: 421, text: 'Closing connection' });
    assert.deepEqual(verdict.skip('r'), { kind: 'skip', reason: 'r' });
    assert.throws(() => verdict.reject(451, 'x'), RangeError);
    assert.throws(() => verdict.tempfail(550, 'x'), RangeError);
    assert.throws(() => verdict.tempfail(45.1, 'x'), RangeError);
  });
});

it('a gate handler returning something that is not a verdict yields a tempfail, not a pass-through', async () => {
  const { logger } = createMemoryLogger();
  const reg = new HookRegistry(logger, 1000);
  reg.on('mailFrom', 'js-plugin', (() => ({ kind: 'reject', code: 250, text: 'oops' })) as never);
  const session: SessionInfo = { id: 's', listener: 'smtp', remoteAddress: '127.0.0.1', remotePort: 1, helo: '', secure: false, user: null };
  const v = await reg.gate('mailFrom', { session, address: 'a@b', params: {} });
  assert.deepEqual(v, { kind: 'tempfail', code: 451, text: '4.3.0 Temporary local problem, try again later' });
});
