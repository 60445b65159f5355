// Where `postern login` keeps API session tokens for the CLI: $POSTERN_SESSION_FILE, else
// $XDG_CONFIG_HOME/postern/sessions.json (~/.config/postern/sessions.json), mode 0600 in a 0700
// directory, one session per admin API URL. The file is the current Unix user's, not the server's:
// the CLI signs in as an archive user there, while the admin token stays in the data directory.
// Validates what it reads (a damaged or foreign file is ignored); hands the client a token for a URL.
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';

const entry = z.object({ user: z.string().min(1).max(64), token: z.string().regex(/^pst_[A-Za-z0-9_-]{43}$/), expiresAt: z.string() });
const file = z.object({ version: z.literal(1), sessions: z.record(z.string(), entry) });
export type StoredCliSession = z.infer<typeof entry>;

export function sessionFilePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.POSTERN_SESSION_FILE) return env.POSTERN_SESSION_FILE;
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'postern', 'sessions.json');
}

function readAll(path: string): Record<string, StoredCliSession> {
  try {
    const parsed = file.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return parsed.success ? parsed.data.sessions : {};
  } catch {
    return {};
  }
}

function writeAll(path: string, sessions: Record<string, StoredCliSession>): void {
  if (Object.keys(sessions).length === 0) {
    rmSync(path, { force: true });
    return;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ version: 1, sessions }, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** The stored, unexpired session for an admin API URL, or null. */
export function readSession(url: string, path = sessionFilePath()): StoredCliSession | null {
  const s = readAll(path)[url];
  return s && Date.parse(s.expiresAt) > Date.now() ? s : null;
}

export function saveSession(url: string, session: StoredCliSession, path = sessionFilePath()): void {
  writeAll(path, { ...readAll(path), [url]: session });
}

/** Forget the session for a URL (the file goes when it was the last); returns what was stored, expired or not. */
export function forgetSession(url: string, path = sessionFilePath()): StoredCliSession | null {
  const all = readAll(path);
  const s = all[url] ?? null;
  if (s) {
    delete all[url];
    writeAll(path, all);
  }
  return s;
}
