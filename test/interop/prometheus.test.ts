// Interop with a real Prometheus server: the shipped deploy/prometheus/ files pass promtool (config,
// rules, rule unit tests), and a Prometheus started from the shipped prometheus.yml (target replaced by
// a live Postern, 1 s scrape and evaluation intervals, temp TSDB, free loopback port) scrapes Postern,
// counts exactly the messages swaks sent, loads the alert groups healthy and fires nothing for a healthy
// server. A second Postern with admin.metricsRequireToken is scraped with the shipped (commented)
// `authorization: credentials_file:` block, and refused without the token or with a wrong one.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { freePort, makeTempDir, REPO, run, sleep, startPostern, waitFor, type PosternServer } from './harness.ts';
import { assertDelivered, swaks } from './swaks.ts';

const PROMETHEUS = '/usr/bin/prometheus';
const DEPLOY = join(REPO, 'deploy', 'prometheus');
const SHIPPED_CONFIG = join(DEPLOY, 'prometheus.yml');
const SHIPPED_RULES = join(DEPLOY, 'postern-alerts.yml');
const SHIPPED_RULE_TESTS = join(DEPLOY, 'postern-alerts.test.yml');
const JOB = 'postern';
const RCPT = 'scraped@example.test';
const MESSAGES = 3;
const READY_TIMEOUT_MS = 30_000;
const SCRAPE_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

let postern: PosternServer;
let guarded: PosternServer;
let prom: PrometheusProcess | undefined;
const tmp = makeTempDir('postern-prometheus-');

interface PrometheusProcess {
  url: string;
  logFile: string;
  stop(): Promise<void>;
}

interface Sample { metric: Record<string, string>; value: [number, string] }
interface RuleInfo { name: string; health: string; lastError?: string; type: string }
interface RuleGroup { name: string; file: string; rules: RuleInfo[]; lastEvaluation: string }
interface AlertInfo { labels: Record<string, string>; state: string }
interface TargetInfo { labels: Record<string, string>; health: string; lastError: string }

before(async () => {
  postern = await startPostern({ name: 'prometheus' });
  guarded = await startPostern({ name: 'prometheus-token', env: { POSTERN_ADMIN_METRICS_REQUIRE_TOKEN: 'true' } });
  await postern.addUser('scraped', [RCPT]);
});

after(async () => {
  await prom?.stop().catch(() => undefined);
  await postern?.stop().catch(() => undefined);
  await guarded?.stop().catch(() => undefined);
  tmp.cleanup();
});

function tail(file: string, n = 40): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-n).join('\n') : '(no log)';
}

