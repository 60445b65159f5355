// The export manifest and its companions: one JSON line per exported message (user, folder, UID, SHA-256
// and size of the exact bytes handed over, date, from, subject, every capture's envelope and journal
// provenance), a header line saying what was selected by whom, error lines for entries that could not
// be exported, and an end line with the totals (a cut manifest is visibly incomplete). Also the file
// names of messages in eml/zip exports and SHA256SUMS lines that `sha256sum -c` checks. Pure functions
// over the archive's records; the exporter writes their output.
import type { ArchiveEntry, CaptureJournal, CaptureRecord, MessageRecord } from '../storage/types.ts';
import type { ExportFormat, ExportSelection } from './types.ts';
import { describeTargets } from '../jobs/targets.ts';

export const MANIFEST_NAME = 'manifest.jsonl';
export const SUMS_NAME = 'SHA256SUMS';
export const MANIFEST_VERSION = 1;

export interface ManifestHeader {
  type: 'export';
  version: number;
  id: string;
  format: ExportFormat;
  selection: ExportSelection;
  createdAt: string;
  createdBy: string;
}

export interface ManifestCapture {
  id: string;
  listener: string;
  receivedAt: string;
  mailFrom: string;
  rcptTo: string[];
  client: string;
  helo: string;
  /** The journal report the capture was unwrapped from (sender, recipients with expansion, wrapper id …), or null. */
  journal: CaptureJournal | null;
}

export interface ManifestMessage {
  type: 'message';
  user: string;
  folder: string;
  uid: number;
  /** Hex SHA-256 of the exported bytes (equal to the archive's blob id: checked while exporting). */
  sha256: string;
  size: number;
  /** The Date header as archived (ISO 8601), or null. */
  date: string | null;
  from: string;
  to: string;
  cc: string;
  subject: string;
  messageId: string | null;
  /** When the archive stored the entry (IMAP INTERNALDATE). */
  archivedAt: string;
  /** eml/zip: the path of the .eml file inside the export; mbox: null. */
  file: string | null;
  /** mbox: byte offset of the message's From_ line in the mbox file; eml/zip: null. */
  offset: number | null;
  flags: string[];
  captures: ManifestCapture[];
}

export interface ManifestError {
  type: 'error';
  user: string;
  folder: string;
  uid: number;
  error: string;
}

export interface ManifestEnd {
  type: 'end';
  messages: number;
  bytes: number;
  errors: number;
}

export type ManifestLine = ManifestHeader | ManifestMessage | ManifestError | ManifestEnd;

export function manifestCapture(c: CaptureRecord): ManifestCapture {
  return { id: c.id, listener: c.listener, receivedAt: c.receivedAt, mailFrom: c.mailFrom, rcptTo: [...c.rcptTo], client: c.client, helo: c.helo, journal: c.journal ?? null };
}

export function manifestMessage(
  entry: Pick<ArchiveEntry, 'user' | 'folder' | 'uid' | 'internalDate'>, message: MessageRecord, written: { sha256: string; size: number; file: string | null; offset: number | null },
): ManifestMessage {
  return {
    type: 'message', user: entry.user, folder: entry.folder, uid: entry.uid, sha256: written.sha256, size: written.size,
    date: message.date, from: message.from, to: message.to, cc: message.cc, subject: message.subject, messageId: message.messageIdHeader,
    archivedAt: entry.internalDate, file: written.file, offset: written.offset, flags: [...message.flags],
    captures: message.captures.map(manifestCapture),
  };
}

/** One manifest line with its LF (JSON escapes every newline inside values). */
export function manifestLine(line: ManifestLine): string {
  return JSON.stringify(line) + '\n';
}

/** Characters kept as they are in a path segment; everything else is %XX (UTF-8). */
const SAFE = /^[\p{L}\p{N} _.,+=@()[\]{}!#&'~$^-]$/u;
const RESERVED_TOP = new Set([MANIFEST_NAME, SUMS_NAME]);

/**
 * A folder or user name as one path segment, reversibly (decodeURIComponent gives it back): unsafe
 * characters (/, \, :, control characters, % …) as %XX, a leading "." as %2E (no hidden or "." / ".."
 * segments), and a name that could clash with a message file ("12.eml") or a top-level file of the
 * export with its last "." as %2E.
 */
export function pathSegment(name: string, top = false): string {
  let out = '';
  for (const ch of name) {
    out += SAFE.test(ch) ? ch : [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  if (out.startsWith('.')) out = `%2E${out.slice(1)}`;
  if (out === '') out = '%00';
  if (/^\d+\.eml$/.test(out) || (top && RESERVED_TOP.has(out))) out = out.replace(/\.(?=[^.]*$)/, '%2E');
  return out;
}

/** The file of one message in an eml/zip export: USER/FOLDER/UID.eml, each folder level a directory. */
export function emlPath(user: string, folder: string, uid: number): string {
  return [pathSegment(user, true), ...folder.split('/').map((s) => pathSegment(s)), `${uid}.eml`].join('/');
}

/** One SHA256SUMS line ("HASH  NAME", as `sha256sum` writes it in text mode). Names from emlPath need no escaping. */
export function sumsLine(sha256: string, name: string): string {
  if (/[\n\r\\]/.test(name)) throw new Error(`File name "${name}" needs escaping in SHA256SUMS`);
  return `${sha256}  ${name}\n`;
}

/** A selection in one short text for logs, audit targets and the CLI: "user alice folder Inbox", "hold case-1", "query …". */
export function describeSelection(s: ExportSelection): string {
  if ('hold' in s) return `hold ${s.hold}`;
  if ('query' in s) return `query ${JSON.stringify(s.query)}`;
  if ('targets' in s) return `targets: ${describeTargets(s.targets)}`;
  if ('messages' in s) {
    const shown = s.messages.slice(0, 3).map((p) => `${p.user}/${p.folder}/${p.uid}`).join(', ');
    return `${s.messages.length} picked ${s.messages.length === 1 ? 'message' : 'messages'} (${shown}${s.messages.length > 3 ? ', …' : ''})`;
  }
  return s.folder !== undefined ? `user ${s.user} folder ${s.folder}` : `user ${s.user}`;
}
