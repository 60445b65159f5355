// Wiring for the relay proxy, called by core/app/serve.ts: the upstream endpoint from the config
// (host:port, TLS mode, CA), the restart rule for entries left 'held' by a crash, and starting the
// listener (or logging why it is off). Trusts the validated config; reads the CA file it names.
import { readFileSync } from 'node:fs';
import { isLoopback, parseHostPort } from '../config/host-port.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { PosternError, errorMessage } from '../errors.ts';
import type { Intake, IntakeRecord } from '../intake/intake.ts';
import { loadTls } from '../tls/dev-certificate.ts';
import { SmtpRelay, type RelayDeps } from './relay-listener.ts';
import type { RelayUpstreamConfig } from './relay-session.ts';
import { RELAY_OUTCOME_UNKNOWN } from './relay-transaction.ts';

/** The upstream endpoint, or null when `relay.upstream` is empty. */
export function relayUpstreamConfig(relay: Config['relay'], ehloName: string): RelayUpstreamConfig | null {
  if (relay.upstream === '') return null;
  const endpoint = parseHostPort(relay.upstream);
  if (!endpoint) throw new PosternError('CONFIG_INVALID', `relay.upstream "${relay.upstream}" must be "host:port"`);
  const { host, port } = endpoint;
  const mode = relay.upstreamTls === 'auto' ? (isLoopback(host) ? 'none' : 'starttls') : relay.upstreamTls;
  let ca: Buffer | undefined;
  if (relay.upstreamCa !== '') {
    try {
      ca = readFileSync(relay.upstreamCa);
    } catch (err) {
      throw new PosternError('CONFIG_INVALID', `relay.upstreamCa "${relay.upstreamCa}" cannot be read: ${errorMessage(err)}`);
    }
  }
  return {
    host, port, implicitTls: mode === 'implicit', starttls: mode === 'starttls', ehloName,
    tls: { rejectUnauthorized: relay.upstreamTlsVerify, ...(ca ? { ca } : {}), ...(relay.upstreamServername ? { servername: relay.upstreamServername } : {}) },
    connectTimeoutMs: relay.connectTimeoutSeconds * 1000,
    commandTimeoutMs: relay.commandTimeoutSeconds * 1000,
    dataTimeoutMs: relay.dataTimeoutSeconds * 1000,
  };
}

/**
 * Entries still 'held' at start were forwarded (or about to be) when Postern stopped: whether the
 * upstream accepted them is unknown. They are archived, flagged "relay-outcome-unknown", so that
 * no mail leaves unarchived; a client retry of the same message is merged by dedup. Runs whether
 * or not the relay is enabled now. Returns how many were released.
 */
export async function recoverHeldEntries(intake: Intake, existing: readonly IntakeRecord[], enqueue: (r: IntakeRecord) => void, log: Logger): Promise<number> {
  let n = 0;
  for (const record of existing) {
    if (record.state !== 'held') continue;
    const next = await intake.release(record, { flags: [RELAY_OUTCOME_UNKNOWN] });
    enqueue(next);
    n += 1;
    log.warn('Relayed message with unknown upstream outcome archived (flagged)', { intakeId: record.id, from: record.envelope.mailFrom, rcpts: record.envelope.rcptTo.length });
  }
  return n;
}

/** What starting the relay needs: the listener's dependencies, with the whole config instead of its parts. */
export type RelayStartDeps = Omit<RelayDeps, 'config' | 'upstream' | 'tls'> & { config: Config };

/** Starts the relay listener; null (with a log line) when disabled or without an upstream. */
export async function startRelay(deps: RelayStartDeps): Promise<{ relay: SmtpRelay; port: number } | null> {
  const relay = deps.config.relay;
  if (!relay.enabled) return null;
  const upstream = relayUpstreamConfig(relay, relay.hostname || deps.hostname);
  if (!upstream) {
    deps.log.info('SMTP relay proxy is off: relay.upstream (POSTERN_RELAY_UPSTREAM) is empty');
    return null;
  }
  const hostname = relay.hostname || deps.hostname;
  const tls = await loadTls(relay.tls, deps.config.dataDir, hostname, deps.log);
  const listener = new SmtpRelay({
    config: relay, upstream, hostname, tls, intake: deps.intake, archive: deps.archive, hooks: deps.hooks,
    log: deps.log, metrics: deps.metrics, enqueue: deps.enqueue,
  });
  return { relay: listener, port: await listener.listen() };
}
