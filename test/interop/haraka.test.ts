// Interop: the Haraka plugin (plugins/haraka, installed by path as its README says) in the real
// Haraka from npm, on loopback, in front of a real Postern.
//   archive_only: swaks sends through Haraka with a Bcc recipient; Postern files it for every
//   envelope recipient and the sender (the true envelope); the archived bytes are Haraka's
//   Received header on top of exactly what swaks sent. With Postern stopped, swaks gets a 4xx from
//   Haraka; after Postern's restart (same data, same port) the resend is archived exactly once.
//   pass_through: received mail (queue hook) and relayed mail (queue_outbound, relay ACL) are
//   archived and then forwarded by queue/smtp_forward to Postfix's smtp-sink with every recipient;
//   with Postern down nothing is forwarded and the client gets a 4xx.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, makeTempDir, startPostern, waitFor, waitForPort, type PosternServer } from './harness.ts';
import { recipePosternIni, startHaraka, type HarakaInstance } from './haraka.ts';
import { assertDelivered, describeDiff, sentContent, swaks, type SwaksResult } from './swaks.ts';

const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';
const DAVE = 'dave@elsewhere.test';

const tmp = makeTempDir('postern-haraka-test-');
const dataDir = join(tmp.path, 'postern-data');
let smtpPort: number;
let postern: PosternServer | undefined;
let archiver: HarakaInstance | undefined;
let forwarder: HarakaInstance | undefined;
let sink: { port: number; dir: string; child: ChildProcess; stop(): void } | undefined;

async function startOurPostern(): Promise<PosternServer> {
  return startPostern({ name: 'haraka', env: { POSTERN_DATA_DIR: dataDir, POSTERN_SMTP_PORT: String(smtpPort) } });
}

async function startSink(): Promise<NonNullable<typeof sink>> {
  const dir = makeTempDir('postern-haraka-sink-');
  const port = await freePort();
  const child = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, '-d', join(dir.path, '%Y%m%d%H%M%S.'), `127.0.0.1:${port}`, '100'], { stdio: 'ignore' });
  await waitForPort(port, { child, timeoutMs: 10_000 });
  return { port, dir: dir.path, child, stop: () => { child.kill('SIGTERM'); dir.cleanup(); } };
}

/** What smtp-sink dumped so far that contains marker. */
function sinkDumps(marker: string): string[] {
  if (!sink || !existsSync(sink.dir)) return [];
  return readdirSync(sink.dir).map((f) => readFileSync(join(sink!.dir, f), 'latin1')).filter((t) => t.includes(marker));
}

before(async () => {
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dataDir);
  smtpPort = await freePort();
  postern = await startOurPostern();
  await Promise.all([postern.addUser('alice', [ALICE]), postern.addUser('bob', [BOB]), postern.addUser('carol', [CAROL])]);
  archiver = await startHaraka(recipePosternIni(smtpPort), { plugins: ['rcpt_to.in_host_list', 'postern'] });
});

after(async () => {
  await archiver?.stop().catch(() => undefined);
  await forwarder?.stop().catch(() => undefined);
  sink?.stop();
  await postern?.stop().catch(() => undefined);
  tmp.cleanup();
});

async function withLogs<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (caught) {
    // The Postern running now (the test may have restarted it): its log tail, its log kept.
    const err = postern ? await postern.diagnose(name, () => Promise.reject(caught)).catch((e: unknown) => e) : caught;
    (err as Error).message += `\n--- Haraka (archive_only) log ---\n${archiver?.log().split('\n').slice(-40).join('\n') ?? ''}`;
    if (forwarder) (err as Error).message += `\n--- Haraka (pass_through) log ---\n${forwarder.log().split('\n').slice(-40).join('\n')}`;
    throw err;
  }
}

/** The reply line swaks got after the end of data. */
function replyAfterDot(res: SwaksResult): string | undefined {
  const lines = res.transcript.split(/\r?\n/);
  const dot = lines.findIndex((l) => /^ [-~]> \.$/.test(l));
  return dot >= 0 ? lines.slice(dot + 1).find((l) => /^<[-~*]{1,2} /.test(l)) : undefined;
}

const count = async (user: string, folder: string, marker: string): Promise<number> =>
  (await postern!.list(user, folder)).filter((r) => r.subject.includes(marker)).length;

