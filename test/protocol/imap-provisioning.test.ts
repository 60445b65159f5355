// Provisioning IMAP access: `postern user passwd` (password from standard input) and `postern user
// imap on|off` through the admin API, the routes' validation, and logging in with the result.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapClient, startImapServer, type ImapTestServer } from './imap-client.ts';

const CLI = fileURLToPath(new URL('../../core/cli/postern.js', import.meta.url));

describe('IMAP provisioning from the CLI', () => {
  let s: ImapTestServer;
  const cli = (args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, '--url', `http://127.0.0.1:${s.adminPort}`, '--token-file', join(s.dataDir, 'admin.token'), ...args], { env: { ...process.env, POSTERN_DATA_DIR: s.dataDir } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    child.stdin?.end(stdin);
  });
  const tryLogin = async (user: string, password: string): Promise<string> => {
    const c = await ImapClient.open(s.imapPort);
    await c.readUnit();
    const r = await c.cmd(`LOGIN ${user} "${password}"`);
    c.close();
    return r.status;
  };
  const api = async (method: string, path: string, body: unknown): Promise<{ status: number; json: unknown }> => {
    const { readFileSync } = await import('node:fs');
    const token = readFileSync(join(s.dataDir, 'admin.token'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${s.adminPort}/api/v1/${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  };

  before(async () => {
    s = await startImapServer([]);
    await s.archive.addUser({ name: 'erin', addresses: ['erin@example.com'] });
  });
  after(() => s.stop());

  it('sets the password from the first line of standard input and switches IMAP access on and off', async () => {
    let r = await cli(['user', 'passwd', 'erin'], 'a new long password\nignored second line\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Password set for erin\n');
    assert.ok(!r.stdout.includes('a new long password') && !r.stderr.includes('a new long password'));
    assert.equal(await tryLogin('erin', 'a new long password'), 'NO [AUTHENTICATIONFAILED] Authentication failed');
    r = await cli(['user', 'imap', 'erin', 'on']);
    assert.equal(r.stdout, 'IMAP access enabled for erin\nNotification: not sent (notify.enabled is false)\n');
    assert.match(await tryLogin('erin', 'a new long password'), /^OK /);
    assert.match(await tryLogin('erin@example.com', 'a new long password'), /^OK /);
    assert.equal(await tryLogin('erin', 'ignored second line'), 'NO [AUTHENTICATIONFAILED] Authentication failed');
    r = await cli(['user', 'imap', 'erin', 'off']);
    assert.equal(r.code, 0);
    assert.match(await tryLogin('erin', 'a new long password'), /^NO /);
    const shown = await api('GET', 'users/erin', undefined);
    assert.ok(!JSON.stringify(shown.json).includes('scrypt'), 'the hash never leaves the server');
    assert.ok(!JSON.stringify(s.logs).includes('a new long password'));
  });

  it('refuses empty and short passwords, unknown users and bad states', async () => {
    let r = await cli(['user', 'passwd', 'erin'], '');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No password given/);
    r = await cli(['user', 'passwd', 'erin'], 'short\n');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /at least 8 characters/);
    r = await cli(['user', 'passwd', 'nobody'], 'long enough password\n');
    assert.match(r.stderr, /User "nobody" does not exist/);
    r = await cli(['user', 'imap', 'erin', 'maybe']);
    assert.match(r.stderr, /State must be "on" or "off"/);
    assert.equal((await api('PUT', 'account/password', { user: 'erin', password: 'long enough', extra: 1 })).status, 400);
    assert.equal((await api('PUT', 'users/erin/imap', { enabled: 'yes' })).status, 400);
    assert.equal((await api('PUT', 'users/nobody/imap', { enabled: true })).status, 404);
  });
});

