// One structured logger on pino: JSON lines in production, a readable line on a terminal. Child loggers
// carry connection and message ids. Every record passes core/log/redact.ts first, so a credential is
// censored at any depth of nesting and in protocol text (AUTH, LOGIN, PASS). Under systemd each JSON
// line carries the journal's syslog priority prefix (core/log/journald.ts).
import { pino, symbols, type Logger as PinoLogger } from 'pino';
import { redactFields, redactText } from './log/redact.ts';
import { prettyLine } from './log/pretty.ts';
import { isJournalStream, priorityPrefix } from './log/journald.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LogSink {
  write(line: string): void;
}

/** pino's level numbers back to our names (for the journal priority). */
const LEVEL_NAMES: Record<number, LogLevel> = { 20: 'debug', 30: 'info', 40: 'warn', 50: 'error' };

/**
 * Standard error, written once per event-loop turn with everything logged in that turn: one write
 * instead of one per line (writes to a file are synchronous system calls). Flushed on exit.
 */
function batchedStderr(): LogSink {
  let pending: string[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    process.stderr.write(text);
  };
  process.once('exit', flush);
  return {
    write(line) {
      if (pending.length === 0) setImmediate(flush);
      pending.push(line);
    },
  };
}

let stderrSink: LogSink | null = null;

function wrap(p: PinoLogger<never>): Logger {
  // A level below the minimum costs one comparison: nothing is redacted or formatted for it.
  const at = (level: LogLevel) => (m: string, f?: LogFields): void => {
    if (p.isLevelEnabled(level)) p[level](f ?? {}, redactText(m));
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => lazyChild(p, fields),
  };
}

/**
 * A child logger made on its first line: sessions and intake entries each get one, and most log
 * nothing at the enabled level (a pino child costs ~20 µs to make). pino formats a child's bindings
 * once, without the bindings formatter: they are redacted here.
 */
function lazyChild(parent: PinoLogger<never>, fields: LogFields): Logger {
  let made: Logger | null = null;
  const real = (): Logger => (made ??= wrap(parent.child(redactFields(fields))));
  const at = (level: LogLevel) => (m: string, f?: LogFields): void => {
    if (made || parent.isLevelEnabled(level)) real()[level](m, f);
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => real().child(more),
  };
}

export function createLogger(opts: { level?: LogLevel; format?: LogFormat; sink?: LogSink; base?: LogFields } = {}): Logger {
  const format = opts.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const sink: LogSink = opts.sink ?? (stderrSink ??= batchedStderr());
  const journal = opts.sink === undefined && format === 'json' && isJournalStream(2);
  // pino tells a stream that asks for metadata the level of the line it is about to write.
  const stream = {
    [symbols.needsMetadataGsym]: true as const,
    lastLevel: 30,
    write(line: string): void {
      if (format === 'pretty') sink.write(prettyLine(line));
      else if (journal) sink.write(priorityPrefix(LEVEL_NAMES[this.lastLevel] ?? 'info') + line);
      else sink.write(line);
    },
  };
  const root = pino<never>({
    level: opts.level ?? 'info',
    base: null,
    messageKey: 'msg',
    // Errors are flattened by the redaction pass (message and code), not pino's serializer.
    serializers: { err: (e: unknown) => e },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: {
      level: (label) => ({ level: label }),
      log: (fields) => redactFields(fields),
    },
  }, stream);
  return wrap(root).child(opts.base ?? {});
}

/** A logger that keeps lines in memory; for tests that assert a log line was written. */
export function createMemoryLogger(level: LogLevel = 'debug'): { logger: Logger; lines: Array<LogFields & { level: string; msg: string }> } {
  const lines: Array<LogFields & { level: string; msg: string }> = [];
  const logger = createLogger({ level, format: 'json', sink: { write: (l) => lines.push(JSON.parse(l) as LogFields & { level: string; msg: string }) } });
  return { logger, lines };
}
