// Directory sync and sign-in against a real OpenLDAP (Debian slapd on a loopback port, AD-like schema:
// user/group classes, sAMAccountName, proxyAddresses, groups in groups): the configuration example of
// deploy/ldap/README.md used as written (url and passwordFile swapped in), a dry run that changes nothing,
// a sync creating users with their addresses and nested groups, sign-in over IMAP by an LDAP bind (the
// directory password never stored) and over the admin API's HTTP Basic, a wrong password refused and then throttled, a second sync after
// directory changes (updated, renamed by entryUUID, disabled) where the user gone from the directory keeps
// his archive and can no longer sign in, `postern user rename` of a local user keeping the archive and
// recorded in the audit log, the directory down (a clear error, a failed run, IMAP NO [UNAVAILABLE]) and
// every run's result kept in the jobs history.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { configSchema } from '../../core/config/schema.ts';
import type { JobResult } from '../../core/jobs/types.ts';
import type { AuditRecord } from '../../core/audit/types.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { runCli } from '../helpers/cli.ts';
import { ImapClient } from '../protocol/imap-client.ts';
import { SmtpClient } from '../helpers/smtp-client.ts';
import { startSlapd, SUFFIX, type Slapd } from './slapd.ts';
import { checkBind, openSyncClient } from '../../core/directory/ldap-connection.ts';

const DOC = fileURLToPath(new URL('../../deploy/ldap/README.md', import.meta.url));
const SYNC_PW = 'sync-account-secret';

const person = (uid: string, o: { cn: string; sn: string; display: string; mail?: string; proxy?: string[]; password: string }): string => [
  `dn: cn=${o.cn},ou=people,${SUFFIX}`, 'objectClass: user', `cn: ${o.cn}`, `sn: ${o.sn}`, `displayName: ${o.display}`, `sAMAccountName: ${uid}`,
  ...(o.mail ? [`mail: ${o.mail}`] : []), ...(o.proxy ?? []).map((p) => `proxyAddresses: ${p}`), `userPassword: ${o.password}`, '',
].join('\n');
const group = (cn: string, members: string[]): string => [`dn: cn=${cn},ou=groups,${SUFFIX}`, 'objectClass: group', `cn: ${cn}`, ...members.map((m) => `member: ${m}`), ''].join('\n');
const P = (cn: string): string => `cn=${cn},ou=people,${SUFFIX}`;
const G = (cn: string): string => `cn=${cn},ou=groups,${SUFFIX}`;

const SEED = [
  [`dn: ${SUFFIX}`, 'objectClass: dcObject', 'objectClass: organization', 'dc: example', 'o: Example', ''].join('\n'),
  ...['people', 'groups', 'service'].map((ou) => [`dn: ou=${ou},${SUFFIX}`, 'objectClass: organizationalUnit', `ou: ${ou}`, ''].join('\n')),
  [`dn: cn=postern-sync,ou=service,${SUFFIX}`, 'objectClass: organizationalRole', 'objectClass: simpleSecurityObject', 'cn: postern-sync', `userPassword: ${SYNC_PW}`, ''].join('\n'),
  person('alice', { cn: 'Alice Archer', sn: 'Archer', display: 'Alice Archer', proxy: ['SMTP:alice@example.test', 'smtp:a.archer@example.test', 'X500:/o=Example/ou=Exchange/cn=alice'], password: 'alice-dir-pw' }),
  person('bob', { cn: 'Bob Baker', sn: 'Baker', display: 'Bob Baker', mail: 'bob@example.test', password: 'bob-dir-pw' }),
  person('carol', { cn: 'Carol Cooper', sn: 'Cooper', display: 'Carol Cooper', mail: 'carol@example.test', password: 'carol-dir-pw' }),
  person('Bad Name!', { cn: 'Broken Entry', sn: 'Entry', display: 'Broken', mail: 'broken@example.test', password: 'x' }),
  group('Sales', [P('Alice Archer')]),
  group('EMEA Staff', [G('Sales')]),
  group('All Staff', [G('EMEA Staff'), P('Bob Baker')]),
  // A cycle: each contains the other; Carol is in one of them.
  group('Loop A', [G('Loop B'), P('Carol Cooper')]),
  group('Loop B', [G('Loop A')]),
].join('\n');

