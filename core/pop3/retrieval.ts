// The two ways a POP3 multi-line body crosses the proxy, for the session: a RETR body captured into
// the intake while streamed (to the client, or unseen for the DELE guard), whose final "." is sent
// only after the durable commit; and a listing (LIST/UIDL/TOP) relayed as is. When a relay stops
// early the terminating line is withheld, the client connection is closed and the reason logged
// and counted; the session learns its outcome. Upstream failures propagate as Pop3UpstreamError.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { CaptureService } from '../intake/capture.ts';
import type { IntakeMeta } from '../intake/intake.ts';
import { relayBody, RelayStopped, uncorkAll } from './relay-body.ts';
import type { RecentCaptures } from './recent-captures.ts';
import type { Upstream } from './upstream.ts';

export interface BodyContext {
  upstream: Upstream;
  client: Socket | TLSSocket;
  reply(line: string): void;
  log: Logger;
  metrics: Metrics;
  capture: CaptureService;
  limits: { idleTimeoutMs: number; maxMessageSize: number };
  recent: RecentCaptures;
}

export type StoppedOutcome = 'client_closed' | 'capture_failed' | 'upstream_error';

/** Relays and captures message `n`; null when it is durable (and, if shown, ended with "."). */
export async function relayCaptured(ctx: BodyContext, n: number, meta: IntakeMeta, shown: boolean): Promise<StoppedOutcome | null> {
  const owner = meta.assign?.user ?? `login:${meta.session.user ?? ''}`;
  try {
    const result = await relayBody({
      upstream: ctx.upstream, client: shown ? ctx.client : null, clientWriteTimeoutMs: ctx.limits.idleTimeoutMs,
      maxBytes: ctx.limits.maxMessageSize,
      capture: { service: ctx.capture, meta, alreadyCaptured: (sha256) => ctx.recent.has(owner, sha256) },
    });
    ctx.metrics.pop3Retrieved.inc();
    if (result.record && result.sha256) {
      ctx.recent.add(owner, result.sha256);
      ctx.metrics.pop3CapturedBytes.inc(result.bytes);
    }
    ctx.log.debug(result.record ? 'POP3 message captured' : 'POP3 message already captured earlier', { msgNumber: n, bytes: result.bytes, intakeId: result.record?.id, shown });
    if (shown) endWithDot(ctx);
    return null;
  } catch (err) {
    rethrowUnlessStopped(ctx, err);
    if (!shown && err.reason !== 'client') ctx.reply(`-ERR [SYS/TEMP] Message ${n} could not be archived; not deleted`);
    return stopped(ctx, err, n);
  }
}

/** Relays a LIST/UIDL/TOP body and its "."; null when complete. */
export async function relayListing(ctx: BodyContext): Promise<StoppedOutcome | null> {
  try {
    await relayBody({
      upstream: ctx.upstream, client: ctx.client, clientWriteTimeoutMs: ctx.limits.idleTimeoutMs,
      maxBytes: ctx.limits.maxMessageSize, capture: null,
    });
    endWithDot(ctx);
    return null;
  } catch (err) {
    rethrowUnlessStopped(ctx, err);
    return stopped(ctx, err, null);
  }
}

/** The terminating "." leaves together with the body's last bytes, which relayBody left corked. */
function endWithDot(ctx: BodyContext): void {
  ctx.reply('.');
  uncorkAll(ctx.client);
}

/** A relay that failed for another reason than RelayStopped: release the cork, let the session handle it. */
function rethrowUnlessStopped(ctx: BodyContext, err: unknown): asserts err is RelayStopped {
  if (err instanceof RelayStopped) return;
  uncorkAll(ctx.client);
  throw err;
}

/** Destroys a client connection after handing the kernel what is still corked (the status line, body bytes). */
export function flushAndDestroy(client: Socket | TLSSocket): void {
  uncorkAll(client);
  client.destroy();
}

function stopped(ctx: BodyContext, err: RelayStopped, n: number | null): StoppedOutcome {
  flushAndDestroy(ctx.client);
  if (err.reason === 'client') {
    ctx.log.info('POP3 client went away during a response; capture discarded, nothing deleted upstream', { msgNumber: n });
    return 'client_closed';
  }
  if (n === null) {
    ctx.metrics.pop3UpstreamErrors.inc({ kind: 'too-large' });
    ctx.log.warn('Upstream POP3 reply larger than pop3.maxMessageSize; cut off and connection closed', { limit: ctx.limits.maxMessageSize });
    return 'upstream_error';
  }
  ctx.metrics.pop3CaptureFailures.inc();
  if (err.reason === 'too-large') {
    ctx.log.warn('POP3 response larger than pop3.maxMessageSize; not archived, response cut off and connection closed', { msgNumber: n, limit: ctx.limits.maxMessageSize });
  } else {
    ctx.log.error('POP3 capture failed; response cut off before its end and connection closed', { msgNumber: n, err: err.message });
  }
  return 'capture_failed';
}
