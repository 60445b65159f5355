// Interop for the SMTP relay proxy with real peers: swaks sends through Postern's relay port to a
// real Postfix upstream, which delivers onwards to Postfix's smtp-sink (dumping each message to a
// file). Checked: the client sees Postfix's reply, the archive holds exactly what swaks sent with
// the recipients Postfix accepted, a recipient Postfix refuses (check_recipient_access) is refused
// to the client and not archived, a second Postfix using deploy/postfix/relay-proxy.cf.snippet
// relays through Postern, swaks AUTH is passed through to Postfix (Dovecot SASL) and the mail filed as
// the user's sent mail, with the upstream down the client gets 421 and nothing is archived, and the
// relay metrics pass promtool.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REPO, freePort, makeTempDir, run, runOk, waitFor, type PosternServer, startPostern } from './harness.ts';
import { startPostfix, type PostfixInstance } from './postfix.ts';
import { startDovecot } from './dovecot.ts';
import { assertDelivered, describeDiff, sentContent, swaks } from './swaks.ts';

const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const RECIPE = join(REPO, 'deploy', 'postfix', 'relay-proxy.cf.snippet');

let sink: { port: number; dir: string; child: ChildProcess; stop(): void };
let upstream: PostfixInstance;
let postern: PosternServer;
let relayPort: number;

async function startSink(): Promise<typeof sink> {
  const tmp = makeTempDir('postern-relay-sink-');
  const port = await freePort();
  const child = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, '-d', join(tmp.path, '%Y%m%d%H%M%S.'), `127.0.0.1:${port}`, '100'], { stdio: 'ignore' });
  await waitFor(`smtp-sink on ${port}`, async () => {
    const net = await import('node:net');
    return new Promise<true | undefined>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(undefined));
    });
  }, 10_000, 100);
  return { port, dir: tmp.path, child, stop: () => { child.kill('SIGTERM'); tmp.cleanup(); } };
}

/** Messages smtp-sink dumped so far whose text contains marker. */
function sinkDumps(marker: string): string[] {
  if (!existsSync(sink.dir)) return [];
  return readdirSync(sink.dir).map((f) => readFileSync(join(sink.dir, f), 'latin1')).filter((t) => t.includes(marker));
}

async function postconf(pf: PostfixInstance, settings: string[]): Promise<void> {
  await runOk('/usr/sbin/postconf', ['-c', pf.configDir, '-e', ...settings]);
  await runOk('/usr/sbin/postfix', ['-c', pf.configDir, 'reload']);
}

before(async () => {
  sink = await startSink();
  upstream = await startPostfix(sink.port, ['common', 'relayhost']);
  await postconf(upstream, ['smtpd_recipient_restrictions = check_recipient_access inline:{ nobody@example.test=REJECT }, permit_mynetworks, reject']);
  relayPort = await freePort();
  postern = await startPostern({
    name: 'relay-postfix',
    // The tests reconfigure the upstream Postfix (SASL) between tests; a pooled upstream session
    // would still carry the EHLO of the old settings, so each client gets a fresh one here.
    env: { POSTERN_RELAY_PORT: String(relayPort), POSTERN_RELAY_UPSTREAM: `127.0.0.1:${upstream.port}`, POSTERN_RELAY_UPSTREAM_POOL_SIZE: '0' },
  });
  await Promise.all([postern.addUser('alice', [ALICE]), postern.addUser('bob', [BOB])]);
});

after(async () => {
  await postern?.stop().catch(() => undefined);
  await upstream?.stop().catch(() => undefined);
  sink?.stop();
});

async function checkArchived(marker: string, expected: Buffer): Promise<void> {
  const inbox = await postern.waitForMessage('alice', 'Inbox', marker);
  const got = await postern.get('alice', inbox.uid, 'Inbox');
  assert.ok(got.equals(expected), `alice/Inbox differs from what swaks sent: ${describeDiff(got, expected)}`);
  await postern.waitForMessage('bob', 'Sent', marker);
}

