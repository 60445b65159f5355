// The archiving half for one intake entry: parse headers → route → dedup → index → retention →
// archive commit → stored. Idempotent: an entry whose capture is already committed is skipped, so a
// crash between the archive commit and the intake removal never archives a message twice.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { PosternError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { MessageContext, Route } from '../app/hook-types.ts';
import type { Intake, IntakeRecord } from '../intake/intake.ts';
import type { ArchiveStore, BlobSource } from '../storage/types.ts';
import { parseHeaderBlock, summarize } from '../mime/headers.ts';

const HEADER_SCAN_BYTES = 1024 * 1024;

export interface ArchiverDeps {
  archive: ArchiveStore;
  intake: Intake;
  hooks: HookRegistry;
  log: Logger;
  metrics: Metrics;
  unmatched: { user: string; folder: string };
}

async function readHead(path: string, max: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(max);
    const { bytesRead } = await fh.read(buf, 0, max, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export function createArchiver(deps: ArchiverDeps): (record: IntakeRecord, inline: Buffer | null) => Promise<void> {
  const { archive, intake, hooks, metrics } = deps;
  return async (record, held) => {
    const log = deps.log.child({ intakeId: record.id });
    // An entry fresh from the receiver (bytes still held) cannot have been committed; one read back
    // from the intake may have been, before a crash. The archive's commit checks again either way.
    if (!held && (await archive.captureCommitted(record.id))) {
      log.info('Intake entry was archived before a restart; removing it');
      return;
    }
    let inline = held ?? (await intake.inlineData(record));
    let head: Buffer;
    if (inline) {
      // Bytes read back from the intake are checked against the checksum taken while receiving;
      // bytes handed over in memory by the receiver are the ones that checksum was taken of.
      if (inline.length !== record.size || (!held && createHash('sha256').update(inline).digest('hex') !== record.sha256)) {
        throw new PosternError('INTAKE_CORRUPT', `Intake entry "${record.id}" does not match its checksum`);
      }
      head = inline.subarray(0, HEADER_SCAN_BYTES);
    } else {
      try {
        head = await readHead(intake.spoolPath(record.id), Math.min(record.size, HEADER_SCAN_BYTES));
      } catch (err) {
        throw new PosternError('INTAKE_CORRUPT', `Spool file of intake entry "${record.id}" cannot be read`, { cause: err });
      }
    }
    const headers = parseHeaderBlock(head, HEADER_SCAN_BYTES);
    const context: MessageContext = {
      intakeId: record.id,
      envelope: record.envelope,
      session: { listener: record.listener, ...record.session },
      receivedAt: record.receivedAt,
      size: record.size,
      sha256: record.sha256,
      headers,
      summary: summarize(headers),
    };
    await hooks.collect('parse', { context }, log);
    let routes: Route[] = (await hooks.collect('route', { context }, log)).flat();
    if (routes.length === 0) {
      routes = [{ ...deps.unmatched, reason: 'no known user' }];
      metrics.unroutedMessages.inc();
    }
    const dedup = (await hooks.collect('dedup', { context }, log)).find((d) => d !== null) ?? null;
    const messageId = dedup?.mergeInto ?? record.id;
    await hooks.collect('retention', { context, routes }, log);
    await hooks.collect('index', { context, messageId }, log);

    const bytes = inline;
    const blob: BlobSource = {
      sha256: record.sha256,
      size: record.size,
      open: () => (bytes ? Readable.from([bytes]) : createReadStream(intake.spoolPath(record.id))),
    };
    inline = null;
    const started = process.hrtime.bigint();
    const { summary } = context;
    const result = await archive.commit({
      capture: {
        id: record.id, listener: record.listener, receivedAt: record.receivedAt, mailFrom: record.envelope.mailFrom,
        rcptTo: record.envelope.rcptTo, client: record.session.remoteAddress, helo: record.session.helo,
      },
      messageId,
      summary: { date: summary.date, from: summary.from, to: summary.to, cc: summary.cc, subject: summary.subject, messageIdHeader: summary.messageId },
      blob,
      fileInto: routes.map((r) => ({ user: r.user, folder: r.folder })),
      ...(dedup ? { mergeInto: dedup.mergeInto } : {}),
    });
    metrics.commitDuration.observe({ store: 'archive' }, Number(process.hrtime.bigint() - started) / 1e9);
    if (result.alreadyCommitted) return;
    metrics.archiveCommits.inc();
    metrics.archiveEntries.inc(result.entries.length);
    log.debug('Archived', { messageId: result.messageId, entries: result.entries.length });
    await hooks.notify('stored', { messageId: result.messageId, entries: result.entries, context }, log);
  };
}
