// The search role as a service: the `search` plugin provides it (full-text index, query language);
// core modules that select mail by query (export, legal holds) look it up at call time with
// app.hasService('search') and refuse a query when it is absent. Hands on archive coordinates only:
// callers read messages through the archive, under their own access rules.

/** One archive entry a query matched. */
export interface SearchHit {
  user: string;
  folder: string;
  uid: number;
  messageId: string;
  /** The Date header as ISO 8601, or null when missing or unreadable. */
  date: string | null;
  from: string;
  subject: string;
  size: number;
}

export interface SearchOptions {
  /** Archives the caller may search: user names, or "all" (auditors). */
  users: readonly string[] | 'all';
  /** Hits per page (1–1000). */
  limit: number;
  /** Where the previous page ended (its nextCursor); absent for the first page. */
  cursor?: string;
}

export interface SearchPage {
  /** Newest first (by Date header, then archive order). */
  hits: SearchHit[];
  /** Pass as `cursor` for the next page; null after the last one. */
  nextCursor: string | null;
  /** Matching entries, counted up to a bound (exact when `totalExact`). */
  total: number;
  totalExact: boolean;
}

/** An IMAP SEARCH text key (RFC 3501 substring semantics, as plugins/imap/message/search.ts scans). */
export interface ImapTextKey {
  /** BODY, TEXT, FROM, TO, CC, BCC, SUBJECT, or HEADER with `header` naming the field. */
  key: 'BODY' | 'TEXT' | 'FROM' | 'TO' | 'CC' | 'BCC' | 'SUBJECT' | 'HEADER';
  header?: string;
  needle: string;
}

/**
 * Which entries of a folder may match an IMAP text key: every entry with uid <= `through` whose UID is
 * not in `uids` certainly does not match; entries after `through` are not indexed yet (scan them).
 */
export interface ImapCandidates {
  through: number;
  uids: ReadonlySet<number>;
}

/** Index status per archive (GET /api/v1/search/status, `postern search status`). */
export interface UserIndexStatus {
  user: string;
  archived: number;
  indexed: number;
  pending: number;
}

export interface SearchIndexStatus {
  /** Messages in the index (one per message, however many archives hold it). */
  documents: number;
  archived: number;
  indexed: number;
  pending: number;
  /** INTERNALDATE of the oldest entry waiting, or null when caught up. */
  oldestPendingAt: string | null;
  failedExtractions: number;
  /** The field tables are due for or in a merge into one segment each (done by the indexer when caught up). */
  merging: boolean;
  users: UserIndexStatus[];
}

export interface SearchService {
  /** Candidates for one IMAP SEARCH key, or null when the index cannot serve it (too short, not indexed). */
  imapCandidates(user: string, folder: string, key: ImapTextKey): Promise<ImapCandidates | null>;
  /** One page of hits. Throws PosternError INVALID_INPUT naming the position of a malformed query. */
  search(query: string, options: SearchOptions): Promise<SearchPage>;
  /** Every hit in the given archives, newest first, page by page (export, holds). */
  all(query: string, users: readonly string[] | 'all', signal?: AbortSignal): AsyncIterable<SearchHit>;
}

declare module './services.ts' {
  interface Services {
    search: SearchService;
  }
}
