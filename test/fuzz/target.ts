// What a fuzz target is: a name (also its fixture folder under test/fixtures/fuzz/), seed inputs, a
// dictionary of tokens that mutations insert, and a check that runs one input (bytes) through the code
// under test and throws when a property is violated. Hangs and runaway memory are caught by the harness
// (harness.ts), not here. Targets are plain data: importing a targets file runs nothing.

export interface FuzzTarget {
  /** "<group>.<what>", e.g. "mime.addresses"; the fixture folder test/fixtures/fuzz/<name>/. */
  name: string;
  /** Seed inputs (loaded lazily, in the worker). */
  seeds(): Buffer[];
  /** Tokens that mutations insert (delimiters, keywords, escapes). */
  dictionary?: string[];
  /** Longest generated input (seeds longer than this are used as they are). Default 64 KiB. */
  maxLength?: number;
  /** One-time set-up in the worker before the first call, outside the per-call deadline (e.g. loading a large library). */
  prepare?(): Promise<void>;
  /**
   * Closes what the target left open (servers, sockets) after its last call, before the thread is ended:
   * ending a worker while it parses HTTP on a socket aborts the whole process (a Node bug), so nothing
   * may still be reading when it is.
   */
  cleanup?(): Promise<void>;
  /** Runs one input; throws (an Error) when the code under test breaks a property. */
  run(input: Buffer): void | Promise<void>;
}

export interface FuzzGroup {
  group: string;
  targets: FuzzTarget[];
}

/** A property violation, with a short description of the offending value. */
export class PropertyError extends Error {
  override name = 'PropertyError';
}

export function check(ok: unknown, what: string, detail?: unknown): asserts ok {
  if (!ok) throw new PropertyError(detail === undefined ? what : `${what}: ${preview(detail)}`);
}

export function preview(v: unknown, max = 160): string {
  let s: string;
  if (Buffer.isBuffer(v)) s = JSON.stringify(v.subarray(0, max).toString('latin1'));
  else if (typeof v === 'string') s = JSON.stringify(v.slice(0, max));
  else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = String(v);
    }
  }
  return s.length > max + 20 ? `${s.slice(0, max + 20)}…` : s;
}

/** The same bytes cut into chunks of `size` bytes (size 0: one chunk). */
export function chunked(bytes: Buffer, size: number): Buffer[] {
  if (size <= 0 || bytes.length <= size) return [bytes];
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/** Chunk sizes every streaming target is checked with: one byte, a few odd sizes, and whole. */
export const CHUNKINGS = [1, 2, 3, 7, 64, 1021, 0];

/** Chunkings for a given length: byte-by-byte only for short inputs, so a call stays fast. */
export function chunkingsFor(length: number): number[] {
  return CHUNKINGS.filter((n) => n === 0 || length / n <= 4096);
}

export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && a.equals(b);
}
