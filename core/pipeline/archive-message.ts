// The archiving half for one intake entry: analysis in a worker under a time and memory budget
// (message-units.ts: headers, journal unwrapping into the original message(s), the plugins'
// analyzers) → parse → route → dedup → retention → index hooks → archive commit → stored. A message
// whose analysis exceeds its budget is archived raw-only (routed by its envelope, flagged) and its
// intake entry quarantined: kept, listed, retried by `postern intake retry`. Each archived unit has its own capture id, so replaying an entry after a crash between
// the archive commit and the intake removal never archives anything twice. The header block is parsed
// once here and handed on (context.headers: routing, the summary, the dedup plugin's canonical hash),
// and bytes already in memory travel with the blob (BlobSource.bytes) so the archive need not re-read them.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { PosternError, errorMessage, isPosternError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { HookRegistry } from '../app/hooks.ts';
import type { JournalInfo, MessageContext, Route } from '../app/hook-types.ts';
import type { Intake, IntakeRecord } from '../intake/intake.ts';
import { blobIdentity, type ArchiveStore, type BlobSource, type CaptureJournal, type CaptureRecord } from '../storage/types.ts';
import { summarize, type HeaderBlock, type MessageSummary } from '../mime/headers.ts';
import type { AnalysisPool } from './analysis-pool.ts';
import { CommitOrder, type CommitTurn } from './commit-order.ts';
import type { AnalysisResult, AnalyzerOutcome } from './analysis-types.ts';
import type { PackedChunk } from '../storage/blob-codec.ts';

/** What processing an entry ended with: archived (the entry can go), or archived raw-only and to be quarantined. */
export type ArchiveOutcome = void | { quarantine: string };

const EMPTY_HEADERS: HeaderBlock = { fields: [], headerBytes: 0, complete: false };
/** The only hook handlers raw-only archiving runs: core's own router (core/router/multidrop-router.ts). */
const BUILT_IN_ROUTER: ReadonlySet<string> = new Set(['multidrop-router']);
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
  analysis: AnalysisPool;
}

/** One message to archive: the whole intake entry, or one original unwrapped from a journal report. */
interface Unit {
  captureId: string;
  headers: HeaderBlock;
  blob: BlobSource;
  journal: JournalInfo | null;
  flags: string[];
  summary: MessageSummary;
  /** Successful analyzer results by plugin. */
  analysis: Record<string, unknown>;
}

/** Bytes held in memory (inline intake entries, originals unwrapped from a journal report). */
class HeldBlob implements BlobSource {
  constructor(readonly sha256: string, readonly size: number, readonly bytes: Buffer, readonly packed?: PackedChunk) {}
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

/** The capture id of an entry's first unit; a retry after quarantine archives under a new one. */
export function captureBase(record: IntakeRecord): string {
  return record.retries ? `${record.id}.r${record.retries}` : record.id;
}

/** Flags for analyzers that failed, and the results of those that did not. */
function splitOutcomes(outcomes: Record<string, AnalyzerOutcome>): { flags: string[]; values: Record<string, unknown> } {
  const flags: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [plugin, o] of Object.entries(outcomes)) {
    if (o.ok) values[plugin] = o.value;
    else flags.push(`analysis-failed: ${plugin}: ${o.error.slice(0, 200)}`);
  }
  return { flags, values };
}

function bufferBlob(bytes: Buffer, packed: PackedChunk | undefined): BlobSource {
  return new HeldBlob(createHash('sha256').update(bytes).digest('hex'), bytes.length, bytes, packed);
}

function captureJournal(j: JournalInfo): CaptureJournal {
  return {
    kind: j.kind, style: j.envelope.style, role: j.role, sender: j.envelope.sender, onBehalfOf: j.envelope.onBehalfOf,
    recipients: j.envelope.recipients.map((r) => ({ ...r })), wrapperMessageId: j.wrapper.messageId, ndrWrapped: j.ndrWrapped, problems: j.problems,
  };
}

/**
 * The archiver of intake entries. fresh (see ProcessFn): the entry cannot have been archived before,
 * so the check for a capture committed by an earlier run is skipped; by default, entries handed over
 * with their bytes in memory are taken as fresh.
 */