/** The YAML example of deploy/ldap/README.md with the test's server and password file. */
function exampleConfig(url: string, passwordFile: string): { directory: unknown; auth: unknown } {
  const text = readFileSync(DOC, 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(text)?.[1];
  assert.ok(block, 'deploy/ldap/README.md has a YAML example');
  const doc = parseYaml(block) as { directory: { ldap: Record<string, unknown> }; auth: unknown };
  doc.directory.ldap.url = url;
  doc.directory.ldap.passwordFile = passwordFile;
  return doc;
}

async function imapLogin(port: number, user: string, password: string): Promise<string> {
  const c = await ImapClient.open(port);
  try {
    await c.readUnit();
    return (await c.cmd(`LOGIN ${user} "${password}"`)).status;
  } finally {
    c.close();
  }
}

async function deliver(server: TestServer, to: string, subject: string): Promise<void> {
  const smtp = await SmtpClient.open(server.smtpPort);
  await smtp.read();
  await smtp.cmd('EHLO test.example');
  await smtp.cmd('MAIL FROM:<partner@example.org>');
  await smtp.cmd(`RCPT TO:<${to}>`);
  assert.equal((await smtp.cmd('DATA')).code, 354);
  const end = await smtp.cmd(`From: partner@example.org\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n\r\nHello.\r\n.`);
  assert.equal(end.code, 250, end.text);
  await smtp.cmd('QUIT').catch(() => undefined);
  await server.settle();
}

describe('directory: LDAP sync and sign-in against OpenLDAP', () => {
  let slapd: Slapd;
  let server: TestServer;
  let imapPort = 0;
  const tmp = mkdtempSync(join(tmpdir(), 'postern-ldap-test-'));
  const cli = (...args: string[]): ReturnType<typeof runCli> => runCli(args, { dataDir: server.dataDir, adminPort: server.adminPort });
  const user = (name: string) => server.archive.getUser(name);
  const subjects = async (name: string): Promise<string[]> => {
    const out: string[] = [];
    for (const f of await server.archive.folders(name)) out.push(...(await server.archive.listEntries(name, f.folder)).map((e) => e.subject));
    return out;
  };
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`http://127.0.0.1:${server.adminPort}/api/v1/${path}`, {
      method, headers: { authorization: `Bearer ${readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim()}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: await res.json() as Record<string, unknown> };
  };

  before(async () => {
    slapd = await startSlapd();
    await slapd.add(SEED);
    const passwordFile = join(tmp, 'ldap-bind.password');
    writeFileSync(passwordFile, `${SYNC_PW}\n`, { mode: 0o600 });
    const example = configSchema.parse(exampleConfig(slapd.url, passwordFile));
    server = await startTestServer((c) => {
      c.directory = example.directory;
      c.auth = example.auth;
      c.plugins.push({ name: 'imap', config: { port: 0, tlsPort: 0, allowPlaintext: true } });
      Object.assign(c.signIn, { burst: 3, addressBurst: 100, baseDelayMs: 2000, maxWaitMs: 0 });
    });
    imapPort = server.running.app.service('imap').ports().port ?? 0;
  });

  after(async () => {
    await server?.stop();
    await slapd?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('a dry run lists what would be created and changes nothing', async () => {
    const r = await cli('directory', 'sync', '--dry-run');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Directory: 3 accounts, 5 groups/m);
    assert.match(r.stdout, /^create {3}alice\tAlice Archer\talice@example\.test, a\.archer@example\.test\tgroups all-staff, emea-staff, sales, staff$/m);
    assert.match(r.stdout, /^create {3}bob\t/m);
    assert.match(r.stdout, /^create {3}carol\tCarol Cooper\tcarol@example\.test\tgroups loop-a, loop-b, staff$/m);
    assert.match(r.stdout, /^problem {2}"cn=Broken Entry,ou=people,dc=example,dc=test": account name "Bad Name!" is not a valid user name$/m);
    for (const n of ['alice', 'bob', 'carol']) assert.equal(await user(n), null, `${n} not created by the dry run`);
  });

  it('a sync creates the users with addresses (proxyAddresses), nested groups, full name, DN and id', async () => {
    const r = await cli('directory', 'sync');
    assert.equal(r.code, 1, 'completed with errors: the broken entry is reported');
    assert.match(r.stdout, /^Directory sync completed-with-errors .*: 3 accounts, 0 users unchanged$/m);
    assert.match(r.stdout, /^created {2}alice, bob, carol$/m);
    const alice = await user('alice');
    assert.ok(alice);
    assert.deepEqual(alice.addresses, ['alice@example.test', 'a.archer@example.test'], 'SMTP: first, smtp: next, X500: ignored');
    assert.deepEqual([...alice.groups].sort(), ['all-staff', 'emea-staff', 'sales', 'staff']);
    assert.equal(alice.fullName, 'Alice Archer');
    assert.equal(alice.source, 'directory');
    assert.equal(alice.dn, P('Alice Archer'));
    assert.match(alice.directoryId ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(alice.passwordHash, null, 'no directory password is stored');
    assert.equal(alice.imapAccess, true, 'newUsers.imapAccess');
    assert.deepEqual(alice.privileges, ['login'], 'newUsers.privileges');
    assert.deepEqual([...((await user('bob'))?.groups ?? [])].sort(), ['all-staff', 'staff']);
    assert.equal(await server.archive.userByAddress('A.Archer@example.test'), 'alice');
    const shown = await cli('user', 'show', 'alice');
    assert.match(shown.stdout, /^Full name: Alice Archer$/m);
    assert.match(shown.stdout, /^Source: {4}directory \(cn=Alice Archer,ou=people,dc=example,dc=test\)$/m);
  });

  it('IMAP signs a directory user in by an LDAP bind; a wrong password is refused, then throttled', async () => {
    assert.match(await imapLogin(imapPort, 'alice', 'alice-dir-pw'), /^OK /);
    assert.match(await imapLogin(imapPort, 'a.archer@example.test', 'alice-dir-pw'), /^OK /, 'by address too');
    assert.match(await imapLogin(imapPort, 'alice', ''), /^(NO|BAD) /, 'an empty password is never an anonymous bind');
    assert.match(await imapLogin(imapPort, 'bob', 'wrong'), /^NO \[AUTHENTICATIONFAILED\]/);
    assert.match(await imapLogin(imapPort, 'bob', 'wrong'), /^NO \[AUTHENTICATIONFAILED\]/);
    assert.match(await imapLogin(imapPort, 'bob', 'wrong'), /^NO \[AUTHENTICATIONFAILED\]/);
    // The burst is spent: the next attempt is refused without asking the directory, even with the right password.
    assert.match(await imapLogin(imapPort, 'bob', 'bob-dir-pw'), /^NO \[AUTHENTICATIONFAILED\]/);
    const records: AuditRecord[] = [];
    for await (const rec of server.running.app.service('audit').list({})) records.push(rec);
    const logins = records.filter((x) => x.action === 'imap.login');
    assert.ok(logins.some((x) => x.actor === 'alice' && x.outcome === 'success'));
    assert.ok(logins.some((x) => x.target === 'bob' && x.details?.reason === 'wrong-password'));
    assert.ok(logins.some((x) => x.target === 'bob' && x.details?.reason === 'throttled'));
    // The admin API's HTTP Basic goes through the same check.
    const basic = (pw: string): Promise<Response> => fetch(`http://127.0.0.1:${server.adminPort}/api/v1/users/alice`, { headers: { authorization: `Basic ${Buffer.from(`alice:${pw}`).toString('base64')}` } });
    assert.equal((await basic('alice-dir-pw')).status, 200);
    assert.equal((await basic('not-her-password')).status, 401);
    assert.equal((await user('alice'))?.passwordHash, null, 'still no stored password after sign-ins');
  });

  it('a second sync follows the directory: changed, renamed by id, gone users disabled with their archive kept', async () => {
    await deliver(server, 'bob@example.test', 'For Bob before he left');
    await deliver(server, 'carol@example.test', 'For Carol');
    await slapd.modify([
      `dn: ${P('Alice Archer')}`, 'changetype: modify', 'replace: displayName', 'displayName: Alice Archer-Smith', '-',
      'delete: proxyAddresses', 'proxyAddresses: smtp:a.archer@example.test', '',
      `dn: ${G('Sales')}`, 'changetype: modify', 'delete: member', `member: ${P('Alice Archer')}`, '',
      `dn: ${P('Carol Cooper')}`, 'changetype: modify', 'replace: sAMAccountName', 'sAMAccountName: caroline', '',
      `dn: ${G('All Staff')}`, 'changetype: modify', 'delete: member', `member: ${P('Bob Baker')}`, '',
      `dn: ${P('Bob Baker')}`, 'changetype: delete', '',
    ].join('\n'));
    const dry = await cli('directory', 'sync', '--dry-run');
    assert.match(dry.stdout, /^rename {3}carol -> caroline$/m);
    assert.match(dry.stdout, /^disable {2}bob$/m);
    assert.match(dry.stdout, /^change {3}alice\t.*-address a\.archer@example\.test.*-group all-staff, -group emea-staff, -group sales, fullName/m);
    const r = await cli('directory', 'sync');
    assert.match(r.stdout, /^renamed {2}carol -> caroline$/m);
    assert.match(r.stdout, /^updated {2}alice$/m);
    assert.match(r.stdout, /^disabled {1}bob$/m);

    const alice = await user('alice');
    assert.deepEqual(alice?.addresses, ['alice@example.test']);
    assert.deepEqual(alice?.groups, ['staff'], 'directory groups gone, the configured new-user group kept');
    assert.equal(alice?.fullName, 'Alice Archer-Smith');
    const bob = await user('bob');
    assert.equal(bob?.disabled, true);
    assert.deepEqual(await subjects('bob'), ['For Bob before he left'], 'a user gone from the directory keeps his archive');
    assert.equal(await user('carol'), null);
    assert.deepEqual(await subjects('caroline'), ['For Carol'], 'the renamed user keeps her archive');
    assert.deepEqual(await subjects('carol'), []);
    assert.match(await imapLogin(imapPort, 'caroline', 'carol-dir-pw'), /^OK /);
  });

  it('a disabled user signs in nowhere; the archive is still there', async () => {
    // bob is throttled from the test above; an unthrottled address is not needed: the audit reason says why.
    await new Promise((r) => setTimeout(r, 2100));
    assert.match(await imapLogin(imapPort, 'bob', 'bob-dir-pw'), /^NO \[AUTHENTICATIONFAILED\]/);
    assert.equal((await server.archive.folders('bob')).reduce((n, f) => n + f.messages, 0), 1);
  });

  it('postern user rename keeps a local user\'s archive and is recorded in the audit log', async () => {
    await server.archive.addUser({ name: 'frank', addresses: ['frank@example.test'] });
    await deliver(server, 'frank@example.test', 'For Frank');
    const r = await cli('user', 'rename', 'frank', 'francis');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Renamed user frank to francis/);
    assert.deepEqual(await subjects('francis'), ['For Frank']);
    assert.equal(await server.archive.userByAddress('frank@example.test'), 'francis');
    const taken = await api('POST', 'users/francis/rename', { to: 'alice' });
    assert.equal(taken.status, 409);
    assert.match(String(taken.json.error), /already exists/);
    const records: AuditRecord[] = [];
    for await (const rec of server.running.app.service('audit').list({})) records.push(rec);
    assert.ok(records.some((x) => x.action === 'user.rename' && x.outcome === 'success' && x.details?.from === 'frank' && x.details?.to === 'francis'));
    assert.ok(records.some((x) => x.action === 'user.rename' && x.actor === 'directory-sync' && x.details?.from === 'carol'));
  });

  it('StartTLS and ldaps:// with the configured CA; an untrusted certificate is a clear error', async () => {
    const base = configSchema.parse(exampleConfig(slapd.url, join(tmp, 'ldap-bind.password'))).directory.ldap;
    assert.ok(base);
    const dn = P('Alice Archer');
    assert.equal(await checkBind({ ...base, startTls: true, caFile: slapd.certFile }, dn, 'alice-dir-pw'), true);
    assert.equal(await checkBind({ ...base, url: slapd.ldapsUrl, caFile: slapd.certFile }, dn, 'alice-dir-pw'), true);
    assert.equal(await checkBind({ ...base, url: slapd.ldapsUrl, caFile: slapd.certFile }, dn, 'wrong'), false);
    const client = await openSyncClient({ ...base, startTls: true, caFile: slapd.certFile });
    await client.unbind();
    await assert.rejects(checkBind({ ...base, startTls: true }, dn, 'alice-dir-pw'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'DIRECTORY_FAILED');
      assert.match(err.message, /^Directory server "ldap:\/\/127\.0\.0\.1:\d+" refused StartTLS or could not be reached: .*(self[- ]signed|certificate)/i);
      return true;
    });
  });

  it('with the directory down: a clear error, a failed run, IMAP says so; earlier results are kept', async () => {
    await slapd.stop();
    const r = await cli('directory', 'sync');
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^Directory sync failed /m);
    assert.match(r.stdout, new RegExp(`Directory server "${slapd.url.replace(/[.]/g, '\\.')}" cannot be reached: .*ECONNREFUSED`));
    assert.match(await imapLogin(imapPort, 'alice', 'alice-dir-pw'), /^NO \[UNAVAILABLE\]/);
    assert.ok(server.logs.some((l) => /directory server cannot be reached/i.test(l.msg)));
    const dry = await api('POST', 'jobs/directory-sync/run', { list: true });
    assert.equal(dry.status, 502);
    assert.match(String(dry.json.error), /cannot be reached/);
    const results = (await api('GET', 'jobs/directory-sync/results')).json.results as JobResult[];
    assert.deepEqual(results.map((x) => x.status), ['completed-with-errors', 'completed-with-errors', 'failed']);
    assert.deepEqual(results[1]?.summary.disabled, ['bob']);
  });
});
