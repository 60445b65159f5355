// Short-lived API tokens ("sessions") for users of the admin API, so a signed-in user pays one scrypt
// check when the token is made (POST /api/v1/sessions with HTTP Basic) instead of one per request.
// A token is "pst_" + 43 base64url characters (256 random bits); only its SHA-256 is kept, in
// <dataDir>/api-sessions.json (mode 0600, replaced atomically), with the user, expiry and a fingerprint
// of the user's password hash. A token stops working when it expires, is revoked, or its user is
// removed or disabled, loses the `login` privilege or gets another password (or none): checked on every use, so no
// change elsewhere has to remember to revoke anything. Trusts the archive's user records; hands the
// server a principal for a presented token.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { PosternError } from '../errors.ts';
import type { ArchiveStore, UserRecord } from '../storage/types.ts';

export const SESSION_TOKEN = /^pst_[A-Za-z0-9_-]{43}$/;
/** Sessions one user may hold at once; making one more ends their oldest. */
export const MAX_SESSIONS_PER_USER = 20;
const MAX_SESSIONS = 10_000;

const stored = z.strictObject({
  id: z.string().regex(/^[a-f0-9]{16}$/),
  user: z.string().min(1).max(64),
  hash: z.string().regex(/^[a-f0-9]{64}$/),
  credential: z.string().regex(/^[a-f0-9]{64}$/),
  createdAt: z.string(),
  expiresAt: z.string(),
  remote: z.string().max(64),
  label: z.string().max(100),
});
const storedFile = z.strictObject({ version: z.literal(1), sessions: z.array(stored).max(MAX_SESSIONS) });
type StoredSession = z.infer<typeof stored>;

/** A session as the API shows it (never the token or its hash). */
export interface ApiSession {
  id: string;
  user: string;
  createdAt: string;
  expiresAt: string;
  remote: string;
  label: string;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const credentialOf = (u: UserRecord): string => sha256(`postern-session-credential\0${u.passwordHash ?? ''}`);
const shown = ({ id, user, createdAt, expiresAt, remote, label }: StoredSession): ApiSession => ({ id, user, createdAt, expiresAt, remote, label });

export class ApiSessions {
  private readonly byHash = new Map<string, StoredSession>();
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly deps: { file: string; archive: ArchiveStore; ttlMs: number; now?: () => number }) {
    let text: string | null = null;
    try {
      text = readFileSync(deps.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PosternError('STORAGE_IO', `Cannot read the API sessions "${deps.file}": ${(err as Error).message}`);
    }
    if (text !== null) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
      const r = storedFile.safeParse(parsed);
      if (!r.success) throw new PosternError('STORAGE_IO', `The API sessions file "${deps.file}" is damaged; remove it to sign every API session out`);
      const now = this.now();
      for (const s of r.data.sessions) if (Date.parse(s.expiresAt) > now) this.byHash.set(s.hash, s);
    }
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  get ttlMs(): number {
    return this.deps.ttlMs;
  }

  /** A new token for a user who just signed in; the token is returned once and never kept. */
  async create(user: UserRecord, remote: string, label: string): Promise<{ session: ApiSession; token: string }> {
    if (!user.privileges.includes('login') || user.passwordHash === null || user.disabled) throw new PosternError('FORBIDDEN', `"${user.name}" may not sign in`);
    this.prune();
    const mine = [...this.byHash.values()].filter((s) => s.user === user.name).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const old of mine.slice(0, Math.max(0, mine.length - MAX_SESSIONS_PER_USER + 1))) this.byHash.delete(old.hash);
    if (this.byHash.size >= MAX_SESSIONS) throw new PosternError('UNAVAILABLE', `${MAX_SESSIONS} API sessions are open; try again when some have expired`);
    const token = 'pst_' + randomBytes(32).toString('base64url');
    const now = this.now();
    const s: StoredSession = {
      id: randomBytes(8).toString('hex'), user: user.name, hash: sha256(token), credential: credentialOf(user),
      createdAt: new Date(now).toISOString(), expiresAt: new Date(now + this.deps.ttlMs).toISOString(),
      remote: remote.slice(0, 64), label: label.slice(0, 100),
    };
    this.byHash.set(s.hash, s);
    await this.save();
    return { session: shown(s), token };
  }

  /** The user and session a presented token signs in, or null (unknown, expired, revoked, or the user changed). */
  async verify(token: string): Promise<{ user: string; session: ApiSession } | null> {
    if (!SESSION_TOKEN.test(token)) return null;
    const s = this.byHash.get(sha256(token));
    if (!s) return null;
    if (Date.parse(s.expiresAt) <= this.now()) {
      this.byHash.delete(s.hash);
      return null;
    }
    const user = await this.deps.archive.getUser(s.user);
    if (!user || user.disabled || !user.privileges.includes('login') || user.passwordHash === null || credentialOf(user) !== s.credential) {
      this.byHash.delete(s.hash);
      await this.save();
      return null;
    }
    return { user: s.user, session: shown(s) };
  }

  /** Open sessions, of one user or (null) of everyone. */
  list(user: string | null): ApiSession[] {
    this.prune();
    return [...this.byHash.values()].filter((s) => user === null || s.user === user).map(shown).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  get(id: string): ApiSession | null {
    const s = [...this.byHash.values()].find((x) => x.id === id);
    return s && Date.parse(s.expiresAt) > this.now() ? shown(s) : null;
  }

  /** End a session at once; false when there is none with that id. */
  async revoke(id: string): Promise<boolean> {
    const s = [...this.byHash.values()].find((x) => x.id === id);
    if (!s) return false;
    this.byHash.delete(s.hash);
    await this.save();
    return true;
  }

  private prune(): void {
    const now = this.now();
    for (const [hash, s] of this.byHash) if (Date.parse(s.expiresAt) <= now) this.byHash.delete(hash);
  }

  /** Write the open sessions: a temporary file, fsync'd, renamed over the old one. Writes run one at a time. */
  private save(): Promise<void> {
    const run = async (): Promise<void> => {
      const { file } = this.deps;
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      const tmp = `${file}.tmp`;
      const handle = await open(tmp, 'w', 0o600);
      try {
        await handle.writeFile(JSON.stringify({ version: 1, sessions: [...this.byHash.values()] }));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
    };
    const next = this.writing.then(run, run);
    this.writing = next.catch(() => undefined);
    return next;
  }
}
