// Scripted POP3 servers for the importer's client tests: a greeting, then each command line handed
// to a script that writes the reply; STLS upgrades the connection in place and implicit TLS listens
// with a certificate. Records every command line received (over any connection) in order.
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, createServer as createTlsServer } from 'node:tls';
import type { Duplex } from 'node:stream';
import { Pop3Client } from '../../../core/import/pop3-client.ts';

export interface ScriptContext {
  /** Replies "+OK" (plus `after`, to test injection) and switches this connection to TLS. */
  startTls(after?: string): void;
}
export type Script = (line: string, sock: Duplex, ctx: ScriptContext) => void;
export interface TlsPair { key: string; cert: string }
export interface ScriptedServer { port: number; lines: string[]; close(): Promise<void> }

export async function server(script: Script, opts: { greeting?: string; tls?: TlsPair; implicit?: boolean } = {}): Promise<ScriptedServer> {
  const lines: string[] = [];
  const socks = new Set<Duplex>();
  const serve = (sock: Duplex): void => {
    socks.add(sock);
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        lines.push(line);
        script(line, sock, {
          startTls(after = '') {
            if (!opts.tls) throw new Error('This scripted server has no certificate');
            sock.off('data', onData);
            sock.write('+OK begin TLS\r\n' + after);
            serve(new TLSSocket(sock as Socket, { isServer: true, ...opts.tls }));
          },
        });
      }
    };
    sock.on('data', onData);
    sock.on('error', () => undefined);
  };
  const greet = (sock: Duplex): void => {
    sock.write(opts.greeting ?? '+OK ready\r\n');
    serve(sock);
  };
  const srv: Server = opts.implicit && opts.tls ? createTlsServer(opts.tls, greet) : createServer(greet);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  return {
    port, lines,
    close: () => new Promise<void>((r) => {
      for (const s of socks) s.destroy();
      srv.close(() => r());
    }),
  };
}

/** USER/PASS ("good" is the password), QUIT, and "-ERR" for anything the extras do not handle. */
export const standard = (extra: Record<string, (sock: Duplex, ctx: ScriptContext) => void> = {}): Script => (line, sock, ctx) => {
  const cmd = line.split(' ')[0] ?? '';
  const handler = extra[line] ?? extra[cmd];
  if (handler) return handler(sock, ctx);
  if (cmd === 'USER') sock.write('+OK\r\n');
  else if (cmd === 'PASS') sock.write(line === 'PASS good' ? '+OK logged in\r\n' : '-ERR [AUTH] bad\r\n');
  else if (cmd === 'QUIT') sock.end('+OK bye\r\n');
  else sock.write('-ERR unknown\r\n');
};

export const client = (port: number, maxBytes = 1024 * 1024, timeoutMs = 5000): Pop3Client =>
  new Pop3Client({ host: '127.0.0.1', port, tls: 'none', tlsOptions: {}, timeoutMs, maxBytes });
