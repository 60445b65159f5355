// smtp-server waits a fixed 100 ms before every greeting to catch clients that talk before they are
// greeted. That protects a public listener but caps a trusted MTA's throughput at sessions ÷ 0.1 s.
// This makes the wait a per-server option, `earlyTalkerDelayMs` (0 = greet at once), by replacing
// SMTPConnection#init with the same steps: connection limit check, then the (configurable) wait.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

interface ConnectionInternals {
  _server: { options: { maxClients?: number; earlyTalkerDelayMs?: number }; connections: Set<unknown> };
  name: string;
  _setListeners(cb: () => void): void;
  send(code: number, text: string, final?: boolean): void;
  connectionReady(): void;
}

let installed = false;

export function installEarlyTalkerOption(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as ConnectionInternals & { init(): void };
  proto.init = function init(this: ConnectionInternals): void {
    this._setListeners(() => {
      const { maxClients, earlyTalkerDelayMs } = this._server.options;
      if (maxClients && this._server.connections.size > maxClients) {
        this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
        return;
      }
      const delay = earlyTalkerDelayMs ?? 100;
      if (delay <= 0) {
        this.connectionReady();
        return;
      }
      setTimeout(() => this.connectionReady(), delay).unref();
    });
  };
}
