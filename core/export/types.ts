// The export contract: what an export selects, in which format, and the record the API shows
// (status, counts, the file and manifest with their SHA-256). Shared by the service, the job, the
// routes and the CLI.
import type { JobTargets } from '../jobs/targets.ts';

export const EXPORT_FORMATS = ['mbox', 'eml', 'zip'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** One archived message picked by hand: an entry of a user's folder. */
export interface ExportPick {
  user: string;
  folder: string;
  uid: number;
}

/** At most this many picked messages in one export. */
export const MAX_PICKS = 1000;

/**
 * One user's archive (or one folder of it), every entry a legal hold covers, a full-text query, the
 * archives of several users named by job targets (resolved when the export runs), or messages picked
 * one by one (a selection in the web access).
 */
export type ExportSelection =
  | { user: string; folder?: string }
  | { hold: string }
  | { query: string }
  | { targets: JobTargets }
  | { messages: ExportPick[] };

export type ExportStatus = 'queued' | 'running' | 'succeeded' | 'completed-with-errors' | 'failed' | 'cancelled';

export interface ExportFileInfo {
  /** Name of the file on the server (the CLI names its copy after --output). */
  name: string;
  size: number;
  sha256: string;
  contentType: string;
}

export interface ExportCounts {
  /** Entries the selection yielded. */
  selected: number;
  /** Messages written, byte-identical. */
  exported: number;
  /** Entries that could not be exported (missing or damaged blob …); listed in the manifest as errors. */
  failed: number;
  /** Bytes of the exported messages (the original sizes, before any quoting or container). */
  bytes: number;
}

/** An export as stored beside its files (<dataDir>/exports/<id>/export.json) and shown by the API. */
export interface ExportRecord {
  id: string;
  /** The job that runs it: export-<id> (`postern jobs show` while it runs). */
  job: string;
  format: ExportFormat;
  selection: ExportSelection;
  /** Who asked for it; only they may see it and download it. */
  createdBy: string;
  createdAt: string;
  /** Client address of the request. */
  remote: string;
  /** Archives a query may hit: the names, or "all" (resolved from the requester's privileges at creation). */
  scope: string[] | 'all';
  status: ExportStatus;
  startedAt: string | null;
  endedAt: string | null;
  /** After this the files are deleted (exports.keepHours after the end). */
  expiresAt: string | null;
  counts: ExportCounts;
  /** Up to 100 problems (entries not exported, the failure that stopped the run). */
  errors: string[];
  /** The export file (mbox, or a zip for eml and zip) once written. */
  file: ExportFileInfo | null;
  /** The manifest (inside the zip for eml/zip, a separate download for every format); its SHA-256 is in the audit log. */
  manifest: ExportFileInfo | null;
  /** Sequence number of the audit record holding the manifest's SHA-256. */
  auditSeq: number | null;
}
