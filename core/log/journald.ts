// Log lines for the systemd journal. Under systemd, stderr is a stream to journald and JOURNAL_STREAM
// names it ("device:inode"); journald reads a leading "<N>" on each line as the syslog priority, so
// `journalctl -p warning -u postern` filters by level. Anywhere else the lines stay bare JSON.
import { fstatSync } from 'node:fs';

/** syslog priorities of our levels (RFC 5424: 3 error, 4 warning, 6 informational, 7 debug). */
const PRIORITY: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };

/** True when file descriptor `fd` is the journal stream systemd announced in JOURNAL_STREAM. */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1] ?? '') && st.ino === BigInt(m[2] ?? '');
  } catch {
    return false;
  }
}

export function priorityPrefix(level: string): string {
  return `<${PRIORITY[level] ?? 6}>`;
}
