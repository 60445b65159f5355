// The DATA phase of the relay proxy: archive if and only if delivered.
//
// 1. The client's message is read whole into the intake (dot-unstuffed by smtp-server), checked
//    (size, smuggling-shaped dot lines, bare CR/LF — the relay never forwards either kind) and
//    committed durably (fsync'd) in the 'held' state, which the queue manager ignores.
// 2. Only then is it forwarded (re-stuffed) to the upstream. (The DATA command itself goes out while
//    the commit is in progress; no message byte does, and a failed commit drops the connection.)
// 3. Upstream 2xx → the entry is released (state active, envelope = the recipients the upstream
//    accepted, assigned as sent mail of the authenticated user) and queued for archiving; the client
//    gets the upstream's reply. Upstream 4xx/5xx → the client gets that reply; the entry is removed.
//    Upstream unreachable or failing before the end marker was sent → 451; the entry is removed.
//    Failing after the end marker was sent (no reply, timeout) → 451, but the upstream may have
//    delivered: the entry is released flagged "relay-outcome-unknown", so nothing can leave
//    unarchived; the client's retry is a duplicate the dedup plugin merges.
// 4. The intake cannot commit → 451 and nothing is forwarded (requireArchive, the default); with
//    requireArchive off the message is forwarded from what was read and is not archived.
// A crash between the upstream's 250 and the release leaves a held entry: at the next start
// recoverHeldEntries (relay-setup.ts) archives it flagged "relay-outcome-unknown" (same rule).
import { createReadStream } from 'node:fs';
import type { SMTPServerDataStream } from 'smtp-server';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { errorMessage } from '../errors.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { Envelope, SessionInfo } from '../app/hook-types.ts';
import type { Assignment, Intake, IntakeRecord } from '../intake/intake.ts';
import { SmugglingGuard } from '../intake/smuggling-guard.ts';
import { parseHeaderBlock } from '../mime/headers.ts';
import { REPLIES, replyError, verdictError, type SmtpReply } from './replies.ts';
import type { RelaySession } from './relay-session.ts';
import { replyText } from './relay-upstream.ts';

export const RELAY_OUTCOME_UNKNOWN = 'relay-outcome-unknown';
export const UPSTREAM_UNAVAILABLE: SmtpReply = { code: 451, text: '4.4.1 Upstream mail server unavailable; try again later' };

export interface TransactionDeps {
  config: Config['relay'];
  listener: string;
  intake: Intake;
  hooks: HookRegistry;
  metrics: Metrics;
  enqueue(record: IntakeRecord, inline: Buffer | null): void;
}

export interface TransactionInput {
  stream: SMTPServerDataStream;
  session: SessionInfo;
  envelope: Envelope;
  upstream: RelaySession;
  assign: Assignment | null;
  log: Logger;
}

