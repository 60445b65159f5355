// The shipped Grafana dashboard (deploy/grafana/postern.json) against real data: a Postern started from
// the shipped configuration (plus journal addresses and users) takes a varied load (Exchange journal
// reports, a duplicate, mail for nobody, an IMAP session with commands, a verify job), a real
// Prometheus scrapes it every second, and every panel's PromQL, with the dashboard variables filled
// in as Grafana would, is run through `promtool query instant` and must return samples. The JSON is
// also checked for what Grafana's import needs (datasource input, unique panel ids, variables).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { freePort, makeTempDir, REPO, run, sleep, startPostern, waitFor, type PosternServer } from './harness.ts';
import { enableImapUser } from './imap-targets.ts';

const DASHBOARD = join(REPO, 'deploy', 'grafana', 'postern.json');
const JOURNAL_FIXTURES = join(REPO, 'test', 'fixtures', 'journal');
const JOURNAL_FILES = ['exchange-inbound.eml', 'exchange-internal-typed.eml', 'exchange-forwarded.eml', 'multidrop-x-original-to.eml'];
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin'];
const PASSWORD = 'dashboard-pw-1';

interface Target { expr: string; refId: string; legendFormat?: string }
interface Panel { id: number; type: string; title: string; datasource?: { uid: string }; targets?: Target[]; gridPos: { h: number; w: number; x: number; y: number } }
interface Dashboard { uid: string; title: string; __inputs: Array<{ name: string; type: string; pluginId: string }>; templating: { list: Array<{ name: string }> }; panels: Panel[] }

const tmp = makeTempDir('postern-grafana-');
let postern: PosternServer;
let imapPort = 0;
let prom: { url: string; child: ChildProcess; logFile: string } | undefined;
let imapSocket: ReturnType<typeof connect> | undefined;

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

before(async () => {
  // The shipped configuration with the journal address the fixtures use and five known users.
  const shipped = parse(readFileSync(join(REPO, 'config', 'postern.yaml'), 'utf8')) as Record<string, unknown>;
  const routing = { ...(shipped.routing as Record<string, unknown>), journalAddresses: ['journal@archive.example.com', 'journal@example.com'] };
  const configFile = join(tmp.path, 'postern.yaml');
  // Plain-text LOGIN on loopback keeps the IMAP client a raw socket.
  const plugins = (shipped.plugins as Array<{ name: string; config?: Record<string, unknown> }>).map((p) => (p.name === 'imap' ? { ...p, config: { ...p.config, allowPlaintext: true } } : p));
  writeFileSync(configFile, stringify({ ...shipped, routing, plugins, users: USERS.map((u) => ({ name: u, addresses: [`${u}@example.com`] })) }));
  imapPort = await freePort();
  postern = await startPostern({ name: 'grafana', env: { POSTERN_CONFIG: configFile, POSTERN_IMAP_PORT: String(imapPort) } });
});

after(async () => {
  imapSocket?.destroy();
  if (prom) {
    prom.child.kill('SIGTERM');
    await new Promise((r) => prom?.child.once('exit', r));
  }
  await postern?.stop().catch(() => undefined);
  tmp.cleanup();
});

function fixture(file: string): Buffer {
  const text = readFileSync(join(JOURNAL_FIXTURES, file), 'latin1').replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  return Buffer.from(text.endsWith('\r\n') ? text : text + '\r\n', 'latin1');
}

/** A raw IMAP session: LOGIN, SELECT, FETCH, SEARCH, NOOP; left open so the session gauge shows it. */
async function imapSession(): Promise<void> {
  const s = connect(imapPort, '127.0.0.1');
  imapSocket = s;
  let buf = '';
  s.setEncoding('latin1');
  s.on('data', (d: string) => { buf += d; });
  const until = (re: RegExp): Promise<string> => waitFor(`IMAP ${re}`, async () => (re.test(buf) ? buf : undefined), 15_000, 20);
  await until(/^\* OK/m);
  let n = 0;
  for (const cmd of [`LOGIN alice ${PASSWORD}`, 'SELECT INBOX', 'FETCH 1:* (FLAGS ENVELOPE)', 'SEARCH ALL', 'NOOP']) {
    const tag = `t${++n}`;
    s.write(`${tag} ${cmd}\r\n`);
    const out = await until(new RegExp(`^${tag} (OK|NO|BAD)`, 'm'));
    assert.match(out, new RegExp(`^${tag} OK`, 'm'), `${cmd}: ${out}`);
  }
}

test('the dashboard is importable: datasource input, variables, unique ids, every panel queries Prometheus', () => {
  assert.equal(dashboard.uid, 'postern-overview');
  assert.deepEqual(dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId]), [['DS_PROMETHEUS', 'datasource', 'prometheus']]);
  assert.deepEqual(dashboard.templating.list.map((v) => v.name), ['job', 'instance']);
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const queries = dashboard.panels.filter((p) => p.type !== 'row');
  assert.ok(queries.length >= 14, `panels: ${queries.length}`);
  for (const p of queries) {
    assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `${p.title} uses the datasource input`);
    assert.ok((p.targets ?? []).length > 0, `${p.title} has queries`);
    for (const t of p.targets ?? []) assert.match(t.expr, /job=~"\$job",instance=~"\$instance"/, `${p.title}: ${t.expr} follows the variables`);
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
  }
  const titles = queries.map((p) => p.title.toLowerCase()).join(' | ');
  for (const want of ['intake depth', 'archive lag', 'ingest and archive rate', 'journal reports', 'routing outcomes', 'dedup ratio', 'imap sessions', 'imap command latency', 'job outcomes', 'verify problems', 'disk']) {
    assert.ok(titles.includes(want), `a panel for ${want}: ${titles}`);
  }
});

