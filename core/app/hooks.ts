// Runs hook chains. Gate hooks stop at the first verdict; collect hooks gather every plugin's part;
// notify hooks run after the fact and only log failures. Every call has a timeout. A gate handler that
// throws or times out turns into a temporary failure: a plugin bug must never bounce mail.
import type { Logger } from '../log.ts';
import { PosternError, errorMessage } from '../errors.ts';
import { verdict, type Verdict } from './verdict.ts';
import type { CollectHook, GateHook, HookArgs, HookName, HookResult, NotifyHook } from './hook-types.ts';

export interface HookContext {
  log: Logger;
  /** Aborted when the call times out; long-running handlers should stop. */
  signal: AbortSignal;
}

export type HookHandler<K extends HookName> = (args: HookArgs<K>, ctx: HookContext) =>
  HookResult<K> | undefined | void | Promise<HookResult<K> | undefined | void>;

interface Registered {
  plugin: string;
  handler: (args: never, ctx: HookContext) => unknown;
}

export interface HookObserver {
  onError?(hook: HookName, plugin: string, kind: 'error' | 'timeout'): void;
}

export class HookFailure extends PosternError {
  constructor(readonly hook: HookName, readonly plugin: string, cause: unknown, timedOut: boolean) {
    super(timedOut ? 'HOOK_TIMEOUT' : 'INVALID_INPUT', `Hook "${hook}" of plugin "${plugin}" ${timedOut ? 'timed out' : `failed: ${errorMessage(cause)}`}`, { cause });
  }
}

const REPLY_KINDS = new Set(['reject', 'tempfail', 'disconnect']);

/** Plugins may be plain JavaScript: check a gate result's shape before trusting it. */
function isVerdict(v: unknown): v is Verdict {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as { kind?: unknown; code?: unknown; text?: unknown };
  if (r.kind === 'accept' || r.kind === 'skip') return true;
  return typeof r.kind === 'string' && REPLY_KINDS.has(r.kind) && Number.isInteger(r.code) && (r.code as number) >= 400 && (r.code as number) < 600 && typeof r.text === 'string';
}

export class HookRegistry {
  private readonly handlers = new Map<HookName, Registered[]>();

  constructor(private readonly log: Logger, private readonly timeoutMs: number, private readonly observer: HookObserver = {}) {}

  on<K extends HookName>(name: K, plugin: string, handler: HookHandler<K>): void {
    const list = this.handlers.get(name) ?? [];
    list.push({ plugin, handler: handler as unknown as Registered['handler'] });
    this.handlers.set(name, list);
  }

  has(name: HookName): boolean {
    return (this.handlers.get(name)?.length ?? 0) > 0;
  }

  /** Plugin names registered on a hook, in call order (for docs and `postern status`). */
  list(name: HookName): string[] {
    return (this.handlers.get(name) ?? []).map((h) => h.plugin);
  }

  private async call(name: HookName, r: Registered, args: unknown, log: Logger): Promise<unknown> {
    // The abort signal is made only for a handler that reads it (an AbortSignal is an EventTarget,
    // several microseconds to make, and a message passes about ten hook calls); one read after the
    // timeout is already aborted.
    let controller: AbortController | null = null;
    let timedOut = false;
    const ctx: HookContext = {
      log: log.child({ plugin: r.plugin, hook: name }),
      get signal(): AbortSignal {
        if (!controller) {
          controller = new AbortController();
          if (timedOut) controller.abort();
        }
        return controller.signal;
      },
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        controller?.abort();
        reject(new HookFailure(name, r.plugin, new Error('timeout'), true));
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([Promise.resolve().then(() => r.handler(args as never, ctx)), timeout]);
    } catch (err) {
      const failure = err instanceof HookFailure ? err : new HookFailure(name, r.plugin, err, false);
      this.observer.onError?.(name, r.plugin, failure.code === 'HOOK_TIMEOUT' ? 'timeout' : 'error');
      throw failure;
    } finally {
      clearTimeout(timer);
    }
  }

  /** First verdict wins; `skip` means "not mine" and the chain continues. A failing handler is a tempfail. */
  async gate<K extends GateHook>(name: K, args: HookArgs<K>, log: Logger = this.log): Promise<Verdict | null> {
    for (const r of this.handlers.get(name) ?? []) {
      let result: unknown;
      try {
        result = await this.call(name, r, args, log);
      } catch (err) {
        log.error('Hook failed; answering with a temporary failure', { hook: name, plugin: r.plugin, err: errorMessage(err) });
        return verdict.tempfail(451, '4.3.0 Temporary local problem, try again later');
      }
      if (result === undefined || result === null) continue;
      if (!isVerdict(result)) {
        log.error('Gate hook returned something that is not a verdict; answering with a temporary failure', { hook: name, plugin: r.plugin });
        this.observer.onError?.(name, r.plugin, 'error');
        return verdict.tempfail(451, '4.3.0 Temporary local problem, try again later');
      }
      if (result.kind === 'skip') continue;
      return result;
    }
    return null;
  }

  /**
   * Every handler's part, in order; undefined/null parts are dropped. Throws HookFailure on the first
   * failure. `only`: run just the handlers of these plugins (raw-only archiving runs the built-in router).
   */
  async collect<K extends CollectHook>(name: K, args: HookArgs<K>, log: Logger = this.log, only?: ReadonlySet<string>): Promise<Array<NonNullable<HookResult<K>>>> {
    const out: Array<NonNullable<HookResult<K>>> = [];
    for (const r of this.handlers.get(name) ?? []) {
      if (only && !only.has(r.plugin)) continue;
      const part = await this.call(name, r, args, log);
      if (part !== undefined && part !== null) out.push(part as NonNullable<HookResult<K>>);
    }
    return out;
  }

  /** Run every handler; failures are logged and otherwise ignored. */
  async notify<K extends NotifyHook>(name: K, args: HookArgs<K>, log: Logger = this.log): Promise<void> {
    for (const r of this.handlers.get(name) ?? []) {
      try {
        await this.call(name, r, args, log);
      } catch (err) {
        log.warn('Notify hook failed', { hook: name, plugin: r.plugin, err: errorMessage(err) });
      }
    }
  }
}
