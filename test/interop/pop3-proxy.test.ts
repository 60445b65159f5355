// Interop tier for the POP3 proxy: real Dovecot (dovecot-pop3d) as the upstream with Maildirs of
// real messages (SpamAssassin corpus), the real `postern serve`, and clients nobody here wrote:
// curl pop3://, Python poplib (STLS on the client leg, APOP, UIDL, TOP, RETR, DELE) and fetchmail.
// Every retrieved message must be in the right user's archive byte for byte (admin API /raw), a
// second retrieval must archive nothing new, and DELE must only ever remove archived messages.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCorpus } from '../helpers/corpus.ts';
import { startDovecot, type Dovecot } from './dovecot.ts';
import { freePort, makeTempDir, run, runOk, startPostern, waitFor, type PosternServer } from './harness.ts';

const ALICE_PW = 'alice-Interop-pw-4417';
const BOB_PW = 'bob-Interop-pw-9920';

/** Real messages as a Maildir holds them: no mbox "From " line, LF line ends, ending in a newline. */
function maildirMessages(count: number, offset: number): Buffer[] {
  return loadCorpus()
    .map((m) => (m.subarray(0, 5).toString() === 'From ' ? m.subarray(m.indexOf(10) + 1) : m))
    .filter((m) => !m.includes(13) && m[m.length - 1] === 10 && m.length < 200_000)
    .slice(offset, offset + count);
}

