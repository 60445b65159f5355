// Interop with Prometheus tooling: /metrics after real traffic must pass `promtool check metrics`
// and count exactly the messages and bytes accepted.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeTempDir, run, startPostern, type PosternServer } from './harness.ts';
import { assertDelivered, sentContent, swaks } from './swaks.ts';

const RCPT = 'metrics@example.test';
const MESSAGES = 3;

let server: PosternServer;
const tmp = makeTempDir('postern-promtool-');
let bytesSent = 0;

before(async () => {
  server = await startPostern({ name: 'promtool' });
  await server.addUser('metrics', [RCPT]);
});

after(async () => {
  await server?.stop().catch(() => undefined);
  tmp.cleanup();
});

/** The value of one sample line `name{labels} value` (exact label set), or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1).split(' ')[0]);
  }
  return undefined;
}

test(`${MESSAGES} messages sent with swaks are accepted and archived`, async () => {
  await server.diagnose('promtool-send', async () => {
    for (let i = 0; i < MESSAGES; i++) {
      const marker = `metrics-${i}-${randomUUID()}`;
      const file = join(tmp.path, `${i}.eml`);
      writeFileSync(file, `From: <sender@example.test>\r\nTo: <${RCPT}>\r\nSubject: ${marker}\r\n\r\nbody ${i}\r\n${'x'.repeat(100 * i)}`);
      const res = await swaks(['--server', `127.0.0.1:${server.smtpPort}`, '--from', 'sender@example.test', '--to', RCPT, '--data', `@${file}`]);
      assertDelivered(res);
      bytesSent += sentContent(res.transcript).length;
    }
    const status = await server.waitDrained();
    assert.equal(status.archive.messages, MESSAGES, `status --json: ${JSON.stringify(status)}`);
  });
});

test('/metrics passes `promtool check metrics` and counts the accepted messages exactly', async () => {
  await server.diagnose('promtool-check', async () => {
    // Scrape with a real HTTP client, as Prometheus would (no token: metricsRequireToken is off by default).
    const scrape = await run('curl', ['-sS', '--fail', '-H', 'Accept: text/plain', `http://127.0.0.1:${server.adminPort}/metrics`]);
    assert.equal(scrape.code, 0, `curl /metrics failed: ${scrape.stderr}`);
    const text = scrape.stdout.toString('utf8');

    const check = await run('promtool', ['check', 'metrics'], { input: text });
    assert.equal(check.code, 0, `promtool check metrics exited ${check.code}:\n${check.stdout.toString()}${check.stderr}`);

    const names = new Set(text.split('\n').filter((l) => /^postern_/.test(l)).map((l) => /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(l)![1]));
    assert.ok(names.size > 0, 'some postern_* series are exposed');
    assert.match(text, /^# TYPE postern_messages_accepted_total counter$/m, 'postern_messages_accepted_total is a counter');
    assert.match(text, /^# HELP postern_messages_accepted_total \S/m, 'postern_messages_accepted_total has HELP text');
    assert.equal(sample(text, 'postern_messages_accepted_total{listener="smtp"}'), MESSAGES, 'accepted messages counted exactly');
    assert.equal(sample(text, 'postern_received_bytes_total{listener="smtp"}'), bytesSent, 'received bytes equal the bytes swaks sent');
    assert.equal(sample(text, 'postern_intake_depth_messages'), 0, 'intake is empty after draining');
    // PosternUnroutedMail takes increase() of it, which needs the series from the start.
    assert.match(text, /^# TYPE postern_unrouted_messages_total counter$/m, 'postern_unrouted_messages_total is a counter');
    assert.equal(sample(text, 'postern_unrouted_messages_total'), 0, 'unrouted counter exposed at 0: every message had a known recipient');
  });
});

test('SIGTERM: exit 0', async () => {
  assert.equal(await server.stop(), 0);
});
