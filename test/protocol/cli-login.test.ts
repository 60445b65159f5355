// `postern login USER` and `postern logout` against a live server: the session token is stored per
// admin URL in $XDG_CONFIG_HOME/postern/sessions.json (0600); later commands act as that user (their
// own record yes, the status no) until logout, which ends the session on the server and forgets it;
// the password comes from POSTERN_PASSWORD or standard input; a wrong one changes nothing stored; a session
// ended elsewhere gives a message that says what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/cli.ts';
import { startTestServer } from '../helpers/test-server.ts';
import { hashPassword } from '../../core/smtp/password.ts';

const PASSWORD = 'correct horse battery staple';

test('postern login / logout', async () => {
  const srv = await startTestServer();
  const home = mkdtempSync(join(tmpdir(), 'postern-login-'));
  try {
    await srv.archive.addUser({ name: 'alice', addresses: ['alice@example.com'], passwordHash: await hashPassword(PASSWORD), privileges: ['login'] });
    const cli = (args: string[], env: Record<string, string> = {}, input?: string): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolve) => {
      const child = execFile(process.execPath, [CLI, ...args], {
        env: { ...process.env, POSTERN_PASSWORD: '', POSTERN_DATA_DIR: srv.dataDir, POSTERN_ADMIN_PORT: String(srv.adminPort), XDG_CONFIG_HOME: home, ...env },
      }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) }));
      child.stdin?.end(input ?? '');
    });
    const file = join(home, 'postern', 'sessions.json');

    const login = await cli(['login', 'alice'], {}, `${PASSWORD}\n`);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /^Signed in as alice until \d{4}-\d\d-\d\dT.*now act as alice/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(home, 'postern')).mode & 0o777, 0o700);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { sessions: Record<string, { user: string; token: string }> };
    assert.deepEqual(Object.keys(stored.sessions), [`http://127.0.0.1:${srv.adminPort}`]);

    const show = await cli(['user', 'show', 'alice']);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /User: +alice/);
    const status = await cli(['status']);
    assert.equal(status.code, 1, 'acting as alice, not with the admin token');
    assert.match(status.stderr, /"alice" needs the "admin" privilege/);

    // Ended elsewhere (a new password): the CLI says so and how to go on.
    const hash = await hashPassword('another long password');
    await srv.archive.updateUser('alice', { passwordHash: hash });
    const ended = await cli(['user', 'show', 'alice']);
    assert.equal(ended.code, 1);
    assert.match(ended.stderr, /API session of "alice" has expired or was ended .*postern login again/);
    const wrong = await cli(['login', 'alice'], { POSTERN_PASSWORD: PASSWORD });
    assert.equal(wrong.code, 1, 'the old password no longer signs in');
    assert.match(wrong.stderr, /Wrong user name or password for "alice"/);
    assert.ok(existsSync(file), 'a failed login leaves the stored sessions alone');
    const relog = await cli(['login', 'alice'], { POSTERN_PASSWORD: 'another long password' });
    assert.equal(relog.code, 0, relog.stderr);

    const token = JSON.parse(readFileSync(file, 'utf8')).sessions[`http://127.0.0.1:${srv.adminPort}`].token as string;
    const out = await cli(['logout']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^Signed out alice/);
    assert.ok(!existsSync(file), 'forgotten');
    const res = await fetch(`http://127.0.0.1:${srv.adminPort}/api/v1/users/alice`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401, 'ended on the server');
  } finally {
    await srv.stop();
    rmSync(home, { recursive: true, force: true });
  }
});
