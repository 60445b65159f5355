// A client that pipelines (RFC 2920: MAIL, RCPT…, DATA in one write, as Postfix, Exim and Exchange
// do) gets the replies to those commands in one write too, as Postfix's smtpd sends them. smtp-server
// writes each reply at once: a system call, and a wake-up of the client, per reply. When a chunk read
// in command mode holds more than one command line, the socket is corked until the end of this
// event-loop turn, so the replies its commands produce in that turn leave together. A reply that
// waits for I/O (the 250 after the intake's fsync) is written after the cork is gone, at once as
// before; a client that sends one command at a time sees no change. end() flushes a corked socket
// (the 221 to QUIT), so nothing is held back from a closing session, and a TLS upgrade flushes it
// first (the 220 to a STARTTLS that ended a pipelined group goes out in plaintext, before the handshake).
import type { Socket } from 'node:net';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

interface ConnectionInternals {
  _socket: Socket;
  /** smtp-server's line parser; false once the connection is closing. */
  _parser: { _dataMode?: boolean } | false;
  _setListeners(callback: () => void): void;
  upgrade(...args: unknown[]): void;
}

const LF = 0x0a;

/** True when the chunk ends more than one line (more than one command was pipelined). */
function holdsTwoLines(chunk: Buffer): boolean {
  const first = chunk.indexOf(LF);
  return first !== -1 && chunk.indexOf(LF, first + 1) !== -1;
}

let installed = false;

export function installPipelinedReplies(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as ConnectionInternals;
  const setListeners = proto._setListeners;
  proto._setListeners = function withPipelinedReplies(this: ConnectionInternals, callback: () => void): void {
    const socket = this._socket;
    // Before smtp-server's own reader (pipe), so the cork is in place when its commands run.
    socket.prependListener('data', (chunk: Buffer | string) => {
      const parser = this._parser;
      if (!parser || parser._dataMode || socket !== this._socket || socket.writableCorked > 0) return;
      if (typeof chunk === 'string' || !holdsTwoLines(chunk)) return;
      socket.cork();
      setImmediate(() => socket.uncork());
    });
    setListeners.call(this, callback);
  };
  const upgrade = proto.upgrade;
  proto.upgrade = function flushedUpgrade(this: ConnectionInternals, ...args: unknown[]): void {
    while (this._socket.writableCorked > 0) this._socket.uncork();
    upgrade.apply(this, args);
  };
}