/** The shipped `authorization:` block of the postern job, uncommented (it documents the token setup). */
function shippedAuthorization(): Record<string, unknown> {
  const lines = readFileSync(SHIPPED_CONFIG, 'utf8').split('\n');
  const start = lines.findIndex((l) => /^\s*# authorization:\s*$/.test(l));
  assert.ok(start >= 0, 'prometheus.yml documents an `authorization:` block (commented) for the bearer token');
  const block: string[] = [];
  for (const line of lines.slice(start)) {
    const m = /^(\s*)# ?(.*)$/.exec(line);
    if (!m || (block.length > 0 && !/^\s{2,}\S/.test(m[2] ?? ''))) break;
    block.push((m[2] ?? '').trimEnd());
  }
  const parsed: unknown = parse(block.join('\n'));
  assert.ok(parsed !== null && typeof parsed === 'object' && 'authorization' in parsed, `authorization block parses: ${block.join(' / ')}`);
  const auth = (parsed as { authorization: unknown }).authorization;
  assert.ok(auth !== null && typeof auth === 'object', 'authorization is a mapping');
  const a = auth as Record<string, unknown>;
  assert.equal(a.type, 'Bearer');
  assert.equal(typeof a.credentials_file, 'string', 'authorization.credentials_file is given');
  return a;
}

/** The shipped config with the targets replaced, 1 s intervals and the shipped rules by absolute path. */
function generateConfig(): string {
  const doc: unknown = parse(readFileSync(SHIPPED_CONFIG, 'utf8'));
  assert.ok(doc !== null && typeof doc === 'object', 'prometheus.yml is a mapping');
  const config = doc as { global?: Record<string, unknown>; rule_files?: unknown; scrape_configs?: unknown };
  assert.ok(Array.isArray(config.scrape_configs), 'prometheus.yml has scrape_configs');
  const job = (config.scrape_configs as Array<Record<string, unknown>>).find((j) => j.job_name === JOB);
  assert.ok(job, `prometheus.yml has a "${JOB}" job`);
  assert.deepEqual(config.rule_files, ['postern-alerts.yml'], 'rule_files names the alert rules next to it');

  const wrongToken = join(tmp.path, 'wrong.token');
  writeFileSync(wrongToken, 'not-the-admin-token\n', { mode: 0o600 });
  const authorization = shippedAuthorization();
  const at = (port: number): Array<{ targets: string[] }> => [{ targets: [`127.0.0.1:${port}`] }];
  const scrapeConfigs = [
    { ...job, static_configs: at(postern.adminPort) },
    { ...job, job_name: `${JOB}-token`, static_configs: at(guarded.adminPort), authorization: { ...authorization, credentials_file: join(guarded.dataDir, 'admin.token') } },
    { ...job, job_name: `${JOB}-no-token`, static_configs: at(guarded.adminPort) },
    { ...job, job_name: `${JOB}-wrong-token`, static_configs: at(guarded.adminPort), authorization: { ...authorization, credentials_file: wrongToken } },
  ];
  return stringify({
    ...config,
    global: { ...config.global, scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: [SHIPPED_RULES],
    scrape_configs: scrapeConfigs,
  });
}

async function startPrometheus(configFile: string): Promise<PrometheusProcess> {
  let lastError: Error | undefined;
  // A port found free can be taken before Prometheus binds it: retry with another one.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startPrometheusOnce(configFile, attempt);
    } catch (err) {
      lastError = err as Error;
      if (!/address already in use/i.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error('Prometheus did not start');
}

async function startPrometheusOnce(configFile: string, attempt: number): Promise<PrometheusProcess> {
  const port = await freePort();
  const storage = join(tmp.path, `tsdb-${attempt}`);
  mkdirSync(storage);
  const logFile = join(tmp.path, `prometheus-${attempt}.log`);
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(PROMETHEUS, [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${storage}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=info',
    ], { cwd: tmp.path, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('error', () => { exited = true; resolve(); });
    child.once('exit', () => { exited = true; resolve(); });
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([exit.then(() => true), new Promise<boolean>((r) => { timer = setTimeout(() => r(false), STOP_TIMEOUT_MS); })]);
    clearTimeout(timer);
    if (!done) {
      child.kill('SIGKILL');
      await exit;
    }
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited) throw new Error(`prometheus exited before it was ready:\n${tail(logFile)}`);
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return { url, logFile, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready within ${READY_TIMEOUT_MS} ms:\n${tail(logFile)}`);
    }
    await sleep(100);
  }
}

/** GET a Prometheus HTTP API path; returns `data` of a successful answer. */
async function api<T>(path: string): Promise<T> {
  if (!prom) throw new Error('Prometheus is not running');
  const res = await fetch(`${prom.url}${path}`, { signal: AbortSignal.timeout(5000) });
  const body: unknown = await res.json();
  if (res.status !== 200 || body === null || typeof body !== 'object' || (body as { status?: unknown }).status !== 'success') {
    throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(body)}`);
  }
  return (body as { data: T }).data;
}

async function query(expr: string): Promise<Sample[]> {
  const data = await api<{ resultType: string; result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
  assert.equal(data.resultType, 'vector', `${expr} gives an instant vector`);
  return data.result;
}

/** Polls an instant query until it has exactly one sample with the wanted value. */
async function waitForValue(expr: string, want: number): Promise<void> {
  let last: Sample[] = [];
  try {
    await waitFor(`${expr} == ${want} in Prometheus`, async () => {
      last = await query(expr);
      return last.length === 1 && Number(last[0]?.value[1]) === want ? true : undefined;
    }, SCRAPE_TIMEOUT_MS, 250);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last result: ${JSON.stringify(last)}\nprometheus log:\n${tail(prom?.logFile ?? '')}`);
  }
}

test('promtool accepts the shipped config (its rule file resolves), the rules, and their unit tests', async () => {
  for (const args of [
    ['check', 'config', SHIPPED_CONFIG],
    ['check', 'rules', SHIPPED_RULES],
    ['test', 'rules', SHIPPED_RULE_TESTS],
  ]) {
    // `test rules` evaluates every rule over each case's whole span (days for PosternVerifyOverdue):
    // about 20 s on 2 busy cores, so more than run()'s default 30 s must be allowed.
    const r = await run('promtool', args, { timeoutMs: 180_000 });
    const out = `${r.stdout.toString()}${r.stderr}`;
    assert.equal(r.code, 0, `promtool ${args.join(' ')} exited ${r.code}:\n${out}`);
    if (args[1] === 'config') assert.match(out, /1 rule files found/, 'the config names one rule file and it exists');
  }
});

test('promtool rejects the shipped config when its rule file is missing next to it', async () => {
  const alone = join(tmp.path, 'alone');
  mkdirSync(alone);
  writeFileSync(join(alone, 'prometheus.yml'), readFileSync(SHIPPED_CONFIG));
  const r = await run('promtool', ['check', 'config', join(alone, 'prometheus.yml')]);
  assert.notEqual(r.code, 0, 'a rule_files entry that resolves to nothing fails the check');
  assert.match(`${r.stdout.toString()}${r.stderr}`, /postern-alerts\.yml/);
});

test('every metric the alert rules use is one Postern exposes, with the type the rule needs', async () => {
  const text = await postern.metrics();
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (postern_[a-z0-9_]+) (\w+)$/gm)) types.set(m[1] ?? '', m[2] ?? '');
  const shipped = parse(readFileSync(SHIPPED_RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  let checked = 0;
  for (const rule of shipped.groups.flatMap((g) => g.rules)) {
    for (const [name] of rule.expr.matchAll(/postern_[a-z0-9_]+/g)) {
      const histogram = /^(.*)_(bucket|count|sum)$/.exec(name);
      if (histogram && types.get(histogram[1] ?? '') === 'histogram') continue;
      assert.ok(types.has(name), `${rule.alert} uses ${name}, which /metrics does not declare`);
      if (/\b(rate|increase)\(\s*[^)]*$/.test(rule.expr.slice(0, rule.expr.indexOf(name)))) {
        assert.equal(types.get(name), 'counter', `${rule.alert} takes rate/increase of ${name}`);
      }
      checked++;
    }
  }
  assert.ok(checked > 10, `metric references checked: ${checked}`);
  assert.match(text, /^postern_archive_lag_seconds_bucket\{le="30"\} /m, 'the lag histogram has the 30 s bucket PosternArchiveLagHigh reads');
});

test(`${MESSAGES} messages sent with swaks are archived, and the archive verifies clean`, async () => {
  await postern.diagnose('prometheus-send', async () => {
    for (let i = 0; i < MESSAGES; i++) {
      const file = join(tmp.path, `${i}.eml`);
      writeFileSync(file, `From: <sender@example.test>\r\nTo: <${RCPT}>\r\nSubject: scrape-${i}-${randomUUID()}\r\n\r\nbody ${i}\r\n`);
      assertDelivered(await swaks(['--server', `127.0.0.1:${postern.smtpPort}`, '--from', 'sender@example.test', '--to', RCPT, '--data', `@${file}`]));
    }
    const status = await postern.waitDrained();
    assert.equal(status.archive.messages, MESSAGES, `status --json: ${JSON.stringify(status)}`);
    // A finished verification keeps PosternVerifyOverdue quiet (the gauge is 0 until a run ends).
    await postern.cliOk(['verify']);
    await guarded.cliOk(['verify']);
  });
});

test('a real Prometheus started from the shipped config scrapes Postern', async () => {
  const configFile = join(tmp.path, 'prometheus.yml');
  writeFileSync(configFile, generateConfig());
  const check = await run('promtool', ['check', 'config', configFile]);
  assert.equal(check.code, 0, `generated config: ${check.stdout.toString()}${check.stderr}`);
  prom = await startPrometheus(configFile);

  await waitForValue(`up{job="${JOB}"}`, 1);
  await waitForValue(`sum(postern_messages_accepted_total{job="${JOB}"})`, MESSAGES);
  await waitForValue(`postern_archive_lag_seconds_count{job="${JOB}"}`, MESSAGES);
  await waitForValue(`postern_archive_lag_seconds_bucket{job="${JOB}",le="30"}`, MESSAGES);
  await waitForValue(`postern_intake_depth_messages{job="${JOB}"}`, 0);
  await waitForValue(`sum(postern_verify_problems{job="${JOB}"})`, 0);
  await waitForValue(`postern_verify_last_run_timestamp_seconds{job="${JOB}"} > bool 0`, 1);
});

test('with admin.metricsRequireToken the shipped credentials_file block is needed: without it or with a wrong token the scrape fails', async () => {
  await waitForValue(`up{job="${JOB}-token"}`, 1);
  await waitForValue(`up{job="${JOB}-no-token"}`, 0);
  await waitForValue(`up{job="${JOB}-wrong-token"}`, 0);
  const targets = await api<{ activeTargets: TargetInfo[] }>('/api/v1/targets');
  for (const job of [`${JOB}-no-token`, `${JOB}-wrong-token`]) {
    const t = targets.activeTargets.find((x) => x.labels.job === job);
    assert.ok(t, `target of job ${job} listed`);
    assert.equal(t.health, 'down');
    assert.match(t.lastError, /401/, `${job}: refused with 401 (${t.lastError})`);
  }
});

test('the shipped alert groups are loaded and healthy, and nothing fires for a healthy server', async () => {
  const shipped = parse(readFileSync(SHIPPED_RULES, 'utf8')) as { groups: Array<{ name: string; rules: Array<{ alert: string }> }> };
  const wantGroups = shipped.groups.map((g) => g.name).sort();
  const wantRules = shipped.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort();
  assert.ok(wantRules.length > 0, 'the rule file has alerts');

  let groups: RuleGroup[] = [];
  try {
    await waitFor('every rule evaluated with health "ok"', async () => {
      groups = (await api<{ groups: RuleGroup[] }>('/api/v1/rules')).groups;
      const rules = groups.flatMap((g) => g.rules);
      return rules.length === wantRules.length && rules.every((r) => r.health === 'ok') ? true : undefined;
    }, SCRAPE_TIMEOUT_MS, 250);
  } catch (err) {
    throw new Error(`${(err as Error).message}; rules: ${JSON.stringify(groups.map((g) => g.rules.map((r) => [r.name, r.health, r.lastError])))}`);
  }
  assert.deepEqual(groups.map((g) => g.name).sort(), wantGroups);
  assert.deepEqual(groups.flatMap((g) => g.rules.map((r) => r.name)).sort(), wantRules);
  for (const g of groups) {
    assert.equal(g.file, SHIPPED_RULES, `group ${g.name} comes from the shipped rule file`);
    for (const r of g.rules) assert.equal(r.type, 'alerting', `${r.name} is an alerting rule`);
  }

  // Alerts that went pending before the first scrape (e.g. absent(up)) clear once data arrives.
  let alerts: AlertInfo[] = [];
  try {
    await waitFor('no pending or firing alerts', async () => {
      alerts = (await api<{ alerts: AlertInfo[] }>('/api/v1/alerts')).alerts;
      return alerts.length === 0 ? true : undefined;
    }, SCRAPE_TIMEOUT_MS, 500);
  } catch (err) {
    throw new Error(`${(err as Error).message}; alerts: ${JSON.stringify(alerts)}`);
  }
  const firing = await query('ALERTS{alertstate="firing"}');
  assert.deepEqual(firing, [], 'no alert has fired');
});

test('Prometheus and both servers stop cleanly', async () => {
  await prom?.stop();
  prom = undefined;
  assert.equal(await postern.stop(), 0);
  assert.equal(await guarded.stop(), 0);
});