/** Runs one DATA transaction; resolves with the 250 text for the client or throws an smtp-server reply error. */
export async function relayData(deps: TransactionDeps, input: TransactionInput): Promise<string> {
  const { config, listener, intake, hooks, metrics } = deps;
  const { stream, session, envelope, upstream, log } = input;
  const refuse = (reply: SmtpReply, reason: string): never => {
    (reply.code < 500 ? metrics.messagesTempfailed : metrics.messagesRejected).inc({ listener, reason });
    log.warn('Message refused', { reason, reply: `${reply.code} ${reply.text}`, from: envelope.mailFrom, rcpts: envelope.rcptTo.length });
    throw replyError(reply);
  };

  const gate = await hooks.gate('data', { session, envelope }, log);
  const writer = intake.writer();
  const guard = new SmugglingGuard();
  let received = 0;
  let writeError: unknown = null;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (gate || received > config.maxMessageSize) continue; // keep reading to stay in sync; keep nothing
      guard.scan(chunk);
      if (writeError) continue;
      try {
        await writer.write(chunk);
      } catch (err) {
        writeError = err;
      }
    }
  } catch (err) {
    await writer.abort();
    await upstream.abandonTransaction();
    log.warn('Reading message data failed', { err: errorMessage(err) });
    throw replyError(REPLIES.intakeFailed);
  }
  guard.end();
  const local = ((): { reply: SmtpReply; reason: string } | null => {
    const v = verdictError(gate);
    if (v) return { reply: { code: v.responseCode, text: v.message }, reason: 'plugin' };
    if (stream.sizeExceeded || received > config.maxMessageSize) return { reply: REPLIES.messageTooBig(config.maxMessageSize), reason: 'size' };
    if (guard.smuggling) return { reply: REPLIES.smuggling, reason: 'smuggling' };
    if (guard.bareLineEnding) return { reply: { code: 554, text: '5.6.0 Message contains bare CR or LF line endings; the relay does not forward them' }, reason: 'bare_line_ending' };
    return null;
  })();
  if (local) {
    await writer.abort();
    await upstream.abandonTransaction();
    return refuse(local.reply, local.reason);
  }
  if (hooks.has('dataEnd')) {
    const end = verdictError(await hooks.gate('dataEnd', { session, envelope, size: writer.bytes, headers: parseHeaderBlock(writer.head()) }, log));
    if (end) {
      await writer.abort();
      await upstream.abandonTransaction();
      return refuse({ code: end.responseCode, text: end.message }, 'plugin');
    }
  }

  // Bytes to forward if the intake fails and requireArchive is off: the whole message is in memory
  // up to inlineMaxBytes; beyond that the spool file holds it until abort().
  const streamFailed = writeError !== null;
  const fallback = !config.requireArchive && !streamFailed && writer.bytes <= intake.inlineMaxBytes ? writer.head() : null;
  // DATA goes upstream now, its round trip overlapping the fsync; nothing is sent after the 354
  // until the commit is durable, and a failed commit closes the upstream connection instead.
  const started = upstream.startData();
  let held: { record: IntakeRecord; inline: Buffer | null } | null = null;
  if (!writeError) {
    try {
      held = await writer.commit({
        listener,
        envelope,
        session: { remoteAddress: session.remoteAddress, helo: session.helo, user: session.user },
        ...(input.assign ? { assign: input.assign } : {}),
      }, { state: 'held' });
    } catch (err) {
      writeError = err;
    }
  }
  if (!held) {
    metrics.relayTransactions.inc({ outcome: 'intake_failed' });
    const spooled = writer.bytes > intake.inlineMaxBytes ? intake.spoolPath(writer.id) : null;
    if (config.requireArchive || streamFailed || (!fallback && !spooled)) {
      await writer.abort();
      upstream.abortData();
      log.error('Intake commit failed; nothing forwarded', { err: errorMessage(writeError) });
      return refuse(REPLIES.intakeFailed, 'intake');
    }
    log.error('Intake commit failed; forwarding without archiving (requireArchive is off)', { err: errorMessage(writeError) });
    const out = await upstream.data(started, fallback ? [fallback] : createReadStream(spooled as string));
    await writer.abort();
    if ('error' in out) throw replyError(UPSTREAM_UNAVAILABLE);
    if (out.reply.code >= 300) throw replyError({ code: out.reply.code, text: replyText(out.reply) });
    return replyText(out.reply);
  }

  const { record, inline } = held;
  const out = await upstream.data(started, inline ? [inline] : createReadStream(intake.spoolPath(record.id)));
  if ('error' in out) {
    metrics.relayTransactions.inc({ outcome: 'upstream_unavailable' });
    if (out.afterEnd) {
      log.warn('Upstream gave no reply after the message was sent; archiving it flagged, the client retries', { intakeId: record.id, err: errorMessage(out.error) });
      await release(deps, record, inline, [RELAY_OUTCOME_UNKNOWN], log);
    } else {
      log.warn('Upstream failed during the transaction; nothing archived', { intakeId: record.id, err: errorMessage(out.error) });
      await intake.remove(record);
    }
    throw replyError(UPSTREAM_UNAVAILABLE);
  }
  const reply = out.reply;
  if (reply.code < 200 || reply.code >= 300) {
    metrics.relayTransactions.inc({ outcome: 'rejected' });
    log.info('Upstream refused the message; nothing archived', { intakeId: record.id, reply: `${reply.code} ${replyText(reply)}` });
    await intake.remove(record);
    throw replyError({ code: reply.code, text: replyText(reply) });
  }
  metrics.relayTransactions.inc({ outcome: 'delivered' });
  metrics.messagesAccepted.inc({ listener });
  metrics.receivedBytes.inc({ listener }, record.size);
  await release(deps, record, inline, [], log);
  log.info('Message relayed', { intakeId: record.id, size: record.size, from: envelope.mailFrom, rcpts: envelope.rcptTo.length, upstream: replyText(reply).slice(0, 120) });
  void hooks.notify('queued', { session, envelope, intakeId: record.id, size: record.size }, log);
  return replyText(reply) || 'Ok';
}

/**
 * Held → active and queued. Not synced: if the release is lost in a crash, the held entry is
 * archived at the next start anyway (flagged), so the archive never misses a delivered message.
 */
async function release(deps: TransactionDeps, record: IntakeRecord, inline: Buffer | null, flags: string[], log: Logger): Promise<void> {
  try {
    const next = await deps.intake.release(record, { flags, sync: false });
    deps.enqueue(next, inline);
  } catch (err) {
    log.error('Releasing a relayed message for archiving failed; it stays held and is archived at the next start', { intakeId: record.id, err: errorMessage(err) });
  }
}