test('a varied load: journal reports, a duplicate, mail for nobody, an IMAP session, a verify job', async () => {
  await postern.diagnose('grafana-load', async () => {
    const c = await SmtpClient.open(postern.smtpPort);
    await c.read();
    await c.cmd('EHLO exchange.example.com');
    for (const f of JOURNAL_FILES) {
      const r = await sendMail(c, 'postmaster@example.com', ['journal@example.com'], fixture(f));
      assert.equal(r.code, 250, `${f}: ${r.text}`);
    }
    const plain = `From: bob@example.com\r\nTo: alice@example.com\r\nSubject: twice\r\nMessage-ID: <dashboard-twice@example.com>\r\n\r\nsame bytes\r\n`;
    assert.equal((await sendMail(c, 'bob@example.com', ['alice@example.com'], plain)).code, 250);
    const stray = `From: someone@elsewhere.test\r\nTo: nobody@elsewhere.test\r\nSubject: for nobody\r\n\r\nunrouted\r\n`;
    assert.equal((await sendMail(c, 'someone@elsewhere.test', ['nobody@elsewhere.test'], stray)).code, 250);
    await postern.waitDrained();
    // The same mail again once the first copy is archived: a dedup hit.
    assert.equal((await sendMail(c, 'bob@example.com', ['alice@example.com'], plain)).code, 250);
    c.close();
    await postern.waitDrained();
    await enableImapUser(postern.adminPort, postern.dataDir, 'alice', PASSWORD);
    await imapSession();
    await postern.cliOk(['jobs', 'create', 'dashboard-verify', '--kind', 'verify', '--options', '{}']);
    await postern.cliOk(['jobs', 'run', 'dashboard-verify', '--wait']);
    const metrics = await postern.metrics();
    for (const series of [/^postern_journal_reports_total\{/m, /^postern_dedup_duplicates_total [1-9]/m, /^postern_unrouted_messages_total [1-9]/m, /^postern_job_runs_total\{kind="verify"/m, /^postern_imap_command_duration_seconds_bucket\{/m]) {
      assert.match(metrics, series);
    }
  });
});

test('every panel query returns data from a real Prometheus scraping the loaded server (promtool query instant)', async () => {
  const port = await freePort();
  const configFile = join(tmp.path, 'prometheus.yml');
  writeFileSync(configFile, stringify({
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    scrape_configs: [{ job_name: 'postern', metrics_path: '/metrics', static_configs: [{ targets: [`127.0.0.1:${postern.adminPort}`] }] }],
  }));
  const storage = join(tmp.path, 'tsdb');
  mkdirSync(storage);
  const logFile = join(tmp.path, 'prometheus.log');
  const fd = openSync(logFile, 'a');
  const child = spawn('/usr/bin/prometheus', [`--config.file=${configFile}`, `--storage.tsdb.path=${storage}`, `--web.listen-address=127.0.0.1:${port}`], { cwd: tmp.path, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  prom = { url: `http://127.0.0.1:${port}`, child, logFile };
  const url = prom.url;
  const promLog = (): string => readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
  await waitFor('Prometheus ready', async () => {
    const res = await fetch(`${url}/-/ready`).catch(() => null);
    return res?.status === 200 ? true : undefined;
  }, 30_000, 100).catch((err: Error) => { throw new Error(`${err.message}\n${promLog()}`); });

  // A few scrapes after the load so rate() has two samples of every series.
  const archived = await postern.status();
  await waitFor('Prometheus has the archive commits', async () => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent('count_over_time(postern_archive_commits_total[1m])')}`);
    const body = (await res.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
    return Number(body.data?.result?.[0]?.value[1] ?? 0) >= 4 ? true : undefined;
  }, 30_000, 250);
  assert.ok(archived.archive.messages > 0);

  const fill = (expr: string): string => expr
    .replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m')
    .replaceAll('$job', 'postern').replaceAll('$instance', '.+');
  const empty: string[] = [];
  let checked = 0;
  for (const p of dashboard.panels) {
    for (const t of p.targets ?? []) {
      const expr = fill(t.expr);
      assert.ok(!expr.includes('$'), `every variable filled in: ${expr}`);
      const r = await run('promtool', ['query', 'instant', url, expr], { timeoutMs: 30_000 });
      const out = r.stdout.toString('utf8');
      assert.equal(r.code, 0, `promtool query instant ${expr}: ${out}${r.stderr}`);
      const samples = out.split('\n').filter((l) => l.includes('=>'));
      if (samples.length === 0) empty.push(`${p.title} [${t.refId}]: ${expr}`);
      checked++;
    }
  }
  assert.deepEqual(empty, [], `panel queries without data:\n${empty.join('\n')}`);
  assert.ok(checked >= 20, `queries checked: ${checked}`);
  await sleep(0);
});
