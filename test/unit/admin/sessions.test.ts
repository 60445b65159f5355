// ApiSessions on a fake clock with a stand-in user directory: expiry, reload from the file (expired
// ones dropped), the per-user bound, a damaged file refused with a precise error, and verification
// against the user's current password, login privilege and disabled flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiSessions, MAX_SESSIONS_PER_USER } from '../../../core/admin/sessions.ts';
import type { ArchiveStore, UserRecord } from '../../../core/storage/types.ts';
import { isPosternError } from '../../../core/errors.ts';

function user(name: string, extra: Partial<UserRecord> = {}): UserRecord {
  return {
    name, addresses: [], domains: [], pop3Users: [], createdAt: '', passwordHash: 'scrypt$1', privileges: ['login'], groups: [],
    imapAccess: false, webAccess: false, disabled: false, ...extra,
  } as UserRecord;
}

function setup(): { dir: string; users: Map<string, UserRecord>; clock: { t: number }; make: () => ApiSessions } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-sessions-unit-'));
  const users = new Map<string, UserRecord>([['alice', user('alice')]]);
  const archive = { getUser: async (n: string) => users.get(n) ?? null } as unknown as ArchiveStore;
  const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
  return { dir, users, clock, make: () => new ApiSessions({ file: join(dir, 'api-sessions.json'), archive, ttlMs: 3_600_000, now: () => clock.t }) };
}

test('a session expires after its lifetime, also across a reload', async () => {
  const { dir, users, clock, make } = setup();
  try {
    const sessions = make();
    const { token, session } = await sessions.create(users.get('alice') as UserRecord, '127.0.0.1', 'cli');
    assert.equal(session.expiresAt, '2026-01-01T01:00:00.000Z');
    assert.equal((await sessions.verify(token))?.user, 'alice');
    clock.t += 3_599_000;
    assert.equal((await make().verify(token))?.session.id, session.id, 'read back from the file');
    clock.t += 1000;
    assert.equal(await sessions.verify(token), null, 'expired at expiresAt');
    assert.equal(await make().verify(token), null);
    assert.deepEqual(make().list(null), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a changed password, a lost login privilege or a disabled user ends the session', async () => {
  const { dir, users, make } = setup();
  try {
    const sessions = make();
    const alice = users.get('alice') as UserRecord;
    for (const change of [{ passwordHash: 'scrypt$2' }, { privileges: [] }, { disabled: true }, { passwordHash: null }] as Array<Partial<UserRecord>>) {
      users.set('alice', alice);
      const { token } = await sessions.create(alice, '', '');
      users.set('alice', { ...alice, ...change });
      assert.equal(await sessions.verify(token), null, JSON.stringify(change));
      users.set('alice', alice);
      assert.equal(await sessions.verify(token), null, `${JSON.stringify(change)}: ended, not suspended`);
    }
    await assert.rejects(sessions.create({ ...alice, disabled: true }, '', ''), (e) => isPosternError(e, 'FORBIDDEN'));
    assert.equal(await sessions.verify('pst_' + 'A'.repeat(43)), null);
    assert.equal(await sessions.verify('not a token'), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a user holds at most MAX_SESSIONS_PER_USER sessions: a new one ends the oldest', async () => {
  const { dir, users, clock, make } = setup();
  try {
    const sessions = make();
    const tokens: string[] = [];
    for (let i = 0; i <= MAX_SESSIONS_PER_USER; i++) {
      clock.t += 1000;
      tokens.push((await sessions.create(users.get('alice') as UserRecord, '', `n${i}`)).token);
    }
    assert.equal(sessions.list('alice').length, MAX_SESSIONS_PER_USER);
    assert.equal(await sessions.verify(tokens[0] as string), null);
    assert.equal((await sessions.verify(tokens[1] as string))?.user, 'alice');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a damaged sessions file is refused with its name', () => {
  const { dir, make } = setup();
  try {
    writeFileSync(join(dir, 'api-sessions.json'), '{"version":1,"sessions":[{"id":"x"}]}');
    assert.throws(make, /API sessions file ".*api-sessions.json" is damaged/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
