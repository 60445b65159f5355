// Splits one intake entry into the messages to archive and runs the analyzers on each: the header
// block is parsed, a journal report (also one inside a non-delivery report) is unwrapped into the
// original(s) it carries, and each unit gets every analyzer's result. Runs inside an analysis worker,
// under its time and memory budget: everything here reads untrusted bytes. Trusts nothing; hands on
// AnalysisResult (an analyzer that throws is recorded as its failure, the message goes on).
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { errorMessage } from '../errors.ts';
import { headerValues, parseHeaderBlock, summarize, type HeaderBlock } from '../mime/headers.ts';
import { detectJournalReport, parseJournalReport } from '../journal/journal-report.ts';
import type { AnalysisResult, AnalyzedUnit, AnalyzerFn, AnalyzerOutcome, AnalyzerSpec, ReportFacts } from './analysis-types.ts';

export const HEADER_SCAN_BYTES = 1024 * 1024;

export interface LoadedAnalyzer {
  spec: AnalyzerSpec;
  fn: AnalyzerFn;
}

/** Where the entry's bytes are: in memory, or a spool file read only as far as needed. */
export interface EntrySource {
  size: number;
  head(): Promise<Buffer>;
  all(): Promise<Buffer>;
  open(): Readable;
}

async function analyze(analyzers: LoadedAnalyzer[], headers: HeaderBlock, size: number, open: () => Readable): Promise<Record<string, AnalyzerOutcome>> {
  const out: Record<string, AnalyzerOutcome> = {};
  for (const { spec, fn } of analyzers) {
    try {
      out[spec.plugin] = { ok: true, value: await fn({ headers, size, options: spec.options, open }) };
    } catch (err) {
      out[spec.plugin] = { ok: false, error: errorMessage(err) };
    }
  }
  return out;
}

export async function analyzeEntry(source: EntrySource, allAnalyzers: LoadedAnalyzer[]): Promise<AnalysisResult> {
  const analyzers = allAnalyzers.filter((a) => a.spec.onDemand !== true);
  const head = await source.head();
  const headers = parseHeaderBlock(head, HEADER_SCAN_BYTES);
  const whole = async (flags: string[], journal: AnalyzedUnit['journal'] = null): Promise<AnalyzedUnit> => ({
    headers, summary: summarize(headers), journal, flags, analysis: await analyze(analyzers, headers, source.size, () => source.open()),
  });
  const kind = detectJournalReport(headers);
  const ndr = /^\s*multipart\/report\b/i.test(headerValues(headers, 'content-type')[0] ?? '');
  if (!kind && !ndr) return { units: [await whole([])], report: null };
  const report = parseJournalReport(await source.all());
  if (!report && !kind) return { units: [await whole([])], report: null }; // an ordinary NDR
  if (!report || report.originals.length === 0) {
    // Broken report: archive the report itself, attributed from what its envelope still tells.
    const problems = report?.problems.length ? report.problems : ['no message/rfc822 part'];
    const journal = report ? { kind: report.kind, envelope: report.envelope, role: 'original' as const, ndrWrapped: report.ndrWrapped, wrapper: report.wrapper, problems } : null;
    const facts: ReportFacts = { kind: report?.kind ?? kind ?? 'unknown', style: report?.envelope.style ?? 'unknown', problems, malformed: true };
    return { units: [await whole(problems.map((p) => `journal-malformed: ${p}`), journal)], report: facts };
  }
  const units: AnalyzedUnit[] = [];
  for (const o of report.originals) {
    const h = parseHeaderBlock(o.bytes.subarray(0, HEADER_SCAN_BYTES), HEADER_SCAN_BYTES);
    units.push({
      headers: h,
      summary: summarize(h),
      journal: { kind: report.kind, envelope: report.envelope, role: o.role, ndrWrapped: report.ndrWrapped, wrapper: report.wrapper, problems: report.problems },
      flags: report.problems.map((p) => `journal-malformed: ${p}`),
      original: o.bytes,
      analysis: await analyze(analyzers, h, o.bytes.length, () => Readable.from([o.bytes])),
    });
  }
  return { units, report: { kind: report.kind, style: report.envelope.style, problems: report.problems, malformed: false } };
}

/** One plugin's analyzer on bytes taken as one message (e.g. data computed later for an older message). */
export async function analyzeWithOne(source: EntrySource, analyzers: LoadedAnalyzer[], plugin: string): Promise<AnalyzerOutcome> {
  const one = analyzers.filter((a) => a.spec.plugin === plugin);
  if (one.length === 0) return { ok: false, error: `Plugin "${plugin}" has no analyzer` };
  const headers = parseHeaderBlock(await source.head(), HEADER_SCAN_BYTES);
  return (await analyze(one, headers, source.size, () => source.open()))[plugin] as AnalyzerOutcome;
}

export function memorySource(bytes: Buffer): EntrySource {
  return {
    size: bytes.length,
    head: () => Promise.resolve(bytes.subarray(0, HEADER_SCAN_BYTES)),
    all: () => Promise.resolve(bytes),
    open: () => Readable.from([bytes]),
  };
}

export function fileSource(path: string, size: number, readHead: (path: string, max: number) => Promise<Buffer>, readAll: (path: string) => Promise<Buffer>): EntrySource {
  return {
    size,
    head: () => readHead(path, Math.min(size, HEADER_SCAN_BYTES)),
    all: () => readAll(path),
    open: () => createReadStream(path),
  };
}