test('swaks (plain) through the relay to Postfix: Postfix reply, delivered onwards, archived byte-exact', async () => {
  await postern.diagnose('relay-swaks-plain', async () => {
    const marker = `relay-plain-${randomUUID()}`;
    const res = await swaks(['--server', `127.0.0.1:${relayPort}`, '--from', BOB, '--to', ALICE, '--header', `Subject: ${marker}`]);
    assertDelivered(res);
    assert.match(res.transcript, /^<-  250 2\.0\.0 Ok: queued as [0-9A-F]+/m, 'the client sees Postfix reply');
    await checkArchived(marker, sentContent(res.transcript));
    await waitFor('the sink to receive the message', async () => (sinkDumps(marker).length === 1 ? true : undefined), 20_000, 250);
    assert.match(sinkDumps(marker)[0] ?? '', /X-Rcpt-Args: <alice@example\.test>/);
  });
});

test('swaks with STARTTLS and pipelining through the relay', async () => {
  await postern.diagnose('relay-swaks-tls', async () => {
    const marker = `relay-tls-${randomUUID()}`;
    const res = await swaks(['--server', `127.0.0.1:${relayPort}`, '--tls', '--pipeline', '--from', BOB, '--to', ALICE, '--header', `Subject: ${marker}`]);
    assertDelivered(res);
    assert.match(res.transcript, /^=== TLS started with cipher /m);
    await checkArchived(marker, sentContent(res.transcript));
  });
});

test('a recipient Postfix refuses is refused to the client; the archive holds only the accepted one', async () => {
  await postern.diagnose('relay-swaks-partial', async () => {
    const marker = `relay-partial-${randomUUID()}`;
    const res = await swaks(['--server', `127.0.0.1:${relayPort}`, '--from', BOB, '--to', `${ALICE},nobody@example.test`, '--header', `Subject: ${marker}`]);
    assert.match(res.transcript, /^<\*\* 554 5\.7\.1 <nobody@example\.test>: Recipient address rejected: Access denied/m, res.transcript);
    assertDelivered(res);
    await checkArchived(marker, sentContent(res.transcript));
    const status = await postern.status();
    assert.equal(status.intake.depth, 0);
    await waitFor('the sink to receive the message', async () => (sinkDumps(marker).length === 1 ? true : undefined), 20_000, 250);
    assert.doesNotMatch(sinkDumps(marker)[0] ?? '', /nobody@example\.test>\n/, 'the refused recipient was never delivered');
  });
});

