// The content-filter recipe followed as written (deploy/postfix/README.md, content-filter.cf.snippet
// and content-filter.master.cf): a real Postfix passes every message through Postern's relay proxy
// as its content filter, Postern (with the README's relay setting merged into the shipped config)
// hands it back on the re-injection listener, and Postfix delivers it onwards to smtp-sink. Checked:
// a message with a Bcc recipient is archived from the whole envelope (every recipient and the
// sender) and delivered to every recipient once; with Postern stopped Postfix keeps it queued
// (nothing delivered), and after Postern's restart it is delivered and archived once.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REPO, freePort, makeTempDir, startPostern, waitFor, waitForPort, type PosternServer } from './harness.ts';
import { recipePosternSettings, startPostfix, writeRecipeConfig, type Delivery, type PostfixInstance } from './postfix.ts';
import { assertDelivered, swaks } from './swaks.ts';

const MAIN_CF = join(REPO, 'deploy', 'postfix', 'content-filter.cf.snippet');
const MASTER_CF = join(REPO, 'deploy', 'postfix', 'content-filter.master.cf');
const RECIPE_RELAY = '[127.0.0.1]:2587';
const RECIPE_REINJECT = '127.0.0.1:10025';
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';

const tmp = makeTempDir('postern-cfilter-test-');
const dataDir = join(tmp.path, 'postern-data');
let relayPort: number;
let reinjectPort: number;
let configFile: string;
let postern: PosternServer | undefined;
let postfix: PostfixInstance | undefined;
let sink: { port: number; dir: string; child: ChildProcess; stop(): void } | undefined;

/** The active `name = value` lines of content-filter.cf.snippet, the relay port swapped in. */
function mainSettings(): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const raw of readFileSync(MAIN_CF, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new Error(`${MAIN_CF}: not a "name = value" line: ${JSON.stringify(raw)}`);
    out.push([m[1]!, m[2]!.split(RECIPE_RELAY).join(`[127.0.0.1]:${relayPort}`)]);
  }
  return out;
}

const startOurPostern = (): Promise<PosternServer> =>
  startPostern({ name: 'postfix-content-filter', env: { POSTERN_CONFIG: configFile, POSTERN_DATA_DIR: dataDir, POSTERN_RELAY_PORT: String(relayPort) } });

async function startSink(): Promise<NonNullable<typeof sink>> {
  const dir = makeTempDir('postern-cfilter-sink-');
  const port = await freePort();
  const child = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, '-d', join(dir.path, '%Y%m%d%H%M%S.'), `127.0.0.1:${port}`, '100'], { stdio: 'ignore' });
  await waitForPort(port, { child, timeoutMs: 10_000 });
  return { port, dir: dir.path, child, stop: () => { child.kill('SIGTERM'); dir.cleanup(); } };
}

function sinkDumps(marker: string): string[] {
  if (!sink || !existsSync(sink.dir)) return [];
  return readdirSync(sink.dir).map((f) => readFileSync(join(sink!.dir, f), 'latin1')).filter((t) => t.includes(marker));
}

before(async () => {
  mkdirSync(dataDir);
  relayPort = await freePort();
  reinjectPort = await freePort();
  const settings = recipePosternSettings('content-filter');
  assert.deepEqual(settings, { relay: { upstream: RECIPE_REINJECT } }, 'the README points relay.upstream at the re-injection listener');
  const master = readFileSync(MASTER_CF, 'utf8');
  assert.ok(master.includes(`${RECIPE_REINJECT} inet`), 'the master.cf recipe listens where the README says');
  configFile = writeRecipeConfig(tmp.path, { relay: { upstream: `127.0.0.1:${reinjectPort}` } });
  postern = await startOurPostern();
  await Promise.all([postern.addUser('alice', [ALICE]), postern.addUser('bob', [BOB]), postern.addUser('carol', [CAROL])]);
  sink = await startSink();
  // The site's normal delivery after the filter: everything to the sink.
  postfix = await startPostfix(0, [], [['relayhost', `[127.0.0.1]:${sink.port}`], ...mainSettings()], {
    master: master.split(RECIPE_REINJECT).join(`127.0.0.1:${reinjectPort}`),
  });
});

after(async () => {
  await postfix?.stop().catch(() => undefined);
  await postern?.stop().catch(() => undefined);
  sink?.stop();
  tmp.cleanup();
});