export function createArchiver(deps: ArchiverDeps): (record: IntakeRecord, inline: Buffer | null, fresh?: boolean) => Promise<ArchiveOutcome> {
  const { archive, intake, hooks, metrics } = deps;

  /** The entry's bytes when small (checked against the intake checksum); null for a spooled entry. */
  async function load(record: IntakeRecord, held: Buffer | null): Promise<Buffer | null> {
    const inline = held ?? (await intake.inlineData(record));
    if (inline) {
      // Bytes read back from the intake are checked against the checksum taken while receiving;
      // bytes handed over in memory by the receiver are the ones that checksum was taken of.
      if (inline.length !== record.size || (!held && createHash('sha256').update(inline).digest('hex') !== record.sha256)) {
        throw new PosternError('INTAKE_CORRUPT', `Intake entry "${record.id}" does not match its checksum`);
      }
      return inline;
    }
    // A spooled entry is read by the analysis worker, which reports a spool file it cannot read as corrupt.
    return null;
  }

  /** The units of an entry from its analysis (journal originals carry their own bytes). */
  function unitsOf(record: IntakeRecord, inline: Buffer | null, result: AnalysisResult, log: Logger): Unit[] {
    const { report } = result;
    if (report?.malformed) {
      metrics.journalMalformed.inc();
      log.warn('Malformed journal report archived as received and flagged', { problems: report.problems });
    } else if (report) {
      metrics.journalReports.inc({ kind: report.kind, style: report.style });
      if (report.problems.length > 0) {
        metrics.journalMalformed.inc();
        log.warn('Journal report has problems; originals archived and flagged', { problems: report.problems });
      }
    }
    const base = captureBase(record);
    const whole = (packed: PackedChunk | undefined): BlobSource => (inline ? new HeldBlob(record.sha256, record.size, inline, packed) : new SpooledBlob(record.sha256, record.size, intake.spoolPath(record.id)));
    return result.units.map((u, i) => {
      const { flags, values } = splitOutcomes(u.analysis);
      return {
        captureId: i === 0 ? base : `${base}.${i}`,
        headers: u.headers,
        summary: u.summary,
        blob: u.original ? bufferBlob(Buffer.from(u.original.buffer, u.original.byteOffset, u.original.byteLength), u.packed) : whole(u.packed),
        journal: u.journal,
        flags: [...u.flags, ...flags],
        analysis: values,
      };
    });
  }

  /**
   * rawOnly: the message could not be analysed, or crashed the process while archived: no plugin hook
   * runs but the built-in router's, which routes it by its envelope (its headers are not read).
   */
  async function archiveUnit(record: IntakeRecord, unit: Unit, fresh: boolean, log: Logger, rawOnly: boolean, turn: CommitTurn): Promise<void> {
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
      summary: unit.summary,
      journal: unit.journal,
      assign: record.assign ?? null,
      analysis: unit.analysis,
      open() {
        return unit.blob.open();
      },
    };
    if (!rawOnly) await hooks.collect('parse', { context }, log);
    let routes: Route[] = (await hooks.collect('route', { context }, log, rawOnly ? BUILT_IN_ROUTER : undefined)).flat();
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
    const dedup = rawOnly ? null : (await hooks.collect('dedup', { context }, log)).find((d) => d !== null) ?? null;
    const mergeInto = dedup?.mergeInto ?? undefined;
    const messageId = mergeInto ?? unit.captureId;
    if (!rawOnly) await hooks.collect('retention', { context, routes }, log);
    const attributes = rawOnly ? undefined : messageAttributes(await hooks.collect('index', { context, messageId }, log), log);

    const capture: CaptureRecord = {
      id: unit.captureId, listener: record.listener, receivedAt: record.receivedAt, mailFrom: record.envelope.mailFrom,
      rcptTo: record.envelope.rcptTo, client: record.session.remoteAddress, helo: record.session.helo,
      ...(unit.journal ? { journal: captureJournal(unit.journal) } : {}),
    };
    const started = process.hrtime.bigint();
    const { summary } = context;
    await turn.wait();
    const pending = archive.commit({
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
    turn.release();
    const result = await pending;
    metrics.commitDuration.observe({ store: 'archive' }, Number(process.hrtime.bigint() - started) / 1e9);
    if (result.alreadyCommitted) return;
    metrics.archiveCommits.inc();
    metrics.archiveEntries.inc(result.entries.length);
    log.debug('Archived', { messageId: result.messageId, entries: result.entries.length, merged: result.messageId !== unit.captureId });
    await hooks.notify('stored', { messageId: result.messageId, entries: result.entries, context }, log);
  }

  const order = new CommitOrder();
  return async (record, held, fresh = held !== null) => {
    const turn = order.take();
    try {
      return await archiveEntry(record, held, fresh, turn);
    } finally {
      turn.release();
    }
  };

  async function archiveEntry(record: IntakeRecord, held: Buffer | null, fresh: boolean, turn: CommitTurn): Promise<ArchiveOutcome> {
    const log = deps.log.child({ intakeId: record.id });
    const inline = await load(record, held);
    let result: AnalysisResult;
    let budget: string | null = null;
    const rawOnly = (reason: string): AnalysisResult => ({
      units: [{ headers: EMPTY_HEADERS, summary: summarize(EMPTY_HEADERS), journal: null, flags: [`analysis-failed: ${reason}`], analysis: {} }], report: null,
    });
    if (record.rawOnly) {
      // It was being archived at consecutive crashes: nothing of it is parsed again.
      budget = `${record.rawOnly}; archived raw-only`;
      result = rawOnly(record.rawOnly);
    } else {
      try {
        result = await deps.analysis.analyze(inline ? { source: { bytes: inline }, size: record.size } : { source: { path: intake.spoolPath(record.id) }, size: record.size });
      } catch (err) {
        if (!isPosternError(err, 'MESSAGE_BUDGET')) throw err;
        budget = errorMessage(err);
        log.error('Message exceeded its analysis budget; archiving it raw-only (routed by its envelope, flagged) and quarantining its intake entry', { err: budget });
        result = rawOnly(budget);
      }
    }
    for (const unit of unitsOf(record, inline, result, log)) await archiveUnit(record, unit, fresh, log, budget !== null, turn);
    return budget === null ? undefined : { quarantine: budget };
  }
}
