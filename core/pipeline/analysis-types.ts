// What crosses between the archiving pipeline and its analysis workers: the analyzers plugins
// registered, one request per intake entry, and the units (messages to archive) found in it with
// each analyzer's result. Everything here is structured-cloneable; Buffers arrive as Uint8Arrays.
import type { Readable } from 'node:stream';
import type { HeaderBlock, MessageSummary } from '../mime/headers.ts';
import type { JournalInfo } from '../app/hook-types.ts';
import type { BlobCodecOptions, PackedChunk } from '../storage/blob-codec.ts';

/**
 * CPU work on a message's untrusted bytes that a plugin wants done under the archiving budget: the
 * module is loaded in every analysis worker and its export called once per message; the result
 * (JSON-safe) reaches the plugin's hooks as `context.analysis[plugin]`.
 */
export interface AnalyzerSpec {
  plugin: string;
  /** file: URL of the module (use `new URL('./analyzer.ts', import.meta.url).href`). */
  module: string;
  exportName: string;
  /** Settings handed to the analyzer (JSON-safe). */
  options: unknown;
  /** Run only on request (analyzeWith), not on each message being archived. */
  onDemand?: boolean;
}

export interface AnalyzerInput {
  headers: HeaderBlock;
  size: number;
  options: unknown;
  /** The message bytes, streamed. */
  open(): Readable;
}

export type AnalyzerFn = (input: AnalyzerInput) => unknown;

export type AnalyzerOutcome = { ok: true; value: unknown } | { ok: false; error: string };

export interface AnalysisRequest {
  id: number;
  /** The bytes, or the spool file that holds them. */
  source: { bytes: Uint8Array } | { path: string };
  size: number;
  /** Run only this plugin's analyzer on the bytes as one message (no journal unwrapping). */
  only?: string;
}

/** A journal report's facts for the main thread's metrics and logs. */
export interface ReportFacts {
  kind: string;
  style: string;
  problems: string[];
  /** No usable original: the report itself is archived, flagged. */
  malformed: boolean;
}

export interface AnalyzedUnit {
  headers: HeaderBlock;
  /** Date, From, To, Cc, Subject, Message-ID decoded from the headers (in the worker, under the budget). */
  summary: MessageSummary;
  journal: JournalInfo | null;
  flags: string[];
  /** Bytes of an original unwrapped from a journal report; absent when the unit is the whole entry. */
  original?: Uint8Array;
  /**
   * The unit's bytes compressed with the archive's blob codec (blob-codec packChunk), done here so the
   * archive's thread only frames them: for units held in memory that fit one chunk, when the pool was
   * given the codec.
   */
  packed?: PackedChunk;
  analysis: Record<string, AnalyzerOutcome>;
}

export interface AnalysisResult {
  units: AnalyzedUnit[];
  report: ReportFacts | null;
}

/** What every analysis worker is started with. */
export interface AnalysisWorkerData {
  specs: AnalyzerSpec[];
  /** The archive's blob codec: units that fit one chunk come back packed with it. */
  codec: BlobCodecOptions | null;
}

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'startup-failed'; error: string }
  | { type: 'done'; id: number; result: AnalysisResult }
  | { type: 'done-one'; id: number; outcome: AnalyzerOutcome }
  | { type: 'failed'; id: number; error: string; corrupt: boolean };
