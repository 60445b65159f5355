// The systemd notification protocol against a real unix datagram receiver (python3 binds the socket
// systemd would, path or abstract name, and prints each datagram): `postern serve` with NOTIFY_SOCKET
// and WATCHDOG_USEC sends READY=1 only when its listeners accept connections, WATCHDOG=1 at half the
// watchdog interval, STATUS= lines, STOPPING=1 on SIGTERM and exits 0; a WATCHDOG_PID naming another
// process means no pings; without NOTIFY_SOCKET nothing is sent and no helper runs.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.ts';
import { makeTempDir, sleep, waitFor } from './harness.ts';

const RECEIVER = `
import socket, sys, time
addr = sys.argv[1]
bind = "\\0" + addr[1:] if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(bind)
print("bound", flush=True)
while True:
    data = s.recv(65536)
    print("%.3f %s" % (time.time(), data.decode("utf-8", "replace").replace("\\n", "\\\\n")), flush=True)
`;

interface Datagram { at: number; text: string }

class Receiver {
  readonly got: Datagram[] = [];
  private constructor(private readonly child: ChildProcess) {}

  static async start(address: string): Promise<Receiver> {
    const child = spawn('/usr/bin/python3', ['-c', RECEIVER, address], { stdio: ['ignore', 'pipe', 'inherit'] });
    const r = new Receiver(child);
    let partial = '';
    let bound = false;
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'bound') bound = true;
        const m = /^(\d+\.\d+) (.*)$/.exec(line);
        if (m) r.got.push({ at: Number(m[1]) * 1000, text: m[2] ?? '' });
      }
    });
    await waitFor('the receiver socket is bound', async () => (bound ? true : undefined), 10_000, 20);
    return r;
  }

  texts(): string[] {
    return this.got.map((d) => d.text);
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

const tmp = makeTempDir('postern-sdnotify-');
const cleanup: Array<() => void> = [];
after(() => {
  for (const f of cleanup) f();
  tmp.cleanup();
});

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('READY=1 after the listeners are open, watchdog pings at half WATCHDOG_USEC, STOPPING=1 on SIGTERM', async () => {
  const socketPath = join(tmp.path, 'notify.sock');
  const receiver = await Receiver.start(socketPath);
  cleanup.push(() => receiver.stop());
  // The server's ports are chosen by the OS; READY=1 must not come before they accept. The test
  // probes them the moment READY=1 arrives.
  let probed: Promise<boolean[]> | null = null;
  let server: SpawnedServer | null = null;
  const ready = waitFor('READY=1', async () => {
    if (!receiver.texts().includes('READY=1')) return undefined;
    return true;
  }, 40_000, 10).then(() => {
    const s = server;
    probed = s ? Promise.all([accepts(s.smtpPort), accepts(s.adminPort)]) : null;
  });
  server = await spawnServer(join(tmp.path, 'data'), { NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '600000' });
  const spawned = server;
  cleanup.push(() => spawned.child.kill('SIGKILL'));
  await ready;
  // READY=1 can arrive before spawnServer has read the ports from the ready line; probe then.
  const results = await (probed ?? Promise.all([accepts(server.smtpPort), accepts(server.adminPort)]));
  assert.deepEqual(results, [true, true], 'SMTP and admin accept connections when READY=1 arrives');
  const readyAt = receiver.got.find((d) => d.text === 'READY=1')?.at ?? 0;
  // STATUS= is the next datagram after READY=1; on a busy machine it can be read a moment later.
  const status = await waitFor('STATUS=Ready', async () => receiver.got.find((d) => d.text.startsWith('STATUS=Ready')), 5000, 20)
    .catch(() => undefined);
  assert.ok(status, `a STATUS line follows: ${receiver.texts().join(' | ')}`);
  assert.match(status.text, new RegExp(`smtp ${server.smtpPort}.*admin ${server.adminPort}`));

  await sleep(1600);
  const pings = receiver.got.filter((d) => d.text === 'WATCHDOG=1' && d.at >= readyAt);
  // Every 300 ms for 1.6 s: about 5; at least 3 even on a loaded machine, and none before READY=1.
  assert.ok(pings.length >= 3, `watchdog pings: ${pings.length}`);
  assert.ok(receiver.got.filter((d) => d.text === 'WATCHDOG=1').every((d) => d.at >= readyAt), 'no ping before READY=1');

  server.child.kill('SIGTERM');
  const exit = await server.exited;
  assert.equal(exit.code, 0);
  await waitFor('STOPPING=1', async () => (receiver.texts().includes('STOPPING=1') ? true : undefined), 5000, 20);
  assert.ok(receiver.texts().some((t) => t === 'STATUS=Stopping (SIGTERM)'));
  // Once the process is gone nothing more arrives (the helper exits with it).
  await sleep(1000);
  const settled = receiver.got.length;
  await sleep(1000);
  assert.equal(receiver.got.length, settled, `nothing after exit: ${receiver.texts().slice(settled).join(' | ')}`);
});

test('an abstract NOTIFY_SOCKET name works; a WATCHDOG_PID of another process means no pings', async () => {
  const name = `@postern-test-${randomUUID()}`;
  const receiver = await Receiver.start(name);
  cleanup.push(() => receiver.stop());
  const server = await spawnServer(join(tmp.path, 'data2'), { NOTIFY_SOCKET: name, WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' });
  cleanup.push(() => server.child.kill('SIGKILL'));
  await waitFor('READY=1', async () => (receiver.texts().includes('READY=1') ? true : undefined), 10_000, 20);
  await sleep(800);
  assert.ok(!receiver.texts().includes('WATCHDOG=1'), `no pings for another PID: ${receiver.texts().join(' | ')}`);
  server.child.kill('SIGTERM');
  assert.equal((await server.exited).code, 0);
});
