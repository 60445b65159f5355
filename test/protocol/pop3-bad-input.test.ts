// Bad input for the POP3 proxy, each with a bounded outcome, a log line and a check that nothing
// was archived or deleted that should not be: client garbage, pipelined garbage, overlong and
// never-finished lines, data injected after STLS, a client vanishing mid-RETR; an upstream that is
// down, stalls, refuses, sends malformed or endless replies or cuts a message off; a capture that
// fails (size limit, intake unavailable), where the client never gets the final ".".
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../core/config/schema.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { freePort } from '../interop/harness.ts';
import { FakeUpstream, Pop3TestClient, type Misbehaviour } from './pop3-helpers.ts';

const PASSWORD = 'pw-Bad-Input-991';
const SMALL = Buffer.from('From: carol@else.org\r\nTo: alice@example.com\r\nSubject: small\r\n\r\nsmall body\r\n');
const big = (mb: number): Buffer => Buffer.concat([
  Buffer.from('From: carol@else.org\r\nTo: alice@example.com\r\nSubject: big\r\n\r\n'),
  Buffer.from(`${'x'.repeat(998)}\r\n`.repeat(mb * 1024)),
]);

interface Rig {
  upstream: FakeUpstream;
  srv: TestServer;
  port: number;
  stop(): Promise<void>;
}

async function rig(misbehave: Misbehaviour[], configure: (c: Config) => void = () => undefined, messages: Buffer[] = [SMALL]): Promise<Rig> {
  const upstream = new FakeUpstream({ user: 'alice', password: PASSWORD, messages, misbehave });
  await upstream.start();
  const srv = await startTestServer((c) => {
    c.pop3.upstream = `127.0.0.1:${upstream.port}`;
    c.pop3.port = 0;
    c.pop3.tlsPort = 0;
    c.users = [{ name: 'alice', addresses: [], domains: [], pop3Users: ['alice'], groups: [] }];
    configure(c);
  });
  return {
    upstream, srv, port: srv.running.pop3Port ?? 0,
    async stop() {
      await srv.stop();
      await upstream.stop();
    },
  };
}

async function login(port: number): Promise<Pop3TestClient> {
  const c = await Pop3TestClient.open(port);
  assert.match(await c.line(), /^\+OK/);
  assert.match(await c.cmd('USER alice'), /^\+OK/);
  assert.match(await c.cmd(`PASS ${PASSWORD}`), /^\+OK/);
  return c;
}

function logged(srv: TestServer, msg: RegExp): boolean {
  return srv.logs.some((l) => msg.test(l.msg));
}

async function nothingCaptured(srv: TestServer): Promise<void> {
  await srv.settle();
  assert.equal((await srv.running.intake.list(10)).length, 0, 'intake is empty');
  assert.equal((await srv.archive.listEntries('alice', 'Inbox')).length, 0, 'nothing archived');
}