describe('IMAP provisioning notification mail', () => {
  it('mails the user how to connect when access is switched on, through the configured SMTP server', async () => {
    const { SMTPServer } = await import('smtp-server');
    const received: Array<{ from: string; to: string[]; data: string }> = [];
    const sink = new SMTPServer({
      authOptional: true, disabledCommands: ['STARTTLS'],
      onData(stream, session, callback) {
        const parts: Buffer[] = [];
        stream.on('data', (d: Buffer) => parts.push(d));
        stream.on('end', () => {
          received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(parts).toString('utf8') });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    const sinkPort = (sink.server.address() as import('node:net').AddressInfo).port;
    const s = await startImapServer([], {
      publicHost: 'imap.example.com',
      notify: { enabled: true, from: 'it@example.com', subject: 'IMAP für dich', smtp: { host: '127.0.0.1', port: sinkPort }, template: 'Hi {{user}}: {{host}}:{{tlsPort}} / {{port}} as {{address}} {{unknown}}' },
    });
    try {
      await s.archive.addUser({ name: 'fay', addresses: ['fay@example.com'] });
      const { readFileSync } = await import('node:fs');
      const token = readFileSync(join(s.dataDir, 'admin.token'), 'utf8').trim();
      const put = async (enabled: boolean): Promise<{ notification: string }> => {
        const res = await fetch(`http://127.0.0.1:${s.adminPort}/api/v1/users/fay/imap`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ enabled }) });
        return (await res.json()) as { notification: string };
      };
      assert.equal((await put(true)).notification, 'sent to fay@example.com');
      assert.equal((await put(true)).notification, 'not sent (access did not change to on)');
      assert.equal(received.length, 1);
      const mail = received[0];
      assert.equal(mail?.from, 'it@example.com');
      assert.deepEqual(mail?.to, ['fay@example.com']);
      assert.match(mail?.data ?? '', /^Subject: =\?utf-8\?B\?/m);
      const body = Buffer.from((mail?.data ?? '').split('\r\n\r\n')[1]?.replace(/\s+/g, '') ?? '', 'base64').toString('utf8');
      assert.equal(body, `Hi fay: imap.example.com:${s.imapsPort} / ${s.imapPort} as fay@example.com {{unknown}}`);
      await put(false);
      await new Promise<void>((resolve) => sink.close(() => resolve()));
      assert.match((await put(true)).notification, /^failed: /, 'a failed notification is reported, access is still switched on');
      assert.equal((await s.archive.getUser('fay'))?.imapAccess, true);
    } finally {
      await s.stop();
    }
  });

  it('mails a user who gains access through a group in accessGroups (added with it, or moved into it)', async () => {
    const { SMTPServer } = await import('smtp-server');
    const rcpts: string[] = [];
    const sink = new SMTPServer({
      authOptional: true, disabledCommands: ['STARTTLS'],
      onData(stream, session, callback) {
        stream.resume();
        stream.on('end', () => {
          rcpts.push(...session.envelope.rcptTo.map((r) => r.address));
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    const sinkPort = (sink.server.address() as import('node:net').AddressInfo).port;
    const s = await startImapServer([], { accessGroups: ['staff'], notify: { enabled: true, from: 'it@example.com', smtp: { host: '127.0.0.1', port: sinkPort } } });
    try {
      const { readFileSync } = await import('node:fs');
      const token = readFileSync(join(s.dataDir, 'admin.token'), 'utf8').trim();
      const api = async (method: string, path: string, body: unknown): Promise<number> => {
        const res = await fetch(`http://127.0.0.1:${s.adminPort}/api/v1/${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        await res.arrayBuffer();
        return res.status;
      };
      assert.equal(await api('POST', 'users', { name: 'gus', addresses: ['gus@example.com'], groups: ['staff'] }), 201);
      assert.equal(await api('POST', 'users', { name: 'hal', addresses: ['hal@example.com'], groups: ['sales'] }), 201);
      assert.deepEqual(rcpts, ['gus@example.com'], 'a new member of an access group is told; others are not');
      assert.equal(await api('PATCH', 'users/hal', { addGroups: ['staff'] }), 200);
      assert.deepEqual(rcpts, ['gus@example.com', 'hal@example.com'], 'moving into an access group tells the user');
      assert.equal(await api('PATCH', 'users/hal', { addGroups: ['sales2'] }), 200);
      assert.equal(await api('PUT', 'users/hal/imap', { enabled: true }), 200);
      assert.equal(rcpts.length, 2, 'no second mail while access was already given by the group');
      assert.equal(await api('PATCH', 'users/hal', { addGroups: ['Not Valid!'] }), 400);
      assert.deepEqual((await s.archive.getUser('hal'))?.groups, ['sales', 'staff', 'sales2']);
    } finally {
      await s.stop();
      await new Promise<void>((resolve) => sink.close(() => resolve()));
    }
  });
});
