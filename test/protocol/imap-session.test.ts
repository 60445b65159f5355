// IMAP transcripts for the session-level commands against a live server: greeting, CAPABILITY, NOOP,
// LOGOUT, ID, ENABLE, NAMESPACE, LOGIN and AUTHENTICATE PLAIN (with SASL-IR), STARTTLS and implicit
// TLS, plaintext refusal, wrong-state commands, malformed commands, huge and lying literals, line and
// connection limits.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ImapClient, PASSWORD, startImapServer, type ImapTestServer } from './imap-client.ts';

const plain = (user: string, password: string, authz = ''): string => Buffer.from(`${authz}\u0000${user}\u0000${password}`).toString('base64');

describe('IMAP session commands (plaintext allowed for the test)', () => {
  let s: ImapTestServer;
  before(async () => {
    s = await startImapServer([
      { name: 'alice', addresses: ['alice@example.com'] },
      { name: 'carol', addresses: ['carol@example.com'], imap: false },
      { name: 'dave', addresses: ['dave@example.com'], imap: false, groups: ['staff'] },
    ], { accessGroups: ['staff'] });
  });
  after(() => s.stop());

  async function fresh(): Promise<ImapClient> {
    const c = await ImapClient.open(s.imapPort);
    await c.readUnit();
    return c;
  }

  it('greets with capabilities and answers CAPABILITY, NOOP, ID and LOGOUT', async () => {
    const c = await ImapClient.open(s.imapPort);
    const greeting = await c.readUnit();
    assert.match(greeting, /^\* OK \[CAPABILITY IMAP4rev1 .*STARTTLS.*AUTH=PLAIN.*\] /);
    let r = await c.cmd('CAPABILITY');
    assert.equal(r.kind, 'OK');
    assert.match(r.lines[0] ?? '', /^\* CAPABILITY IMAP4rev1 LITERAL\+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT SPECIAL-USE CHILDREN STARTTLS AUTH=PLAIN$/);
    assert.equal((await c.cmd('NOOP')).status, 'OK NOOP completed');
    r = await c.cmd('ID ("name" "test" "version" "1")');
    assert.match(r.lines[0] ?? '', /^\* ID \("name" "Postern"/);
    assert.equal((await c.cmd('ID NIL')).kind, 'OK');
    assert.equal((await c.cmd('ID ("odd")')).kind, 'BAD');
    assert.equal((await c.cmd('CAPABILITY extra')).kind, 'BAD');
    r = await c.cmd('LOGOUT');
    assert.deepEqual(r.lines, ['* BYE Logging out']);
    assert.equal(r.kind, 'OK');
    await c.closedBy();
  });

  it('logs in with LOGIN (by name or address, quoted or literal) and refuses wrong passwords and users without access', async () => {
    let c = await fresh();
    let r = await c.cmd(`LOGIN alice "${PASSWORD}"`);
    assert.match(r.status, /^OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/);
    assert.doesNotMatch(r.status, /AUTH=PLAIN|STARTTLS/);
    assert.equal((await c.cmd('LOGIN alice x')).status, 'NO Not allowed in this state');
    c.close();

    c = await fresh();
    c.write(`A1 LOGIN {17+}\r\nalice@example.com {${PASSWORD.length}}\r\n`);
    assert.equal(await c.readUnit(), '+ Ready for literal data');
    c.write(`${PASSWORD}\r\n`);
    assert.match((await c.until('A1')).status, /^OK /);
    c.close();

    c = await fresh();
    assert.equal((await c.cmd('LOGIN alice not-the-secret-9')).status, 'NO [AUTHENTICATIONFAILED] Authentication failed');
    assert.equal((await c.cmd(`LOGIN nobody "${PASSWORD}"`)).status, 'NO [AUTHENTICATIONFAILED] Authentication failed');
    assert.equal((await c.cmd(`LOGIN carol "${PASSWORD}"`)).status, 'NO [AUTHENTICATIONFAILED] Authentication failed', 'no IMAP access: the same answer as a wrong password');
    assert.match((await c.cmd(`LOGIN dave "${PASSWORD}"`)).status, /^OK /, 'access through a group in accessGroups');
    c.close();
    c = await fresh();
    assert.equal((await c.cmd('LOGIN alice')).kind, 'BAD');
    assert.equal((await c.cmd('LOGIN (alice) x')).kind, 'BAD');
    c.close();
    assert.ok(!JSON.stringify(s.logs).includes(PASSWORD) && !JSON.stringify(s.logs).includes('not-the-secret-9'), 'passwords never reach the log');
  });

  it('authenticates with AUTHENTICATE PLAIN, with and without an initial response', async () => {
    let c = await fresh();
    assert.match((await c.cmd(`AUTHENTICATE PLAIN ${plain('alice', PASSWORD)}`)).status, /^OK /);
    c.close();

    c = await fresh();
    c.write('A1 AUTHENTICATE PLAIN\r\n');
    assert.equal(await c.readUnit(), '+ ');
    c.write(plain('alice', PASSWORD) + '\r\n');
    assert.match((await c.until('A1')).status, /^OK /);
    c.close();

    c = await fresh();
    c.write('A1 AUTHENTICATE PLAIN\r\n');
    await c.readUnit();
    c.write('*\r\n');
    assert.equal((await c.until('A1')).status, 'BAD Authentication cancelled');
    assert.equal((await c.cmd('AUTHENTICATE PLAIN !!!')).status, 'BAD Malformed PLAIN response');
    assert.equal((await c.cmd(`AUTHENTICATE PLAIN ${plain('alice', 'nope')}`)).status, 'NO [AUTHENTICATIONFAILED] Authentication failed');
    assert.match((await c.cmd(`AUTHENTICATE PLAIN ${plain('alice', PASSWORD, 'carol')}`)).status, /^NO \[AUTHORIZATIONFAILED\]/);
    assert.match((await c.cmd('AUTHENTICATE CRAM-MD5')).status, /^NO Authentication mechanism "CRAM-MD5" is not supported/);
    assert.equal((await c.cmd('AUTHENTICATE')).kind, 'BAD');
    c.close();
  });

  it('answers ENABLE and NAMESPACE after login, and refuses commands in the wrong state with NO', async () => {
    const c = await fresh();
    for (const cmd of ['SELECT INBOX', 'EXAMINE INBOX', 'LIST "" "*"', 'LSUB "" "*"', 'STATUS INBOX (MESSAGES)', 'NAMESPACE', 'ENABLE UTF8=ACCEPT', 'IDLE', 'CREATE x', 'APPEND INBOX {1+}\r\nx']) {
      assert.equal((await c.cmd(cmd)).status, 'NO Log in first', cmd);
    }
    for (const cmd of ['FETCH 1 FLAGS', 'UID FETCH 1 FLAGS', 'SEARCH ALL', 'STORE 1 +FLAGS (\\Seen)', 'CLOSE', 'UNSELECT', 'CHECK', 'EXPUNGE', 'COPY 1 INBOX']) {
      assert.equal((await c.cmd(cmd)).status, 'NO Log in first', cmd);
    }
    await c.cmd(`LOGIN alice "${PASSWORD}"`);
    for (const cmd of ['FETCH 1 FLAGS', 'UID SEARCH ALL', 'CLOSE', 'UNSELECT', 'CHECK', 'EXPUNGE', 'STORE 1 FLAGS (\\Seen)']) {
      assert.equal((await c.cmd(cmd)).status, 'NO Select a mailbox first', cmd);
    }
    for (const cmd of ['STARTTLS', 'AUTHENTICATE PLAIN', `LOGIN alice "${PASSWORD}"`]) assert.equal((await c.cmd(cmd)).status, 'NO Not allowed in this state', cmd);
    let r = await c.cmd('NAMESPACE');
    assert.deepEqual(r.lines, ['* NAMESPACE (("" "/")) NIL NIL']);
    r = await c.cmd('ENABLE UTF8=ACCEPT CONDSTORE');
    assert.deepEqual(r.lines, ['* ENABLED']);
    assert.equal((await c.cmd('ENABLE')).kind, 'BAD');
    c.close();
  });

  it('answers malformed commands with BAD and keeps the connection', async () => {
    const c = await fresh();
    const bad: Array<[string, RegExp]> = [
      ['', /^\* BAD Invalid tag/],
      ['+ NOOP', /^\* BAD Invalid tag/],
      ['a(b NOOP', /^\* BAD Invalid tag/],
      ['onlytag', /^onlytag BAD Missing command/],
      ['t1 FROBNICATE', /^t1 BAD Unknown command "FROBNICATE"/],
      ['t2 LOGIN "unterminated', /^t2 BAD Unterminated quoted string/],
      ['t3 LOGIN (a b', /^t3 BAD Missing "\)"/],
      ['t4 LOGIN a) b', /^t4 BAD Unexpected "\)"/],
      ['t5 LOGIN "a\\x" b', /^t5 BAD Only/],
      ['t6 UID', /^t6 BAD UID needs a command/],
      ['t7 UID FROB 1', /^t7 BAD Unknown UID command/],
      ['t8 123 x', /^t8 BAD Missing or invalid command name/],
      ['t9 NOOP\u0001', /^t9 BAD /],
      ['t10 LOGIN {3}x', /^t10 BAD Malformed literal/],
    ];
    for (const [line, want] of bad) {
      c.write(line + '\r\n');
      assert.match(await c.readUnit(), want, JSON.stringify(line));
    }
    assert.equal((await c.cmd('NOOP')).kind, 'OK');
    c.close();
  });

  it('refuses an oversized synchronising literal unread and carries on; an oversized LITERAL+ ends the connection', async () => {
    let c = await fresh();
    c.write('A1 LOGIN {999999999}\r\n');
    assert.match(await c.readUnit(), /^A1 NO \[TOOBIG\] Literal of 999999999 bytes exceeds the limit/);
    assert.equal((await c.cmd('NOOP')).kind, 'OK');
    c.write('A2 APPEND INBOX {10}\r\n');
    assert.equal(await c.readUnit(), 'A2 NO Log in first'.replace('NO Log in first', 'NO [CANNOT] The archive is read-only; APPEND is not possible'));
    c.close();

    c = await fresh();
    c.write('A1 LOGIN {99999999+}\r\n');
    const rest = await c.closedBy();
    assert.match(rest, /^\* BYE \[TOOBIG\] Literal of 99999999 bytes/);
  });

  it('ends a connection whose line never ends within the line limit', async () => {
    const c = await fresh();
    c.write('A1 NOOP ' + 'x'.repeat(9000));
    assert.match(await c.closedBy(), /^\* BYE Line longer than 8192 bytes/);
  });

  it('counts literal bytes exactly, even when they look like commands', async () => {
    const c = await fresh();
    const pw = `${PASSWORD}\r\nA9 LOGOUT`;
    c.write(`A1 LOGIN alice {${pw.length}}\r\n`);
    assert.equal(await c.readUnit(), '+ Ready for literal data');
    c.write(pw + '\r\n');
    assert.equal((await c.until('A1')).status, 'NO [AUTHENTICATIONFAILED] Authentication failed');
    assert.equal((await c.cmd('NOOP')).kind, 'OK');
    c.close();
  });

  it('offers STARTTLS and logs in over it, and serves implicit TLS', async () => {
    let c = await fresh();
    await c.starttls();
    let r = await c.cmd('CAPABILITY');
    assert.doesNotMatch(r.lines[0] ?? '', /STARTTLS/);
    assert.equal((await c.cmd('STARTTLS')).kind, 'BAD');
    assert.match((await c.cmd(`LOGIN alice "${PASSWORD}"`)).status, /^OK /);
    c.close();

    c = await ImapClient.open(s.imapsPort, true);
    assert.match(await c.readUnit(), /^\* OK \[CAPABILITY .*AUTH=PLAIN/);
    r = await c.cmd('CAPABILITY');
    assert.doesNotMatch(r.lines[0] ?? '', /STARTTLS/);
    assert.equal((await c.cmd('STARTTLS')).kind, 'BAD');
    assert.match((await c.cmd(`AUTHENTICATE PLAIN ${plain('alice', PASSWORD)}`)).status, /^OK /);
    c.close();
  });
});

describe('IMAP without plaintext logins, with short timeouts and few connections', () => {
  let s: ImapTestServer;
  before(async () => {
    s = await startImapServer([{ name: 'alice', addresses: ['alice@example.com'] }], { allowPlaintext: false, loginTimeoutSeconds: 1, maxConnections: 3 });
  });
  after(() => s.stop());

  it('advertises LOGINDISABLED and refuses LOGIN and AUTHENTICATE before TLS, then accepts them after STARTTLS', async () => {
    const c = await ImapClient.open(s.imapPort);
    assert.match(await c.readUnit(), /STARTTLS LOGINDISABLED\]/);
    assert.equal((await c.cmd(`LOGIN alice "${PASSWORD}"`)).status, 'NO [PRIVACYREQUIRED] Log in only after STARTTLS (or use the implicit TLS port)');
    assert.match((await c.cmd(`AUTHENTICATE PLAIN ${plain('alice', PASSWORD)}`)).status, /^NO \[PRIVACYREQUIRED\]/);
    await c.starttls();
    const r = await c.cmd('CAPABILITY');
    assert.match(r.lines[0] ?? '', /AUTH=PLAIN/);
    assert.doesNotMatch(r.lines[0] ?? '', /LOGINDISABLED/);
    assert.match((await c.cmd(`LOGIN alice "${PASSWORD}"`)).status, /^OK /);
    c.close();
  });

  it('drops bytes pipelined after STARTTLS instead of running them inside TLS', async () => {
    const c = await ImapClient.open(s.imapPort);
    await c.readUnit();
    c.write('A1 STARTTLS\r\nA2 CAPABILITY\r\n');
    assert.equal((await c.until('A1')).kind, 'OK');
    c.close();
  });

  it('ends a connection that sends less literal than announced and goes silent (idle timeout)', async () => {
    const c = await ImapClient.open(s.imapPort);
    await c.readUnit();
    c.write('A1 LOGIN alice {100}\r\n');
    assert.equal(await c.readUnit(), '+ Ready for literal data');
    c.write('only a few bytes');
    assert.match(await c.closedBy(), /\* BYE Autologout; idle for too long/);
  });

  it('greets connections beyond maxConnections with BYE', async () => {
    const open: ImapClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await ImapClient.open(s.imapPort);
      await c.readUnit();
      open.push(c);
    }
    const extra = await ImapClient.open(s.imapPort);
    assert.match(await extra.closedBy(), /^\* BYE \[UNAVAILABLE\] Too many connections/);
    for (const c of open) c.close();
  });
});

