// The archiving half for one intake entry: parse headers (unwrapping a journal report into the
// original message(s) it carries) → parse → route → dedup → retention → index hooks → archive commit
// → stored. Each archived unit has its own capture id, so replaying an entry after a crash between
// the archive commit and the intake removal never archives anything twice. The header block is parsed
// once here and handed on (context.headers: routing, the summary, the dedup plugin's canonical hash),
// and bytes already in memory travel with the blob (BlobSource.bytes) so the archive need not re-read them.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { PosternError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { JournalInfo, MessageContext, Route } from '../app/hook-types.ts';
import type { Intake, IntakeRecord } from '../intake/intake.ts';
import { blobIdentity, type ArchiveStore, type BlobSource, type CaptureJournal, type CaptureRecord } from '../storage/types.ts';
import { headerValues, parseHeaderBlock, summarize, type HeaderBlock } from '../mime/headers.ts';
import { detectJournalReport, parseJournalReport } from '../journal/journal-report.ts';

const HEADER_SCAN_BYTES = 1024 * 1024;
/** Upper bound on the JSON of one message's attributes (merged `index` hook results). */
export const MAX_ATTRIBUTES_BYTES = 256 * 1024;

/**
 * Merge the `index` hook parts into the attributes stored with a new message (earlier plugins win a
 * key). A key whose value is not JSON, or that would push the set over MAX_ATTRIBUTES_BYTES, is
 * dropped and logged: the message is archived without it rather than failing or bloating the record.
 */
export function messageAttributes(parts: Array<Record<string, unknown>>, log: Logger): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  let size = 2;
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      if (key in out || value === undefined) continue;
      let text: string | undefined;
      try {
        text = JSON.stringify(value) as string | undefined;
      } catch (err) {
        log.warn('Message attribute is not JSON; dropped', { key, err: errorMessage(err) });
        continue;
      }
      if (text === undefined) continue;
      const bytes = Buffer.byteLength(JSON.stringify(key)) + Buffer.byteLength(text) + 2;
      if (size + bytes > MAX_ATTRIBUTES_BYTES) {
        log.warn('Message attribute is too large; dropped', { key, bytes, limit: MAX_ATTRIBUTES_BYTES });
        continue;
      }
      out[key] = JSON.parse(text) as unknown;
      size += bytes;
    }
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

export interface ArchiverDeps {
  archive: ArchiveStore;
  intake: Intake;
  hooks: HookRegistry;
  log: Logger;
  metrics: Metrics;
  unmatched: { user: string; folder: string };
}

