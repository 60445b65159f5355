// Shared between the fuzz harness's main thread (harness.ts) and its worker (worker.ts): the job list,
// the messages the worker posts, and the layout of the shared memory the main thread watches.

export interface Job {
  target: string;
  mode: 'fuzz' | 'replay';
  /** The fixture replayed (mode 'replay'). */
  file?: string;
}

export interface WorkerInput {
  /** file: URL of the targets module (exports `group`). */
  module: string;
  jobs: Job[];
  /** First job to run (after a worker was killed, the one after the job that hung). */
  start: number;
  sab: SharedArrayBuffer;
  seed: number;
  runs: number;
  timeLimitMs: number;
}

export type WorkerMessage =
  | { type: 'result'; job: number; runs: number; ms: number; seed?: number; failure: { message: string; input: Uint8Array } | null }
  | { type: 'done' };

/** Int32 slots at the start of the shared buffer. */
export const CTL = {
  /** 1 while a call into the code under test runs. */
  busy: 0,
  /** Bumped before and after every call: unchanged while one call runs. */
  counter: 1,
  /** Index of the job the current call belongs to. */
  job: 2,
  /** Bytes of the current input stored after DATA_OFFSET. */
  stored: 3,
  /** The current input's real length (it is cut at the buffer's capacity). */
  length: 4,
  size: 8,
} as const;

export const DATA_OFFSET = 64;
/** Inputs longer than this are recorded cut (fuzz inputs stay far below). */
export const DATA_CAPACITY = 8 * 1024 * 1024;
