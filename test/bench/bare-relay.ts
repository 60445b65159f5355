// The cheapest possible proxy in Postern's runtime, for the proxy benchmarks' ceiling line: a Node
// process that pipes every accepted connection to the upstream, byte for byte, parsing nothing,
// capturing nothing. Whatever ratio it reaches against the direct path is the most any proxy process
// on this machine can reach (it adds two socket hops and a process to schedule, as Postern does).
//   node --import tsx test/bench/bare-relay.ts <listen-port> <upstream-host:port>
// startBareRelay() spawns it and resolves once it listens. startHaproxy() runs HAProxy (C, event
// loop, TCP mode, from Debian's haproxy package) the same way: a production-grade byte pipe, the
// ceiling for a proxy written in C.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForPort } from '../interop/harness.ts';

const SELF = fileURLToPath(import.meta.url);

export interface BareRelay {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startBareRelay(port: number, upstream: string): Promise<BareRelay> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, String(port), upstream], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout as NonNullable<typeof child.stdout>, 'data')) as [Buffer];
  if (!line.toString().startsWith('listening')) throw new Error(`bare relay: ${line.toString()}`);
  return {
    port, child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** The byte pipes a bench measures as ceilings: name for the output, and how to start one. */
export const CEILINGS: ReadonlyArray<{ name: string; start(port: number, upstream: string): Promise<BareRelay | null> }> = [
  { name: 'bare Node byte pipe', start: startBareRelay },
  { name: 'HAProxy (TCP mode)', start: startHaproxy },
];

/** HAProxy in TCP mode from `port` to `upstream` (host:port), in the foreground; null when not installed. */
export async function startHaproxy(port: number, upstream: string): Promise<BareRelay | null> {
  const bin = '/usr/sbin/haproxy';
  try {
    await new Promise<void>((resolve, reject) => spawn(bin, ['-v'], { stdio: 'ignore' }).once('error', reject).once('exit', () => resolve()));
  } catch {
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-haproxy-'));
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, [
    'global', '  maxconn 4000',
    'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 120s', '  timeout server 120s',
    'frontend bench', `  bind 127.0.0.1:${port}`, '  default_backend upstream',
    'backend upstream', `  server up ${upstream}`, '',
  ].join('\n'));
  const child = spawn(bin, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, { child });
  return {
    port, child,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] === SELF) {
  const port = Number(process.argv[2]);
  const [host = '127.0.0.1', upstreamPort = ''] = (process.argv[3] ?? '').split(':');
  const server = createServer({ noDelay: true }, (client) => {
    const up = connect({ host, port: Number(upstreamPort), noDelay: true });
    const close = (): void => {
      client.destroy();
      up.destroy();
    };
    client.on('error', close).on('close', close);
    up.on('error', close).on('close', close);
    client.pipe(up);
    up.pipe(client);
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
  process.on('SIGTERM', () => process.exit(0));
}
