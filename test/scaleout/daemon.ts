// Daemon bookkeeping for the scale-out engines: is a pid alive, read a pid file, stop a daemon by its
// pid file (SIGTERM, then SIGKILL after a grace period) and wait until it is really gone, and the tail
// of a log for failure reports. Trusts only the pid files the engines' own daemons wrote.
// A killed daemon whose parent is not reaping it stays a zombie: a zombie counts as gone.
import { existsSync, readFileSync } from 'node:fs';
import { sleep } from '../interop/harness.ts';

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..." — the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The first line of a pid file as a pid, or undefined when the file is missing or not a pid. */
export function readPidFile(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const first = readFileSync(path, 'utf8').split('\n', 1)[0]?.trim() ?? '';
  return /^[1-9][0-9]*$/.test(first) ? Number(first) : undefined;
}

/** Waits until `pid` is gone; false at the deadline. */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** SIGTERM `pid`, SIGKILL after `graceMs`; resolves once it is gone (throws if even SIGKILL did not end it). */
export async function terminate(pid: number, graceMs = 10_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitGone(pid, graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  if (!(await waitGone(pid, 5_000))) throw new Error(`Process ${pid} is still running after SIGKILL`);
}

/** The last `lines` lines of a text file, or a note that it does not exist. */
export function tailFile(path: string, lines = 30): string {
  if (!existsSync(path)) return `(no ${path})`;
  const text = readFileSync(path, 'utf8');
  return text.split('\n').slice(-lines - 1).join('\n');
}
