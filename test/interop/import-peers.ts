// Peers for the import interop tests: a TCP proxy in front of Dovecot that can be stopped (every
// connection cut, the port closed) and started again on the same port — from Postern's side the
// mail server went down mid-import and came back — and Postfix's smtp-sink dumping each received
// mail into a directory (the results reports).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { freePort, makeTempDir, sleep, waitFor } from './harness.ts';

export interface Proxy {
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  const port = await freePort();
  let server: Server | null = null;
  const sockets = new Set<Socket>();
  const start = async (): Promise<void> => {
    const s = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: targetPort });
      sockets.add(client);
      sockets.add(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      const end = (): void => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', end);
      upstream.on('error', end);
      client.on('close', end);
      upstream.on('close', end);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    server = s;
  };
  const stop = async (): Promise<void> => {
    const s = server;
    server = null;
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await start();
  return { port, start, stop, close: stop };
}

export interface SmtpSink {
  port: number;
  /** Every dumped mail transaction so far (smtp-sink's dump format: attributes, then the message). */
  mails(): string[];
  waitForMail(match: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const tmp = makeTempDir('smtp-sink-');
  const dumpDir = join(tmp.path, 'dump');
  mkdirSync(dumpDir);
  chmodSync(tmp.path, 0o755);
  chmodSync(dumpDir, 0o777);
  const port = await freePort();
  const args = ['-d', `${dumpDir}/mail.`, ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), `127.0.0.1:${port}`, '10'];
  const child: ChildProcess = spawn('/usr/sbin/smtp-sink', args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor('smtp-sink listening', async () => new Promise<boolean | undefined>((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(undefined));
  }), 10_000, 100);
  const mails = (): string[] => readdirSync(dumpDir)
    .map((f) => join(dumpDir, f))
    .filter((p) => statSync(p).isFile())
    .map((p) => readFileSync(p, 'latin1'));
  return {
    port,
    mails,
    async waitForMail(match, timeoutMs = 15_000) {
      return waitFor(`a mail matching ${match} at smtp-sink`, async () => mails().find((m) => match.test(m)), timeoutMs, 200);
    },
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      tmp.cleanup();
    },
  };
}
