// The audit log's contract: what every caller records and what the log promises. The log is a core
// service (never a plugin): configuration and compliance changes are always recorded and cannot be
// switched off. Records are append-only, numbered, and chained by hash (see the implementation).

export type AuditCategory =
  | 'config'      // configuration changes (always recorded)
  | 'compliance'  // retention policies, legal holds, privileges (always recorded)
  | 'admin'       // admin API / CLI actions that change something
  | 'login'       // API and IMAP logins, success and failure
  | 'delete'      // manual deletions and purges
  | 'access';     // message access (IMAP body fetch, CLI get), per configuration

export interface AuditEvent {
  category: AuditCategory;
  /** What happened, as a stable dotted name: "hold.create", "user.update", "imap.login", "message.delete". */
  action: string;
  /** Who did it: a user name, "admin-token", "system" (scheduled jobs), or "unknown". */
  actor: string;
  /** What it was done to (user, hold name, "alice/Inbox/42" …), or "" when nothing specific. */
  target: string;
  outcome: 'success' | 'failure' | 'denied';
  /** Where the actor came from (client address), when known. */
  remote?: string;
  /** Small, JSON-serialisable details (never credentials or message bodies). */
  details?: Record<string, unknown>;
}

export interface AuditRecord extends AuditEvent {
  /** Strictly increasing, no gaps, from 1. */
  seq: number;
  /** ISO time the record was written. */
  at: string;
  /** Hex SHA-256 of the previous record's canonical form ("0"×64 for the first). */
  prev: string;
  /** Hex SHA-256 of this record's canonical form (everything above, prev included). */
  hash: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  records: number;
  /** The first problem found: a record whose hash does not match, a gap, a reordering, a broken link. */
  problem: { seq: number; kind: 'hash-mismatch' | 'missing' | 'reordered' | 'broken-link' | 'unreadable'; detail: string } | null;
}

export interface AuditLog {
  /** Append one event; resolves once it is durable (writes are batched across callers). */
  record(event: AuditEvent): Promise<AuditRecord>;
  /** Records with seq ≥ from (and at ≥ since when given), in order. */
  list(options?: { fromSeq?: number; since?: string; limit?: number }): AsyncIterable<AuditRecord>;
  verify(): Promise<AuditVerifyResult>;
}