async function withLogs<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (caught) {
    // The Postern running now (the test may have restarted it): its log tail, its log kept.
    const err = postern ? await postern.diagnose(name, () => Promise.reject(caught)).catch((e: unknown) => e) : caught;
    // Postfix's own complaints first: a long report is cut in the middle, and the beginning is kept.
    const log = postfix?.maillog() ?? '';
    const complaints = log.split('\n').filter((l) => /warning|fatal|panic|throttl|deferred|suspend/i.test(l)).slice(-30);
    (err as Error).message = `${(err as Error).message.split('\n')[0]}\n--- Postfix complaints ---\n${complaints.join('\n')}\n${(err as Error).message.split('\n').slice(1).join('\n')}\n--- Postfix maillog (last 80 lines) ---\n${log.split('\n').slice(-80).join('\n')}`;
    throw err;
  }
}

const count = async (user: string, folder: string, marker: string): Promise<number> =>
  (await postern!.list(user, folder)).filter((r) => r.subject.includes(marker)).length;

test('a message with a Bcc recipient is archived from the whole envelope and delivered onwards once', async () => {
  await withLogs('postfix-content-filter', async () => {
    const marker = `cfilter-${randomUUID()}`;
    const res = await swaks(['--server', `127.0.0.1:${postfix!.port}`, '--from', BOB, '--to', `${ALICE},${CAROL}`, '--header', `To: <${ALICE}>`, '--header', `Subject: filtered ${marker}`]);
    assertDelivered(res);
    const queueId = /^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+)\s*$/m.exec(res.transcript)?.[1];
    assert.ok(queueId);
    // Postfix handed it to the filter (Postern's relay port), whose reply is the re-injection listener's.
    for (const rcpt of [ALICE, CAROL]) {
      const d: Delivery = await waitFor(`filter delivery for ${rcpt}`, async (): Promise<Delivery | undefined> => postfix!.deliveries(rcpt).find((x) => x.queueId === queueId), 30_000, 200);
      assert.equal(d.relay, `127.0.0.1[127.0.0.1]:${relayPort}`, `${rcpt} went through Postern's relay proxy`);
      assert.match(d.reply, /^250 2\.0\.0 Ok: queued as [0-9A-F]+$/, 'Postfix\'s own re-injection reply came back through Postern');
    }
    const dumps = await waitFor('the sink to receive the message', async () => { const d = sinkDumps(marker); return d.length > 0 ? d : undefined; }, 30_000, 200);
    assert.equal(dumps.length, 1, 'delivered onwards once');
    for (const r of [ALICE, CAROL]) assert.match(dumps[0]!, new RegExp(`X-Rcpt-Args: <${r.replace(/\./g, '\\.')}>`), `delivered to ${r}`);

    await postern!.waitForMessage('alice', 'Inbox', marker);
    await postern!.waitDrained();
    assert.equal(await count('carol', 'Inbox', marker), 1, 'carol (Bcc: only in the envelope)');
    assert.equal(await count('bob', 'Sent', marker), 1, 'bob (MAIL FROM)');
    assert.equal((await postern!.list('_unrouted', 'Inbox')).length, 0, 'nothing unassigned');
  });
});

test('with Postern stopped the message waits in Postfix\'s queue; after the restart it is delivered and archived once', async () => {
  await withLogs('postfix-content-filter-outage', async () => {
    assert.equal(await postern!.stop(), 0);
    postern = undefined;
    const marker = `cfilter-down-${randomUUID()}`;
    const res = await swaks(['--server', `127.0.0.1:${postfix!.port}`, '--from', BOB, '--to', ALICE, '--header', `Subject: filtered ${marker}`]);
    assertDelivered(res);
    const queueId = /^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+)\s*$/m.exec(res.transcript)?.[1];
    assert.ok(queueId);
    await waitFor('Postfix to defer it', async () => (postfix!.maillog().split('\n').some((l) => l.includes(`${queueId}: to=<${ALICE}>`) && l.includes('status=deferred')) ? true : undefined), 30_000, 200);
    assert.deepEqual(sinkDumps(marker), [], 'nothing delivered while Postern is down');

    postern = await startOurPostern();
    await waitFor('the sink to receive the message', async () => (sinkDumps(marker).length > 0 ? true : undefined), 90_000, 250);
    await postern.waitForMessage('alice', 'Inbox', marker);
    await postern.waitDrained();
    assert.equal(sinkDumps(marker).length, 1, 'delivered once');
    assert.equal(await count('alice', 'Inbox', marker), 1, 'archived once for alice');
    assert.equal(await count('bob', 'Sent', marker), 1, 'archived once for bob');
  });
});
