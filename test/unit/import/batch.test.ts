// Batch import pieces: the CSV mailbox list (quotes, columns, per-row errors), job targets resolved
// against a user list, the source deletion rules, and the option rules of import-imap-batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvMailboxes, parseCsv } from '../../../core/import/batch-csv.ts';
import { describeTargets, resolveTargets, targetsSchema } from '../../../core/jobs/targets.ts';
import { mayDelete } from '../../../core/import/source.ts';
import { imapBatchKind } from '../../../core/import/imap-batch-kind.ts';
import { OAuth2Tokens } from '../../../core/import/oauth2.ts';
import type { ImportDeps } from '../../../core/import/source.ts';
import type { UserRecord } from '../../../core/storage/types.ts';

test('CSV: quoted fields, escaped quotes, CRLF, a newline inside quotes, blank lines skipped', () => {
  const rows = parseCsv('a,b\r\n"x,1","say ""hi"""\n\n"multi\nline",z\n');
  assert.deepEqual(rows, [
    { line: 1, fields: ['a', 'b'] },
    { line: 2, fields: ['x,1', 'say "hi"'] },
    { line: 4, fields: ['multi\nline', 'z'] },
  ]);
  assert.throws(() => parseCsv('a,"b\n'), /quoted field is not closed/);
});

test('CSV mailboxes: columns in any order, user from the address, relative password files, bad rows reported alone', () => {
  const text = [
    'User,Login,Password,PasswordFile,Address',
    'alice,alice@mail,secret,,alice@example.test',
    ',bob@mail,,bob.pw,Bob@example.test',
    'carol,carol@mail,,,carol@example.test',
    'dave,alice@mail,x,,dave@example.test',
    'Bad Name,eve@mail,x,,',
    'frank,frank@mail,x,,not-an-address',
    'short,row',
  ].join('\n');
  const rows = csvMailboxes(text, '/etc/postern');
  assert.equal(rows.length, 7);
  assert.deepEqual(rows[0], { ok: true, mailbox: { line: 2, login: 'alice@mail', address: 'alice@example.test', user: 'alice', password: 'secret' } });
  assert.deepEqual(rows[1], { ok: true, mailbox: { line: 3, login: 'bob@mail', address: 'Bob@example.test', user: 'bob', passwordFile: '/etc/postern/bob.pw' } });
  const reasons = rows.filter((r) => !r.ok).map((r) => (r.ok ? '' : r.reason));
  assert.deepEqual(reasons.map((r) => r.replace(/^CSV line (\d+): .*$/, '$1')), ['4', '5', '6', '7', '8']);
  assert.match(reasons[0] ?? '', /give exactly one of password, passwordFile/);
  assert.match(reasons[1] ?? '', /"alice@mail" is listed twice/);
  assert.match(reasons[2] ?? '', /"Bad Name" is not a valid user name/);
  assert.match(reasons[3] ?? '', /"not-an-address" is not an e-mail address/);
  assert.match(reasons[4] ?? '', /2 fields where the header has 5/);
  assert.ok(!reasons.join('\n').includes('secret'), 'no password in a reason');
  assert.throws(() => csvMailboxes('login,pass\n', '/'), /unknown column\(s\) "pass"/);
  assert.throws(() => csvMailboxes('user,password\n', '/'), /"login" column is needed/);
  assert.throws(() => csvMailboxes('', '/'), /empty/);
});

const user = (name: string, extra: Partial<UserRecord> = {}): UserRecord => ({
  name, addresses: [`${name}@example.test`], domains: [], pop3Users: [], createdAt: '', passwordHash: null, privileges: [], groups: [],
  imapAccess: false, webAccess: false, fullName: '', source: 'local', dn: null, directoryId: null, disabled: false, ...extra,
});