describe('IMAP TLS certificate from the config, reloaded on SIGHUP', () => {
  it('serves the configured certificate and a replaced one after SIGHUP', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { generate } = await import('selfsigned');
    const { connect } = await import('node:tls');
    const dir = mkdtempSync(join(tmpdir(), 'imap-tls-'));
    const write = async (cn: string): Promise<void> => {
      const pems = await generate([{ name: 'commonName', value: cn }], { days: 1, keySize: 2048 } as Parameters<typeof generate>[1]);
      writeFileSync(join(dir, 'key.pem'), pems.private);
      writeFileSync(join(dir, 'cert.pem'), pems.cert);
    };
    const peerName = (port: number): Promise<string> => new Promise((resolve, reject) => {
      const sock = connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
        const cn = sock.getPeerCertificate().subject.CN;
        sock.destroy();
        resolve(Array.isArray(cn) ? cn.join(',') : cn ?? '');
      });
      sock.on('error', reject);
    });
    await write('first.example');
    const s = await startImapServer([], { tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } });
    try {
      assert.equal(await peerName(s.imapsPort), 'first.example');
      await write('second.example');
      process.kill(process.pid, 'SIGHUP');
      let name = '';
      for (let i = 0; i < 100 && name !== 'second.example'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        name = await peerName(s.imapsPort);
      }
      assert.equal(name, 'second.example');
      const c = await ImapClient.open(s.imapPort);
      await c.readUnit();
      await c.starttls();
      assert.equal((await c.cmd('NOOP')).kind, 'OK');
      c.close();
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
