// STLS on the client leg: wraps the accepted plain socket in a server-side TLS socket with Postern's
// certificate and waits (bounded) for the handshake. Trusts nothing from the client; a failed, closed
// or timed-out handshake is reported as not ok and the caller ends the session.
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';

export async function upgradeClient(plain: Socket, secureContext: SecureContext, timeoutMs: number): Promise<{ secure: TLSSocket; ok: boolean }> {
  const secure = new TLSSocket(plain, { isServer: true, secureContext });
  secure.on('error', () => undefined);
  const ok = await new Promise<boolean>((resolve) => {
    const done = (result: boolean): void => {
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    secure.once('secure', () => done(true));
    secure.once('error', () => done(false));
    secure.once('close', () => done(false));
  });
  return { secure, ok };
}
