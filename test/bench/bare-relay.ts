// The cheapest possible proxy in Postern's runtime, for the proxy benchmarks' ceiling line: a Node
// process that pipes every accepted connection to the upstream, byte for byte, parsing nothing,
// capturing nothing. Whatever ratio it reaches against the direct path is the most any proxy process
// on this machine can reach (it adds two socket hops and a process to schedule, as Postern does).
//   node --import tsx test/bench/bare-relay.ts <listen-port> <upstream-host:port>
// startBareRelay() spawns it and resolves once it listens.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

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
