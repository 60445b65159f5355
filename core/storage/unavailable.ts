// Tells a storage engine that cannot be reached right now (PostgreSQL down or restarting, the S3
// endpoint refusing connections or answering 5xx, a RocksDB reopen in progress) from a failure of the
// data itself. The queue manager retries the first kind without counting it towards quarantine: an
// outage of hours must not turn acknowledged mail into "corrupt" entries.
// Trusts nothing about the error's shape: walks `cause` and AggregateError members defensively.
import { PosternError } from '../errors.ts';

/** Socket-level failures: the peer is not there or went away. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
/**
 * PostgreSQL SQLSTATEs of a server that is not serving: class 08 (connection exception), 57P01–57P03
 * (admin shutdown, crash shutdown, cannot connect now: starting up), 53300 (too many connections).
 */
const PG_UNAVAILABLE = /^(08...|57P0[123]|53300)$/;
/** What node-postgres and its pool say when the connection ends or never comes. */
const PG_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down)/i;
/** AWS SDK error names of a request that got no usable answer. */
const SDK_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'ServiceUnavailable', 'SlowDown', 'InternalError']);

function unavailableCause(err: unknown, depth: number): boolean {
  if (depth > 8 || typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; errors?: unknown; $metadata?: { httpStatusCode?: unknown } };
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || PG_UNAVAILABLE.test(e.code))) return true;
  if (typeof e.name === 'string' && SDK_NAMES.has(e.name)) return true;
  if (typeof e.message === 'string' && PG_MESSAGES.test(e.message)) return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && status >= 500) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => unavailableCause(x, depth + 1))) return true;
  return unavailableCause(e.cause, depth + 1);
}

/**
 * True when `err` says the storage could not be reached (STORAGE_RECOVERING, or STORAGE_IO caused by a
 * network, connection or server-availability failure), also when wrapped by another typed error (a
 * plugin hook that read the archive); false for everything else, corrupt data included.
 */
export function isStorageUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e instanceof PosternError; depth++) {
    if (e.code === 'STORAGE_RECOVERING') return true;
    if (e.code === 'STORAGE_IO') return unavailableCause(e.cause, 0);
    if (e.code === 'INTAKE_CORRUPT' || e.code === 'HOOK_TIMEOUT') return false;
    e = e.cause;
  }
  return false;
}