test('job targets: all, except, only, group; users without an address or disabled never; ";"-separated lists', () => {
  const users = [user('carol', { groups: ['sales'] }), user('alice', { groups: ['sales'] }), user('bob'), user('noaddr', { addresses: [] }), user('gone', { disabled: true, groups: ['sales'] })];
  const names = (t: unknown): string[] => resolveTargets(targetsSchema.parse(t), users).map((u) => u.name);
  assert.deepEqual(names({ mode: 'all' }), ['alice', 'bob', 'carol']);
  assert.deepEqual(names({ mode: 'except', users: 'alice; carol' }), ['bob']);
  assert.deepEqual(names({ mode: 'except', users: [] }), ['alice', 'bob', 'carol']);
  assert.deepEqual(names({ mode: 'only', users: ['carol', 'alice', 'carol'] }), ['alice', 'carol']);
  assert.deepEqual(names({ mode: 'group', group: 'sales' }), ['alice', 'carol']);
  assert.throws(() => names({ mode: 'only', users: 'alice;nobody;noaddr' }), /"nobody", "noaddr"/);
  assert.equal(targetsSchema.safeParse({ mode: 'only', users: '' }).success, false);
  assert.equal(targetsSchema.safeParse({ mode: 'group' }).success, false);
  assert.equal(targetsSchema.safeParse({ mode: 'except', users: ['Not Valid'] }).success, false);
  assert.equal(describeTargets(targetsSchema.parse({ mode: 'except', users: 'a;b' })), 'every user with an address except a;b');
  assert.equal(describeTargets({ mode: 'group', group: 'sales' }), 'members of group "sales" with an address');
});

test('deletion rules: off, older than N days, skip unread; an unknown date or read state keeps the message', () => {
  const now = Date.UTC(2026, 0, 31);
  const day = 86_400_000;
  const old = new Date(now - 40 * day);
  const recent = new Date(now - 5 * day);
  const rules = (r: Partial<{ deleteAfterArchive: boolean; deleteOlderThanDays: number; deleteSkipUnread: boolean }>) => ({ deleteAfterArchive: true, deleteOlderThanDays: 0, deleteSkipUnread: false, ...r });
  assert.equal(mayDelete(rules({ deleteAfterArchive: false }), { date: old, unread: false }, now), false);
  assert.equal(mayDelete(rules({}), { date: null, unread: null }, now), true);
  assert.equal(mayDelete(rules({ deleteOlderThanDays: 30 }), { date: old, unread: true }, now), true);
  assert.equal(mayDelete(rules({ deleteOlderThanDays: 30 }), { date: recent, unread: false }, now), false);
  assert.equal(mayDelete(rules({ deleteOlderThanDays: 30 }), { date: null, unread: false }, now), false);
  assert.equal(mayDelete(rules({ deleteSkipUnread: true }), { date: recent, unread: true }, now), false);
  assert.equal(mayDelete(rules({ deleteSkipUnread: true }), { date: recent, unread: false }, now), true);
  assert.equal(mayDelete(rules({ deleteSkipUnread: true }), { date: recent, unread: null }, now), false);
});

test('import-imap-batch options: CSV or directory, each with its own credentials, deletion rules need deletion', () => {
  const kind = imapBatchKind({ tokens: new OAuth2Tokens() } as unknown as ImportDeps);
  const problems = (o: Record<string, unknown>): string => {
    const r = kind.schema.safeParse({ server: 'mail.example', ...o });
    return r.success ? 'OK' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  };
  assert.equal(problems({ mailboxes: 'csv', csvFile: '/x.csv', createUsers: true }), 'OK');
  assert.equal(problems({ mailboxes: 'directory', username: 'master', passwordFile: '/pw', targets: { mode: 'except', users: 'a;b' } }), 'OK');
  assert.equal(problems({ mailboxes: 'directory', oauth2: { flow: 'client-credentials', tokenUrl: 'http://127.0.0.1:1/token', clientId: 'app', clientSecretEnv: 'SECRET' } }), 'OK');
  assert.match(problems({ mailboxes: 'csv' }), /csvFile: a CSV batch needs csvFile/);
  assert.match(problems({ mailboxes: 'csv', csvFile: '/x', username: 'm', password: 'p' }), /username: .*only meaningful with mailboxes "directory"/);
  assert.match(problems({ mailboxes: 'directory', password: 'p' }), /username: a directory batch needs/);
  assert.match(problems({ mailboxes: 'directory', username: 'm' }), /password: give exactly one/);
  assert.match(problems({ mailboxes: 'directory', username: 'm', password: 'p', createUsers: true }), /createUsers: only meaningful/);
  assert.match(problems({ mailboxes: 'directory', username: 'm', password: 'p', oauth2: { flow: 'service-account', keyFile: '/k.json' } }), /oauth2: log in with OAuth2 or with a master account/);
  assert.match(problems({ mailboxes: 'csv', csvFile: '/x', deleteSkipUnread: true }), /deleteAfterArchive: deletion rules/);
  assert.match(problems({ mailboxes: 'csv', csvFile: '/x', concurrency: 0 }), /concurrency/);
  assert.deepEqual([...(kind.hostLocal ?? [])].sort(), ['csvFile', 'oauth2', 'passwordEnv', 'passwordFile']);
});