test('a Postfix with deploy/postfix/relay-proxy.cf.snippet sends through the relay', async () => {
  await postern.diagnose('relay-postfix-relayhost', async () => {
    const front = await startPostfix(relayPort, ['common']);
    try {
      const recipe = readFileSync(RECIPE, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
      assert.ok(recipe.includes('relayhost = [127.0.0.1]:2587'), 'the recipe names the default relay port');
      await postconf(front, recipe.map((l) => l.split('[127.0.0.1]:2587').join(`[127.0.0.1]:${relayPort}`)));
      const marker = `relay-front-${randomUUID()}`;
      const res = await swaks(['--server', `127.0.0.1:${front.port}`, '--from', BOB, '--to', ALICE, '--header', `Subject: ${marker}`]);
      assertDelivered(res);
      const delivered = await waitFor('the front Postfix to relay through Postern', async () => front.deliveries(ALICE).find((d) => d.relay.endsWith(`:${relayPort}`)), 30_000, 250);
      assert.match(delivered.reply, /250 2\.0\.0 Ok: queued as/, 'the upstream Postfix reply reached the front Postfix');
      const row = await postern.waitForMessage('alice', 'Inbox', marker, 30_000);
      const archived = await postern.get('alice', row.uid, 'Inbox');
      const clientSent = sentContent(res.transcript);
      assert.ok(archived.subarray(archived.length - clientSent.length).equals(clientSent), 'the archived copy ends with what the client sent (front Postfix added Received)');
    } finally {
      await front.stop();
    }
  });
});

test('swaks AUTH (STARTTLS) passed through to Postfix with Dovecot SASL: refused, then accepted and filed as sent', async () => {
  await postern.diagnose('relay-swaks-auth', async () => {
    const sockDir = makeTempDir('postern-relay-sasl-');
    chmodSync(sockDir.path, 0o755);
    const socket = join(sockDir.path, 'auth');
    const dovecot = await startDovecot({
      name: 'relay-sasl', users: [{ name: 'alice', password: 'alice-sasl-pass' }], protocols: ['pop3'], implicitTls: false,
      extraConfig: `service auth {\n  unix_listener ${socket} {\n    mode = 0666\n  }\n}\n`,
    });
    try {
      await postconf(upstream, [
        'smtpd_sasl_type = dovecot', `smtpd_sasl_path = ${socket}`, 'smtpd_sasl_auth_enable = yes',
        'smtpd_recipient_restrictions = check_recipient_access inline:{ nobody@example.test=REJECT }, permit_sasl_authenticated, permit_mynetworks, reject',
      ]);
      const relay = `127.0.0.1:${relayPort}`;
      const bad = await swaks(['--server', relay, '--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'wrong-sasl-pass', '--from', 'someone@elsewhere.test', '--to', BOB]);
      assert.match(bad.transcript, /^<~\* +535 5\.7\.8 Error: authentication failed/m, bad.transcript);
      const marker = `relay-auth-${randomUUID()}`;
      const res = await swaks(['--server', relay, '--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'alice-sasl-pass',
        '--from', 'someone@elsewhere.test', '--to', BOB, '--header', `Subject: ${marker}`]);
      assertDelivered(res);
      assert.match(res.transcript, /^<~  235 /m);
      await postern.waitForMessage('alice', 'Sent', marker, 20_000);
      await postern.waitForMessage('bob', 'Inbox', marker);
      assert.match(upstream.maillog(), /sasl_method=PLAIN, sasl_username=alice/, 'Postfix authenticated the login Postern passed through');
      const logs = postern.logs();
      assert.ok(!logs.includes('alice-sasl-pass') && !logs.includes('wrong-sasl-pass'), 'no password in the Postern log');
    } finally {
      await dovecot.stop();
      sockDir.cleanup();
    }
  });
});

test('the upstream is down: the client gets 421 and nothing is archived', async () => {
  await postern.diagnose('relay-upstream-down', async () => {
    const before = (await postern.waitDrained()).archive.messages;
    await upstream.stop();
    const marker = `relay-down-${randomUUID()}`;
    const res = await swaks(['--server', `127.0.0.1:${relayPort}`, '--from', BOB, '--to', ALICE, '--header', `Subject: ${marker}`]);
    assert.notEqual(res.code, 0);
    assert.match(res.transcript, /^<\*\* +421 4\.4\.1 Upstream mail server unavailable/m, res.transcript);
    const status = await postern.waitDrained();
    assert.equal(status.archive.messages, before, 'nothing archived');
    assert.match(await postern.metrics(), /postern_relay_transactions_total\{outcome="upstream_unavailable"\} [1-9]/);
  });
});

test('the relay metrics pass `promtool check metrics`', async () => {
  await postern.diagnose('relay-promtool', async () => {
    const text = await postern.metrics();
    for (const outcome of ['delivered', 'upstream_unavailable']) {
      assert.match(text, new RegExp(`^postern_relay_transactions_total\\{outcome="${outcome}"\\} [1-9]`, 'm'), `${outcome} counted`);
    }
    assert.match(text, /^postern_relay_upstream_duration_seconds_bucket\{le="0.01",phase="command"\} \d+/m);
    const check = await run('promtool', ['check', 'metrics'], { input: text });
    assert.equal(check.code, 0, `promtool check metrics exited ${check.code}:\n${check.stdout.toString()}${check.stderr}`);
  });
});