/** One message to archive: the whole intake entry, or one original unwrapped from a journal report. */
interface Unit {
  captureId: string;
  headers: HeaderBlock;
  blob: BlobSource;
  journal: JournalInfo | null;
  flags: string[];
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

/** Bytes held in memory (inline intake entries, originals unwrapped from a journal report). */
class HeldBlob implements BlobSource {
  constructor(readonly sha256: string, readonly size: number, readonly bytes: Buffer) {}
  open(): Readable {
    return Readable.from([this.bytes]);
  }
}

/** An intake entry spooled to a file, streamed from it. */
class SpooledBlob implements BlobSource {
  constructor(readonly sha256: string, readonly size: number, private readonly path: string) {}
  open(): Readable {
    return createReadStream(this.path);
  }
}

/** The whole intake entry as one unit to archive. */
function wholeUnit(record: IntakeRecord, headers: HeaderBlock, inline: Buffer | null, intake: Intake, flags: string[]): Unit {
  const blob = inline ? new HeldBlob(record.sha256, record.size, inline) : new SpooledBlob(record.sha256, record.size, intake.spoolPath(record.id));
  return { captureId: record.id, headers, journal: null, flags, blob };
}

function bufferBlob(bytes: Buffer): BlobSource {
  return new HeldBlob(createHash('sha256').update(bytes).digest('hex'), bytes.length, bytes);
}

function captureJournal(j: JournalInfo): CaptureJournal {
  return {
    kind: j.kind, style: j.envelope.style, role: j.role, sender: j.envelope.sender, onBehalfOf: j.envelope.onBehalfOf,
    recipients: j.envelope.recipients.map((r) => ({ ...r })), wrapperMessageId: j.wrapper.messageId, ndrWrapped: j.ndrWrapped, problems: j.problems,
  };
}

export function createArchiver(deps: ArchiverDeps): (record: IntakeRecord, inline: Buffer | null) => Promise<void> {
  const { archive, intake, hooks, metrics } = deps;

  /** The entry's bytes, checked; for spooled entries only the head is read unless a report needs all. */
  async function load(record: IntakeRecord, held: Buffer | null): Promise<{ inline: Buffer | null; head: Buffer }> {
    const inline = held ?? (await intake.inlineData(record));
    if (inline) {
      // Bytes read back from the intake are checked against the checksum taken while receiving;
      // bytes handed over in memory by the receiver are the ones that checksum was taken of.
      if (inline.length !== record.size || (!held && createHash('sha256').update(inline).digest('hex') !== record.sha256)) {
        throw new PosternError('INTAKE_CORRUPT', `Intake entry "${record.id}" does not match its checksum`);
      }
      return { inline, head: inline.subarray(0, HEADER_SCAN_BYTES) };
    }
    try {
      return { inline: null, head: await readHead(intake.spoolPath(record.id), Math.min(record.size, HEADER_SCAN_BYTES)) };
    } catch (err) {
      throw new PosternError('INTAKE_CORRUPT', `Spool file of intake entry "${record.id}" cannot be read`, { cause: err });
    }
  }

  async function unitsOf(record: IntakeRecord, inline: Buffer | null, head: Buffer, log: Logger): Promise<Unit[]> {
    const headers = parseHeaderBlock(head, HEADER_SCAN_BYTES);
    // A report may also arrive inside a non-delivery report (alternate journal mailbox).
    const kind = detectJournalReport(headers);
    const ndr = /^\s*multipart\/report\b/i.test(headerValues(headers, 'content-type')[0] ?? '');
    if (!kind && !ndr) return [wholeUnit(record, headers, inline, intake, [])];
    const bytes = inline ?? (await readFile(intake.spoolPath(record.id)));
    const report = parseJournalReport(bytes);
    if (!report && !kind) return [wholeUnit(record, headers, inline, intake, [])]; // an ordinary NDR
    if (!report || report.originals.length === 0) {
      // Broken report: archive the report itself, attributed from what its envelope still tells.
      const problems = report?.problems.length ? report.problems : ['no message/rfc822 part'];
      metrics.journalMalformed.inc();
      log.warn('Malformed journal report archived as received and flagged', { problems });
      const unit = wholeUnit(record, headers, inline, intake, problems.map((p) => `journal-malformed: ${p}`));
      if (report) unit.journal = { kind: report.kind, envelope: report.envelope, role: 'original', ndrWrapped: report.ndrWrapped, wrapper: report.wrapper, problems };
      return [unit];
    }
    metrics.journalReports.inc({ kind: report.kind, style: report.envelope.style });
    if (report.problems.length > 0) {
      metrics.journalMalformed.inc();
      log.warn('Journal report has problems; originals archived and flagged', { problems: report.problems });
    }
    return report.originals.map((o, i) => ({
      captureId: i === 0 ? record.id : `${record.id}.${i}`,
      headers: parseHeaderBlock(o.bytes.subarray(0, HEADER_SCAN_BYTES), HEADER_SCAN_BYTES),
      blob: bufferBlob(o.bytes),
      journal: { kind: report.kind, envelope: report.envelope, role: o.role, ndrWrapped: report.ndrWrapped, wrapper: report.wrapper, problems: report.problems },
      flags: report.problems.map((p) => `journal-malformed: ${p}`),
    }));
  }

  async function archiveUnit(record: IntakeRecord, unit: Unit, fresh: boolean, log: Logger): Promise<void> {
    if (!fresh && (await archive.captureCommitted(unit.captureId))) {
      log.info('Intake entry was archived before a restart; removing it', { captureId: unit.captureId });
      return;
    }
    const context: MessageContext = {
      intakeId: record.id,
      envelope: record.envelope,
      session: { listener: record.listener, ...record.session },
      receivedAt: record.receivedAt,
      size: unit.blob.size,
      sha256: unit.blob.sha256,
      headers: unit.headers,
      summary: summarize(unit.headers),
      journal: unit.journal,
      assign: record.assign ?? null,
      open() {
        return unit.blob.open();
      },
    };
    await hooks.collect('parse', { context }, log);
    let routes: Route[] = (await hooks.collect('route', { context }, log)).flat();
    const outcome = routes.length === 0 ? 'unassigned' : 'routed';
    if (routes.length === 0) {
      routes = [{ ...deps.unmatched, reason: 'no known participant' }];
      metrics.unroutedMessages.inc();
      // Loud on purpose: mail nobody can read until an operator adds the user or fixes routing. The
      // envelope as the receiver logs it (sender, recipient count), plus recipient domains, not addresses.
      const { mailFrom, rcptTo } = record.envelope;
      const rcptDomains = [...new Set(rcptTo.map((a) => a.slice(a.lastIndexOf('@') + 1).toLowerCase()))];
      log.warn('Message matched no known user; kept in the unassigned archive', {
        captureId: unit.captureId, archive: deps.unmatched.user, listener: record.listener, from: mailFrom, rcpts: rcptTo.length,
        rcptDomains: rcptDomains.slice(0, 10), ...(unit.journal ? { journal: unit.journal.kind } : {}),
      });
    }
    metrics.routingOutcomes.inc({ outcome, source: unit.journal ? 'journal' : 'envelope' });
    // A dedup plugin may name the message this is a copy of; without one, identical bytes are the
    // same message (the archive merges into the first message stored with them).
    const dedup = (await hooks.collect('dedup', { context }, log)).find((d) => d !== null) ?? null;
    const mergeInto = dedup?.mergeInto ?? undefined;
    const messageId = mergeInto ?? unit.captureId;
    await hooks.collect('retention', { context, routes }, log);
    const attributes = messageAttributes(await hooks.collect('index', { context, messageId }, log), log);

    const capture: CaptureRecord = {
      id: unit.captureId, listener: record.listener, receivedAt: record.receivedAt, mailFrom: record.envelope.mailFrom,
      rcptTo: record.envelope.rcptTo, client: record.session.remoteAddress, helo: record.session.helo,
      ...(unit.journal ? { journal: captureJournal(unit.journal) } : {}),
    };
    const started = process.hrtime.bigint();
    const { summary } = context;
    const result = await archive.commit({
      capture,
      messageId,
      summary: { date: summary.date, from: summary.from, to: summary.to, cc: summary.cc, subject: summary.subject, messageIdHeader: summary.messageId },
      blob: unit.blob,
      fileInto: routes.map((r) => ({ user: r.user, folder: r.folder })),
      ...(mergeInto ? { mergeInto } : {}),
      identities: [blobIdentity(unit.blob.sha256), ...(dedup?.identities ?? [])],
      // Problems found while capturing (e.g. relay-outcome-unknown) join those found while unwrapping.
      ...(unit.flags.length || record.flags?.length ? { flags: [...unit.flags, ...(record.flags ?? [])] } : {}),
      ...(attributes ? { attributes } : {}),
    });
    metrics.commitDuration.observe({ store: 'archive' }, Number(process.hrtime.bigint() - started) / 1e9);
    if (result.alreadyCommitted) return;
    metrics.archiveCommits.inc();
    metrics.archiveEntries.inc(result.entries.length);
    log.debug('Archived', { messageId: result.messageId, entries: result.entries.length, merged: result.messageId !== unit.captureId });
    await hooks.notify('stored', { messageId: result.messageId, entries: result.entries, context }, log);
  }

  return async (record, held) => {
    const log = deps.log.child({ intakeId: record.id });
    const { inline, head } = await load(record, held);
    for (const unit of await unitsOf(record, inline, head, log)) await archiveUnit(record, unit, held !== null, log);
  };
}
