// One structured logger: JSON lines in production, a readable line on a terminal. Child loggers carry
// connection and message ids. Fields named like credentials are redacted before anything is written.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';
export type LogFields = Record<string, unknown>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /pass(word)?|secret|token|authorization|credential/i;

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

function redact(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET_KEY.test(k)) out[k] = '[redacted]';
    else if (v instanceof Error) out[k] = { message: v.message, ...('code' in v ? { code: (v as { code: unknown }).code } : {}) };
    else out[k] = v;
  }
  return out;
}

function prettyValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

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

export function createLogger(opts: { level?: LogLevel; format?: LogFormat; sink?: LogSink; base?: LogFields } = {}): Logger {
  const min = LEVELS[opts.level ?? 'info'];
  const format = opts.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const sink: LogSink = opts.sink ?? (stderrSink ??= batchedStderr());
  const make = (base: LogFields): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
      if (LEVELS[level] < min) return;
      const all = redact({ ...base, ...fields });
      if (format === 'json') {
        sink.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }) + '\n');
      } else {
        const kv = Object.entries(all).map(([k, v]) => `${k}=${prettyValue(v)}`).join(' ');
        const time = new Date().toISOString().slice(11, 23);
        sink.write(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${kv ? ' ' + kv : ''}\n`);
      }
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make(opts.base ?? {});
}

/** A logger that keeps lines in memory; for tests that assert a log line was written. */
export function createMemoryLogger(level: LogLevel = 'debug'): { logger: Logger; lines: Array<LogFields & { level: string; msg: string }> } {
  const lines: Array<LogFields & { level: string; msg: string }> = [];
  const logger = createLogger({ level, format: 'json', sink: { write: (l) => lines.push(JSON.parse(l) as LogFields & { level: string; msg: string }) } });
  return { logger, lines };
}