describe('POP3 proxy: bad client input', () => {
  let r: Rig;
  before(async () => {
    r = await rig([], (c) => {
      c.pop3.maxLineLength = 256;
      c.pop3.idleTimeoutSeconds = 1;
    }, [SMALL, big(24)]);
  });
  after(() => r.stop());

  test('garbage, unknown commands, bad arguments and wrong-state commands get -ERR and are not relayed', async () => {
    const mark = r.upstream.commands.length;
    const c = await Pop3TestClient.open(r.port);
    await c.line();
    c.socket.write(Buffer.from([0xff, 0xfe, 0x00, 0x0d, 0x0a]));
    assert.equal(await c.line(), '-ERR Invalid characters in command');
    assert.equal(await c.cmd('FROB 1'), '-ERR Unknown command');
    assert.equal(await c.cmd('RETR 1'), '-ERR Not logged in');
    assert.equal(await c.cmd('USER'), '-ERR Syntax: USER name');
    assert.equal(await c.cmd('RETR  1'), '-ERR Syntax: RETR message-number');
    assert.equal(await c.cmd('1RETR'), '-ERR Invalid command syntax');
    assert.match(await c.cmd('USER alice'), /^\+OK/);
    assert.match(await c.cmd(`PASS ${PASSWORD}`), /^\+OK/);
    assert.equal(await c.cmd('RETR one'), '-ERR Syntax: RETR message-number');
    assert.equal(await c.cmd('DELE 0'), '-ERR Syntax: DELE message-number');
    assert.equal(await c.cmd('TOP 1'), '-ERR Syntax: TOP message-number lines');
    assert.equal(await c.cmd('STAT now'), '-ERR Syntax: STAT takes no argument');
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    c.close();
    const c2 = await login(r.port);
    assert.equal(await c2.cmd('USER bob'), '-ERR Already logged in');
    assert.equal(await c2.cmd('STLS'), '-ERR STLS is only allowed before login');
    assert.match(await c2.cmd('QUIT'), /^\+OK/);
    c2.close();
    const pass = `PASS ${PASSWORD}`;
    assert.deepEqual(r.upstream.commands.slice(mark), ['USER alice', pass, 'QUIT', 'USER alice', pass, 'QUIT']);
  });

  test('pipelined garbage: each line is refused in order, then the connection is closed after 10', async () => {
    const c = await Pop3TestClient.open(r.port);
    await c.line();
    c.socket.write('garbage\r\n'.repeat(50));
    for (let i = 0; i < 10; i++) assert.equal(await c.line(), '-ERR Unknown command');
    assert.equal(await c.line(), '-ERR Too many bad commands; closing the connection');
    await c.closedBy();
    assert.ok(logged(r.srv, /too many bad commands/));
  });

  test('a line over pop3.maxLineLength ends the session', async () => {
    const c = await Pop3TestClient.open(r.port);
    await c.line();
    c.socket.write(`USER ${'a'.repeat(5000)}\r\n`);
    assert.equal(await c.line(), '-ERR Command line too long; closing the connection');
    await c.closedBy();
    assert.ok(logged(r.srv, /overlong line/));
  });

  test('a command that is never finished ends in the idle timeout', async () => {
    const c = await Pop3TestClient.open(r.port);
    await c.line();
    c.socket.write('USER ali');
    assert.equal(await c.line(5000), '-ERR Idle timeout; closing the connection');
    await c.closedBy();
    assert.ok(logged(r.srv, /idle timeout/));
  });

  test('data sent after STLS before the handshake is refused (no plaintext injection)', async () => {
    const c = await Pop3TestClient.open(r.port);
    await c.line();
    c.socket.write('STLS\r\nUSER alice\r\n');
    assert.equal(await c.line(), '+OK Begin TLS negotiation');
    assert.equal(await c.line(), '-ERR Data after STLS; closing the connection');
    await c.closedBy();
    assert.ok(logged(r.srv, /data after STLS/));
  });

  test('a client that disconnects mid-RETR: capture discarded, nothing deleted upstream', async () => {
    const quits = r.upstream.quits;
    const c = await login(r.port);
    assert.match(await c.cmd('DELE 1'), /^\+OK/);
    c.socket.write('RETR 2\r\n');
    assert.match(await c.line(), /^\+OK/);
    c.socket.pause();
    await new Promise((res) => setTimeout(res, 300));
    c.close();
    const deadline = Date.now() + 10000;
    while (!logged(r.srv, /went away during a response/) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    assert.ok(logged(r.srv, /went away during a response/));
    await r.srv.settle();
    assert.equal((await r.srv.running.intake.list(10)).length, 0);
    const subjects = (await r.srv.archive.listEntries('alice', 'Inbox')).map((e) => e.subject);
    assert.deepEqual(subjects, ['small'], 'only the DELE-guarded message is archived');
    assert.equal(r.upstream.quits, quits, 'no QUIT reached the upstream');
    assert.deepEqual(r.upstream.deleted, []);
  });
});

describe('POP3 proxy: capture failures withhold the final "." and close', () => {
  test('a message over pop3.maxMessageSize is cut off and not archived', async () => {
    const r = await rig([], (c) => { c.pop3.maxMessageSize = 1024; }, [big(1)]);
    try {
      const c = await login(r.port);
      assert.match(await c.cmd('RETR 1'), /^\+OK/);
      const rest = await c.closedBy();
      assert.ok(!rest.endsWith('\r\n.\r\n'), 'no terminating line');
      assert.ok(logged(r.srv, /larger than pop3\.maxMessageSize/));
      await nothingCaptured(r.srv);
      assert.equal(r.upstream.quits, 0);
      const metrics = await r.srv.running.app.service('metrics').registry.metrics();
      assert.match(metrics, /postern_pop3_capture_failures_total 1/);
    } finally {
      await r.stop();
    }
  });

  test('an intake that cannot commit: the client gets the bytes but never the end, and nothing is deleted', async () => {
    const r = await rig([]);
    try {
      const c = await login(r.port);
      await r.srv.running.intake.close();
      c.socket.write('RETR 1\r\nDELE 1\r\nQUIT\r\n');
      assert.match(await c.line(), /^\+OK/);
      const rest = await c.closedBy();
      assert.ok(!/\r\n\.\r\n/.test(rest), `no terminating line in ${JSON.stringify(rest)}`);
      assert.ok(logged(r.srv, /capture failed/));
      assert.ok(!r.upstream.commands.includes('DELE 1'));
      assert.equal(r.upstream.quits, 0);
      assert.deepEqual(r.upstream.deleted, []);
    } finally {
      await r.stop();
    }
  });
});

describe('POP3 proxy: upstream failures', () => {
  test('upstream down: -ERR with a clear text, counted', async () => {
    const closedPort = await freePort();
    const srv = await startTestServer((c) => {
      c.pop3.upstream = `127.0.0.1:${closedPort}`;
      c.pop3.port = 0;
      c.pop3.tlsPort = 0;
    });
    try {
      const c = await Pop3TestClient.open(srv.running.pop3Port ?? 0);
      assert.equal(await c.line(), '-ERR [SYS/TEMP] Upstream POP3 server unavailable; try again later');
      await c.closedBy();
      assert.ok(logged(srv, /Upstream POP3 server unavailable/));
      const metrics = await srv.running.app.service('metrics').registry.metrics();
      assert.match(metrics, /postern_pop3_upstream_errors_total\{kind="connect"\} 1/);
      assert.match(metrics, /postern_pop3_sessions_total\{outcome="upstream_unavailable"\} 1/);
    } finally {
      await srv.stop();
    }
  });

  for (const [mis, kind] of [['greeting-stall', 'timeout'], ['greeting-err', 'refused'], ['greeting-malformed', 'malformed']] as const) {
    test(`upstream greeting ${mis.slice(9)}: -ERR, bounded by the upstream timeout`, async () => {
      const r = await rig([mis], (c) => { c.pop3.upstreamTimeoutSeconds = 1; });
      try {
        const c = await Pop3TestClient.open(r.port);
        assert.equal(await c.line(5000), '-ERR [SYS/TEMP] Upstream POP3 server unavailable; try again later');
        await c.closedBy();
        const metrics = await r.srv.running.app.service('metrics').registry.metrics();
        assert.match(metrics, new RegExp(`postern_pop3_upstream_errors_total\\{kind="${kind}"\\} 1`));
      } finally {
        await r.stop();
      }
    });
  }

  test('a malformed RETR status line: -ERR and the connection closes', async () => {
    const r = await rig(['retr-status-malformed']);
    try {
      const c = await login(r.port);
      assert.match(await c.cmd('RETR 1'), /^-ERR \[SYS\/TEMP\] Upstream POP3 server failed: Upstream sent a malformed status line/);
      await c.closedBy();
      assert.ok(logged(r.srv, /Upstream POP3 server failed/));
      await nothingCaptured(r.srv);
    } finally {
      await r.stop();
    }
  });

  for (const mis of ['retr-stall-mid', 'retr-close-mid'] as const) {
    test(`upstream ${mis === 'retr-stall-mid' ? 'stalls' : 'closes'} in the middle of a message: cut off, nothing archived`, async () => {
      const r = await rig([mis], (c) => { c.pop3.upstreamTimeoutSeconds = 1; }, [big(1)]);
      try {
        const c = await login(r.port);
        assert.match(await c.cmd('RETR 1'), /^\+OK/);
        const rest = await c.closedBy(5000);
        assert.ok(!rest.endsWith('\r\n.\r\n'));
        assert.ok(!rest.includes('-ERR'), 'no status line inside a message body');
        assert.ok(logged(r.srv, /Upstream POP3 server failed/));
        await nothingCaptured(r.srv);
      } finally {
        await r.stop();
      }
    });
  }

  test('an endless multi-line reply is cut at pop3.maxMessageSize', async () => {
    const r = await rig(['list-endless'], (c) => { c.pop3.maxMessageSize = 64 * 1024; });
    try {
      const c = await login(r.port);
      assert.match(await c.cmd('LIST'), /^\+OK/);
      await c.closedBy();
      assert.ok(logged(r.srv, /Upstream POP3 reply larger than pop3\.maxMessageSize/));
    } finally {
      await r.stop();
    }
  });
});

describe('POP3 proxy: limits and shutdown', () => {
  test('connections over pop3.maxConnections are refused with -ERR', async () => {
    const r = await rig([], (c) => { c.pop3.maxConnections = 1; });
    try {
      const first = await login(r.port);
      const second = await Pop3TestClient.open(r.port);
      assert.equal(await second.line(), '-ERR [SYS/TEMP] Too many connections; try again later');
      await second.closedBy();
      assert.ok(logged(r.srv, /maxConnections reached/));
      assert.match(await first.cmd('STAT'), /^\+OK 1 /);
      first.close();
    } finally {
      await r.stop();
    }
  });

  test('shutdown tells an idle session and closes it without QUIT upstream (nothing deleted)', async () => {
    const r = await rig([]);
    let stopped = false;
    try {
      const c = await login(r.port);
      assert.match(await c.cmd('DELE 1'), /^\+OK/);
      const stopping = r.srv.stop();
      assert.equal(await c.line(), '-ERR [SYS/TEMP] Postern is shutting down; try again later');
      await c.closedBy();
      await stopping;
      stopped = true;
      assert.equal(r.upstream.quits, 0);
      assert.deepEqual(r.upstream.deleted, []);
    } finally {
      if (!stopped) await r.srv.stop();
      await r.upstream.stop();
    }
  });
});