test('archive_only: a message with a Bcc recipient is archived for every envelope recipient and the sender before Haraka answers 250', async () => {
  await withLogs('haraka-bcc', async () => {
    const marker = `haraka-${randomUUID()}`;
    const res = await swaks([
      '--server', `127.0.0.1:${archiver!.port}`, '--from', BOB, '--to', `${ALICE},${CAROL}`,
      '--header', `To: <${ALICE}>`, '--header', `Subject: via haraka ${marker}`,
      // Lines that start with dots travel dot-stuffed through both SMTP legs and must arrive as sent.
      '--body', 'First line\n.a line starting with a dot\n..two dots\n.\nlast line',
    ]);
    assertDelivered(res);
    assert.match(replyAfterDot(res) ?? '', /^<-  250 Archived \(/, 'Haraka answered with the plugin\'s OK');
    // Postern had acknowledged before Haraka's 250: the message is already in the intake or archive.
    const aliceRow = await postern!.waitForMessage('alice', 'Inbox', marker);
    await postern!.waitDrained();
    assert.equal(await count('alice', 'Inbox', marker), 1, 'alice (To)');
    assert.equal(await count('carol', 'Inbox', marker), 1, 'carol (Bcc: only in the envelope)');
    assert.equal(await count('bob', 'Sent', marker), 1, 'bob (MAIL FROM)');
    assert.equal((await postern!.list('_unrouted', 'Inbox')).length, 0, 'nothing unassigned');

    // The bytes: Haraka's Received header on top of exactly what swaks sent.
    const clientSent = sentContent(res.transcript);
    const copy = await postern!.get('alice', aliceRow.uid, 'Inbox');
    const tail = copy.subarray(copy.length - clientSent.length);
    assert.ok(tail.equals(clientSent), `archived copy ends with the client's bytes: ${describeDiff(tail, clientSent)}`);
    assert.ok(copy.includes('\r\n.a line starting with a dot\r\n..two dots\r\n.\r\nlast line\r\n'), 'dot lines arrive unstuffed, as written');
    const added = copy.subarray(0, copy.length - clientSent.length).toString('latin1');
    assert.match(added, /^Received: from [^\r\n]*\r\n(\t[^\r\n]*\r\n)*$/, `Haraka added one Received header: ${JSON.stringify(added)}`);
    assert.match(added, /by haraka-interop\.test/, 'the Received header is Haraka\'s');
    assert.match(archiver!.log(), /archived by Postern from queue for 2 recipient\(s\)/, 'the plugin logged the hand-over with both recipients');
  });
});

test('archive_only: with Postern stopped Haraka answers 4xx; after the restart the resend is archived once', async () => {
  await withLogs('haraka-outage', async () => {
    assert.equal(await postern!.stop(), 0, 'Postern exits 0');
    postern = undefined;
    const marker = `outage-${randomUUID()}`;
    const send = (): Promise<SwaksResult> => swaks(['--server', `127.0.0.1:${archiver!.port}`, '--from', BOB, '--to', ALICE, '--header', `Subject: outage ${marker}`]);
    const refused = await send();
    assert.notEqual(refused.code, 0, `swaks reports the failure:\n${refused.transcript}`);
    assert.match(replyAfterDot(refused) ?? '', /^<\*\* +4\d\d /, `Haraka answered the end of data with a 4xx:\n${refused.transcript}`);
    assert.match(archiver!.log(), /not archived from queue \(POSTERN_CONNECT\)/, 'the plugin logged why');

    postern = await startOurPostern();
    assertDelivered(await send());
    await postern.waitForMessage('alice', 'Inbox', marker);
    await postern.waitDrained();
    assert.equal(await count('alice', 'Inbox', marker), 1, 'archived exactly once for alice');
    assert.equal(await count('bob', 'Sent', marker), 1, 'archived exactly once for bob');
  });
});

test('pass_through: received and relayed mail is archived, then forwarded with every recipient; with Postern down nothing is forwarded', async () => {
  await withLogs('haraka-pass-through', async () => {
    sink = await startSink();
    forwarder = await startHaraka(recipePosternIni(smtpPort, { mode: 'pass_through' }), {
      plugins: ['relay', 'rcpt_to.in_host_list', 'postern', 'queue/smtp_forward'],
      files: {
        'smtp_forward.ini': `host=127.0.0.1\nport=${sink.port}\nenable_outbound=true\n`,
        // Connections from 127.0.0.2 may relay (queue_outbound); 127.0.0.1 is an ordinary client (queue).
        'relay_acl_allow': '127.0.0.2/32\n',
      },
    });

    const inbound = `in-${randomUUID()}`;
    assertDelivered(await swaks(['--server', `127.0.0.1:${forwarder.port}`, '--from', DAVE, '--to', `${ALICE},${CAROL}`, '--header', `To: <${ALICE}>`, '--header', `Subject: inbound ${inbound}`]));
    const relayed = `out-${randomUUID()}`;
    assertDelivered(await swaks(['--server', `127.0.0.1:${forwarder.port}`, '--local-interface', '127.0.0.2', '--from', BOB, '--to', `${DAVE},${CAROL}`, '--header', `To: <${DAVE}>`, '--header', `Subject: outbound ${relayed}`]));
    const handOvers = (hook: string): number => forwarder!.log().split('\n').filter((l) => l.includes(`archived by Postern from ${hook} for 2 recipient(s)`)).length;
    assert.equal(handOvers('queue'), 1, 'the received message went through the queue hook');
    assert.equal(handOvers('queue_outbound'), 1, 'the relayed message went through queue_outbound');

    for (const [marker, rcpts] of [[inbound, [ALICE, CAROL]], [relayed, [DAVE, CAROL]]] as const) {
      const dumps = await waitFor(`smtp-sink got ${marker}`, async () => { const d = sinkDumps(marker); return d.length > 0 ? d : undefined; }, 20_000, 200);
      assert.equal(dumps.length, 1, `forwarded once: ${marker}`);
      for (const r of rcpts) assert.match(dumps[0]!, new RegExp(`X-Rcpt-Args: <${r.replace(/\./g, '\\.')}>`), `forwarded to ${r}`);
    }
    await postern!.waitDrained();
    assert.equal(await count('alice', 'Inbox', inbound), 1, 'inbound: alice');
    assert.equal(await count('carol', 'Inbox', inbound), 1, 'inbound: carol (Bcc)');
    assert.equal(await count('bob', 'Sent', relayed), 1, 'relayed: bob\'s Sent');
    assert.equal(await count('carol', 'Inbox', relayed), 1, 'relayed: carol (Bcc)');

    assert.equal(await postern!.stop(), 0);
    postern = undefined;
    const down = `down-${randomUUID()}`;
    const refused = await swaks(['--server', `127.0.0.1:${forwarder.port}`, '--from', DAVE, '--to', ALICE, '--header', `Subject: down ${down}`]);
    assert.match(replyAfterDot(refused) ?? '', /^<\*\* +4\d\d /, `4xx while Postern is down:\n${refused.transcript}`);
    assert.deepEqual(sinkDumps(down), [], 'nothing forwarded that Postern does not hold');
  });
});
