// The last line of defence for `postern serve`: a promise rejection nobody handled is logged (error,
// name, code, the top of its stack) and counted in postern_unhandled_rejections_total, and the process
// keeps running: no client input may stop the server this way. An uncaught exception leaves the process
// in an unknown state, so after logging and counting it (postern_uncaught_exceptions_total) the server
// stops gracefully (acknowledged mail is durable by then) and exits 1 for the supervisor to restart it;
// a stop that hangs, or a second exception, exits at once. Logging is rate-limited per minute so a
// rejection in a hot path cannot flood the log; the counters always count. Trusts nothing it receives.
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

export interface ProcessGuardDeps {
  log: Logger;
  metrics: Pick<Metrics, 'unhandledRejections' | 'uncaughtExceptions'>;
  /** Graceful stop after an uncaught exception. */
  shutdown(reason: string): Promise<void>;
  /** Longest the graceful stop may take before the process exits anyway. */
  stopDeadlineMs?: number;
  exit?: (code: number) => void;
  /** Log lines per minute at most (the rest are counted and summarised). */
  logPerMinute?: number;
}

/** What can be said about a thrown value without trusting it (getters on a hostile object may throw). */
export function describeThrown(value: unknown): Record<string, unknown> {
  try {
    if (value instanceof Error) {
      const code = (value as { code?: unknown }).code;
      return {
        err: value.message.slice(0, 2000), name: value.name,
        ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
        stack: (value.stack ?? '').split('\n').slice(1, 9).map((l) => l.trim()),
      };
    }
    return { err: String(value).slice(0, 2000), name: typeof value };
  } catch {
    return { err: '(a value that cannot be described)' };
  }
}

/** Install the guard on `proc` (the process by default); returns a function that removes it. */
export function installProcessGuard(deps: ProcessGuardDeps, proc: NodeJS.EventEmitter = process): () => void {
  const exit = deps.exit ?? ((code: number) => process.exit(code));
  const limit = deps.logPerMinute ?? 30;
  let windowStart = 0;
  let logged = 0;
  let suppressed = 0;
  const mayLog = (): boolean => {
    const now = Date.now();
    if (now - windowStart >= 60_000) {
      if (suppressed > 0) deps.log.error('Further unhandled rejections were not logged', { count: suppressed });
      windowStart = now;
      logged = 0;
      suppressed = 0;
    }
    if (logged < limit) {
      logged++;
      return true;
    }
    suppressed++;
    return false;
  };

  const onRejection = (reason: unknown): void => {
    deps.metrics.unhandledRejections.inc();
    if (mayLog()) deps.log.error('Unhandled promise rejection; the server keeps running', describeThrown(reason));
  };

  let stopping = false;
  const onException = (err: unknown, origin: unknown): void => {
    deps.metrics.uncaughtExceptions.inc();
    deps.log.error('Uncaught exception; stopping the server', { ...describeThrown(err), origin: String(origin) });
    if (stopping) return exit(1);
    stopping = true;
    const deadline = setTimeout(() => exit(1), deps.stopDeadlineMs ?? 60_000);
    void deps.shutdown('uncaught exception').then(
      () => exit(1),
      (e: unknown) => {
        deps.log.error('Shutdown after an uncaught exception failed', describeThrown(e));
        exit(1);
      },
    ).finally(() => clearTimeout(deadline));
  };

  proc.on('unhandledRejection', onRejection);
  proc.on('uncaughtException', onException);
  return () => {
    proc.off('unhandledRejection', onRejection);
    proc.off('uncaughtException', onException);
  };
}