/** What POP3 carries for a Maildir file: CRLF line ends (Dovecot converts bare LF). */
const crlf = (m: Buffer): Buffer => Buffer.from(m.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');

const ALICE = maildirMessages(10, 0);
const BOB = maildirMessages(3, 100);
// Dot-stuffing must survive the trip: one message with lines that start with dots.
ALICE.push(Buffer.from('From: dots@example.org\nTo: alice@example.com\nSubject: dots\nMessage-ID: <dots@example.org>\n\n.one\n..two\n.\nend\n'));

async function api(srv: PosternServer, path: string): Promise<Response> {
  const token = readFileSync(join(srv.dataDir, 'admin.token'), 'utf8').trim();
  return fetch(`http://127.0.0.1:${srv.adminPort}${path}`, { headers: { authorization: `Bearer ${token}` } });
}

/** Every message in USER's Inbox, raw bytes from the admin API. */
async function archivedRaw(srv: PosternServer, user: string): Promise<Buffer[]> {
  await srv.waitDrained();
  const res = await api(srv, `/api/v1/archive/${user}/messages`);
  const { entries } = (await res.json()) as { entries: Array<{ uid: number }> };
  const out: Buffer[] = [];
  for (const e of entries) {
    const raw = await api(srv, `/api/v1/archive/${user}/messages/${e.uid}/raw`);
    assert.equal(raw.status, 200);
    out.push(Buffer.from(await raw.arrayBuffer()));
  }
  return out;
}

function assertSameSet(actual: Buffer[], expected: Buffer[], what: string): void {
  const key = (b: Buffer): string => b.toString('base64');
  assert.deepEqual(actual.map(key).sort(), expected.map(key).sort(), what);
}

async function python(script: string): Promise<string> {
  const r = await run('python3', ['-c', script], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`python3 failed (${r.code}):\n${r.stderr}\n${r.stdout.toString()}`);
  return r.stdout.toString('utf8');
}

describe('POP3 proxy against Dovecot', () => {
  let dc: Dovecot;
  let srv: PosternServer;
  let pop3Port: number;
  let pop3sPort: number;
  let postCert: string;

  before(async () => {
    dc = await startDovecot({
      users: [{ name: 'alice', password: ALICE_PW, messages: ALICE }, { name: 'bob', password: BOB_PW, messages: BOB }],
      protocols: ['pop3'],
      extraConfig: 'auth_mechanisms = plain login apop\n',
      name: 'pop3-proxy',
    });
    pop3Port = await freePort();
    pop3sPort = await freePort();
    srv = await startPostern({
      name: 'pop3-proxy',
      env: { POSTERN_POP3_UPSTREAM: `127.0.0.1:${dc.pop3Port}`, POSTERN_POP3_PORT: String(pop3Port), POSTERN_POP3_TLS_PORT: String(pop3sPort) },
    });
    await srv.cliOk(['user', 'add', 'alice', '--address', 'alice@example.com', '--pop3-user', 'alice']);
    await srv.cliOk(['user', 'add', 'bob', '--address', 'bob@example.net', '--pop3-user', 'bob']);
    postCert = join(srv.dataDir, 'tls', 'self-signed.crt');
  });
  after(async () => {
    await srv?.stop();
    await dc?.stop();
  });

  test('the status lists the POP3 listeners', () => srv.diagnose('pop3-status', async () => {
    const s = await srv.status();
    assert.deepEqual({ pop3: (s.listeners as Record<string, unknown>).pop3, pop3s: (s.listeners as Record<string, unknown>).pop3s }, { pop3: pop3Port, pop3s: pop3sPort });
  }));

  test('curl pop3:// lists and retrieves through Postern; the message is archived to bob byte for byte', () => srv.diagnose('pop3-curl', async () => {
    const list = await runOk('curl', ['-sS', '--max-time', '20', '-u', `bob:${BOB_PW}`, `pop3://127.0.0.1:${pop3Port}/`]);
    assert.deepEqual(list.stdout.toString().trim().split(/\r?\n/), BOB.map((m, i) => `${i + 1} ${crlf(m).length}`));
    const retr = await runOk('curl', ['-sS', '--max-time', '20', '-u', `bob:${BOB_PW}`, `pop3://127.0.0.1:${pop3Port}/2`]);
    assert.deepEqual(retr.stdout, crlf(BOB[1] as Buffer));
    assertSameSet(await archivedRaw(srv, 'bob'), [crlf(BOB[1] as Buffer)], 'bob archive');
  }));

  test('poplib over STLS (client leg), APOP, UIDL, TOP, RETR and DELE; DELE removes only archived messages', () => srv.diagnose('pop3-poplib', async () => {
    const out = await python(`
import poplib, ssl, json, base64
ctx = ssl.create_default_context(cafile=${JSON.stringify(postCert)})
p = poplib.POP3('127.0.0.1', ${pop3Port}, timeout=30)
caps = p.capa()
p.stls(context=ctx)
p.user('alice'); p.pass_(${JSON.stringify(ALICE_PW)})
uidl = [l.decode() for l in p.uidl()[1]]
top = b'\\r\\n'.join(p.top(1, 0)[1]).decode('latin1')
msgs = [base64.b64encode(b'\\r\\n'.join(p.retr(n)[1]) + b'\\r\\n').decode() for n in range(1, 4)]
p.dele(1)
p.dele(4)
p.quit()
a = poplib.POP3('127.0.0.1', ${pop3Port}, timeout=30)
a.apop('bob', ${JSON.stringify(BOB_PW)})
stat = a.stat()
a.quit()
print(json.dumps({'caps': sorted(caps.keys()), 'uidl': uidl, 'top': top, 'msgs': msgs, 'bobStat': list(stat)}))
`);
    const r = JSON.parse(out) as { caps: string[]; uidl: string[]; top: string; msgs: string[]; bobStat: number[] };
    assert.ok(r.caps.includes('STLS') && !r.caps.includes('PIPELINING'), r.caps.join(' '));
    assert.equal(r.uidl.length, ALICE.length);
    const head = crlf(ALICE[0] as Buffer).toString('latin1');
    assert.equal(r.top + '\r\n', head.slice(0, head.indexOf('\r\n\r\n') + 4));
    r.msgs.forEach((b64, i) => assert.deepEqual(Buffer.from(b64, 'base64'), crlf(ALICE[i] as Buffer), `message ${i + 1}`));
    assert.equal(r.bobStat[0], BOB.length);
    // Messages 1-3 were retrieved; 4 was deleted without RETR, so Postern captured it first.
    assertSameSet(await archivedRaw(srv, 'alice'), [0, 1, 2, 3].map((i) => crlf(ALICE[i] as Buffer)), 'alice archive');
    const left = readdirSync(join(dc.maildir('alice'), 'cur')).length + readdirSync(join(dc.maildir('alice'), 'new')).length;
    assert.equal(left, ALICE.length - 2, 'two messages deleted upstream');
  }));

  test('fetchmail retrieves every message through Postern; a second run archives nothing new', () => srv.diagnose('pop3-fetchmail', async () => {
    const tmp = makeTempDir('postern-fetchmail-');
    try {
      const out = join(tmp.path, 'out');
      const rc = join(tmp.path, 'fetchmailrc');
      writeFileSync(rc, [
        'set no bouncemail',
        `poll localhost service ${pop3Port} protocol pop3 timeout 30`,
        `  user "alice" there with password "${ALICE_PW}" is "${process.env.USER ?? 'root'}" here`,
        `  keep fetchall sslcertck sslcertfile "${postCert}"`,
        `  mda "/bin/sh -c 'mkdir -p ${out} && cat > ${out}/$$.eml'"`,
        '',
      ].join('\n'));
      chmodSync(rc, 0o600);
      const env = { ...process.env, HOME: tmp.path, FETCHMAILHOME: tmp.path };
      const first = await run('fetchmail', ['-f', rc, '--nosyslog', '-v'], { env, timeoutMs: 90_000 });
      assert.equal(first.code, 0, `fetchmail exit ${first.code}\n${first.stderr}\n${first.stdout.toString()}`);
      assert.ok(/STLS/.test(first.stderr + first.stdout.toString()), 'fetchmail used STLS');
      assert.equal(readdirSync(out).length, ALICE.length - 2);
      const expected = ALICE.map(crlf);
      const archived = await archivedRaw(srv, 'alice');
      assertSameSet(archived, expected, 'alice archive after fetchmail');
      const before = (await srv.status()).archive.messages;
      const second = await run('fetchmail', ['-f', rc, '--nosyslog', '-v'], { env, timeoutMs: 90_000 });
      assert.equal(second.code, 0, `fetchmail exit ${second.code}\n${second.stderr}`);
      assert.equal(readdirSync(out).length, 2 * (ALICE.length - 2));
      assert.equal((await archivedRaw(srv, 'alice')).length, archived.length, 'nothing new in alice\'s archive');
      assert.equal((await srv.status()).archive.messages, before, 'no new message at all');
    } finally {
      tmp.cleanup();
    }
  }));

  test('implicit TLS (POP3S) on the client leg', () => srv.diagnose('pop3s', async () => {
    const out = await python(`
import poplib, ssl
ctx = ssl.create_default_context(cafile=${JSON.stringify(postCert)})
p = poplib.POP3_SSL('127.0.0.1', ${pop3sPort}, context=ctx, timeout=30)
p.user('bob'); p.pass_(${JSON.stringify(BOB_PW)})
print(p.stat()[0]); p.quit()
`);
    assert.equal(out.trim(), String(BOB.length));
  }));

  test('credentials never reach the log; the proxy metrics are exported', () => srv.diagnose('pop3-logs', async () => {
    const log = srv.logs();
    for (const secret of [ALICE_PW, BOB_PW, Buffer.from(`\0alice\0${ALICE_PW}`).toString('base64')]) assert.ok(!log.includes(secret), 'secret in log');
    assert.match(log, /POP3 login through the proxy/);
    const metrics = await srv.metrics();
    assert.match(metrics, /postern_pop3_sessions_total\{outcome="quit"\} [1-9]/);
    assert.match(metrics, /postern_pop3_retrieved_total [1-9]/);
  }));
});

describe('POP3 proxy with TLS to the upstream', () => {
  let dc: Dovecot;
  before(async () => {
    dc = await startDovecot({ users: [{ name: 'carol', password: 'carol-pw', messages: maildirMessages(2, 200) }], protocols: ['pop3'], name: 'pop3-upstream-tls' });
  });
  after(() => dc?.stop());

  for (const mode of ['starttls', 'implicit'] as const) {
    test(`upstreamTls ${mode} with upstreamCa: retrieval works and is archived`, async () => {
      const port = await freePort();
      const srv = await startPostern({
        name: `pop3-upstream-${mode}`,
        env: {
          POSTERN_POP3_UPSTREAM: `127.0.0.1:${mode === 'implicit' ? dc.pop3sPort : dc.pop3Port}`,
          POSTERN_POP3_UPSTREAM_TLS: mode, POSTERN_POP3_UPSTREAM_CA: dc.certFile,
          POSTERN_POP3_PORT: String(port), POSTERN_POP3_TLS_PORT: '0',
        },
      });
      const tlsLogins = (): number => dc.logs().split('\n').filter((l) => /Login: user=<carol>.*\bTLS\b/.test(l)).length;
      const before = tlsLogins();
      try {
        await srv.diagnose(`pop3-upstream-${mode}`, async () => {
          await srv.cliOk(['user', 'add', 'carol', '--address', 'carol@example.com', '--pop3-user', 'carol']);
          const retr = await runOk('curl', ['-sS', '--max-time', '20', '-u', 'carol:carol-pw', `pop3://127.0.0.1:${port}/1`]);
          const expected = crlf(maildirMessages(1, 200)[0] as Buffer);
          assert.deepEqual(retr.stdout, expected);
          assertSameSet(await archivedRaw(srv, 'carol'), [expected], 'carol archive');
          await waitFor('a TLS login in the Dovecot log', async () => (tlsLogins() > before ? true : undefined));
        });
      } finally {
        await srv.stop();
      }
    });
  }

  test('an upstream certificate that does not verify: clients get -ERR, nothing else happens', async () => {
    const port = await freePort();
    const srv = await startPostern({
      name: 'pop3-upstream-badca',
      env: { POSTERN_POP3_UPSTREAM: `127.0.0.1:${dc.pop3sPort}`, POSTERN_POP3_UPSTREAM_TLS: 'implicit', POSTERN_POP3_PORT: String(port), POSTERN_POP3_TLS_PORT: '0' },
    });
    try {
      await srv.diagnose('pop3-upstream-badca', async () => {
        const r = await run('curl', ['-sS', '--max-time', '20', '-u', 'carol:carol-pw', `pop3://127.0.0.1:${port}/1`]);
        assert.notEqual(r.code, 0);
        // The logger writes in batches: wait for the line rather than reading the log once.
        await waitFor('the TLS failure log line', async () => (/Upstream POP3 server unavailable.*tls|"kind":"tls"/.test(srv.logs()) ? true : undefined));
      });
    } finally {
      await srv.stop();
    }
  });
});
