// The lock of a backup repository: one writer (a backup, a prune) at a time, across processes. The
// file names its holder (pid and host); a holder on this host that no longer runs is taken over.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { PosternError } from '../errors.ts';
import { paths } from './manifest.ts';

/** One backup per repository at a time (across processes): a lock file naming its holder. */
export function takeLock(repo: string): () => void {
  const file = paths.lock(repo);
  const me = `${process.pid} ${hostname()}\n`;
  try {
    writeFileSync(file, me, { flag: 'wx', mode: 0o600 });
  } catch {
    const [pid, host] = readFileSync(file, 'utf8').trim().split(' ');
    const alive = host === hostname() && pid !== undefined && isAlive(Number(pid));
    if (alive || host !== hostname()) throw new PosternError('CONFLICT', `Backup "${repo}" is being written by process ${pid ?? '?'} on ${host ?? '?'} (lock file "${file}")`);
    writeFileSync(file, me, { mode: 0o600 });
  }
  return () => rmSync(file, { force: true });
}

function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

