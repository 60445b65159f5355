// Every Prometheus metric Postern exposes, registered in one place. Names are postern_*, units in the
// name, labels of low cardinality only (listener, stage, reason; never a user or an address).
import { statfsSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** dataDir: the data directory whose filesystem size and free space are exported (none when omitted). */
export function createMetrics(opts: { dataDir?: string } = {}) {
  const registry = new Registry();
  const r = [registry];
  /** Where the intake's oldest waiting entry is read from at scrape time (set by serve). */
  const intakeOldest: { source: (() => Promise<number | null>) | null } = { source: null };
  const m = {
    registry,
    connections: new Counter({ name: 'postern_connections_total', help: 'Connections accepted by a listener', labelNames: ['listener'], registers: r }),
    connectionsActive: new Gauge({ name: 'postern_connections_active', help: 'Connections currently open', labelNames: ['listener'], registers: r }),
    messagesAccepted: new Counter({ name: 'postern_messages_accepted_total', help: 'Messages acknowledged after a durable intake commit', labelNames: ['listener'], registers: r }),
    messagesRejected: new Counter({ name: 'postern_messages_rejected_total', help: 'Transactions answered with a permanent failure', labelNames: ['listener', 'reason'], registers: r }),
    messagesTempfailed: new Counter({ name: 'postern_messages_tempfailed_total', help: 'Transactions answered with a temporary failure', labelNames: ['listener', 'reason'], registers: r }),
    receivedBytes: new Counter({ name: 'postern_received_bytes_total', help: 'Message bytes acknowledged', labelNames: ['listener'], registers: r }),
    bareLineEndings: new Counter({ name: 'postern_bare_line_ending_messages_total', help: 'Messages that contained a bare CR or LF', labelNames: ['listener'], registers: r }),
    intakeDepth: new Gauge({ name: 'postern_intake_depth_messages', help: 'Messages in the intake not yet archived (active + deferred)', registers: r }),
    intakeDeferred: new Gauge({ name: 'postern_intake_deferred_messages', help: 'Messages waiting for a retry after a temporary failure', registers: r }),
    intakeOldestAge: new Gauge({
      name: 'postern_intake_oldest_age_seconds', help: 'Age of the oldest message in the intake waiting to be archived (active or deferred; 0 when none): rises while the archive storage is unreachable', registers: r,
      // An intake that cannot be read (closed, failing) keeps the last value: a scrape never fails for it.
      async collect() {
        const at = intakeOldest.source ? await intakeOldest.source().catch(() => undefined) : null;
        if (at !== undefined) this.set(at === null ? 0 : Math.max(0, (Date.now() - at) / 1000));
      },
    }),
    /** Sets how postern_intake_oldest_age_seconds finds the oldest waiting entry's receipt time (epoch ms). */
    setIntakeOldestSource(fn: () => Promise<number | null>): void { intakeOldest.source = fn; },
    intakeCorrupt: new Gauge({ name: 'postern_intake_corrupt_messages', help: 'Messages quarantined because they could not be processed', registers: r }),
    intakeQuarantined: new Gauge({ name: 'postern_intake_quarantined_messages', help: 'Intake entries quarantined (kept, listed by postern status) after exceeding their processing budget, failing for good or being in flight at two unclean stops', registers: r }),
    storageWriteFailures: new Counter({ name: 'postern_storage_write_failures_total', help: 'Database writes that failed (full disk, I/O error); writes are refused until the database is reopened', labelNames: ['store'], registers: r }),
    storageRecoveries: new Counter({ name: 'postern_storage_recoveries_total', help: 'Reopens of a database after a failed write, by outcome', labelNames: ['store', 'outcome'], registers: r }),
    storageWriting: new Gauge({ name: 'postern_storage_writable', help: '1 while a database accepts writes, 0 after a failed write until it has been reopened', labelNames: ['store'], registers: r }),
    storageLostWrites: new Gauge({ name: 'postern_storage_lost_write_batches', help: 'Synced write batches the write ledger saw durable that a database no longer holds (must be 0)', labelNames: ['store'], registers: r }),
    budgetExceeded: new Counter({ name: 'postern_archiving_budget_exceeded_total', help: 'Messages whose analysis exceeded its time or memory budget (archived raw-only, flagged, quarantined)', labelNames: ['reason'], registers: r }),
    commitDuration: new Histogram({
      name: 'postern_commit_duration_seconds', help: 'Durable (fsync) commit latency', labelNames: ['store'], registers: r,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    groupCommitSize: new Histogram({
      name: 'postern_group_commit_callers', help: 'Callers sharing one synced batch', labelNames: ['store'], registers: r,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    }),
    archiveLag: new Histogram({
      name: 'postern_archive_lag_seconds', help: 'Time from the durable intake commit to the archive commit', registers: r,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 3600],
    }),
    archiveCommits: new Counter({ name: 'postern_archive_commits_total', help: 'Messages committed to the archive', registers: r }),
    archiveEntries: new Counter({ name: 'postern_archive_entries_total', help: 'Archive entries (message in a user folder) created', registers: r }),
    unroutedMessages: new Counter({ name: 'postern_unrouted_messages_total', help: 'Messages that matched no known user and went to the unmatched archive', registers: r }),
    unknownAddresses: new Counter({ name: 'postern_unknown_addresses_total', help: 'Participant addresses that matched no user', labelNames: ['role'], registers: r }),
    routingOutcomes: new Counter({ name: 'postern_routing_outcomes_total', help: 'Archived messages by routing outcome (routed to users, or unassigned)', labelNames: ['outcome', 'source'], registers: r }),
    journalReports: new Counter({ name: 'postern_journal_reports_total', help: 'Journal reports unwrapped, by kind and envelope style', labelNames: ['kind', 'style'], registers: r }),
    journalMalformed: new Counter({ name: 'postern_journal_reports_malformed_total', help: 'Journal reports archived with problems (flagged)', registers: r }),
    pipelineFailures: new Counter({ name: 'postern_pipeline_failures_total', help: 'Archiving attempts that failed', labelNames: ['outcome'], registers: r }),
    hookFailures: new Counter({ name: 'postern_hook_failures_total', help: 'Plugin hook calls that threw or timed out', labelNames: ['hook', 'kind'], registers: r }),
    imapCommands: new Counter({ name: 'postern_imap_commands_total', help: 'IMAP commands by name and tagged status (OK, NO, BAD)', labelNames: ['command', 'status'], registers: r }),
    imapLogins: new Counter({ name: 'postern_imap_logins_total', help: 'IMAP login attempts by outcome', labelNames: ['outcome'], registers: r }),
    imapFetchedBytes: new Counter({ name: 'postern_imap_fetched_bytes_total', help: 'Message body bytes sent by IMAP FETCH', registers: r }),
    imapIdleSessions: new Gauge({ name: 'postern_imap_idle_sessions', help: 'IMAP sessions currently in IDLE', registers: r }),
    imapCommandDuration: new Histogram({
      name: 'postern_imap_command_duration_seconds', help: 'IMAP command latency from the complete command to its tagged reply (IDLE excluded)', labelNames: ['command'], registers: r,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    }),
    searchPending: new Gauge({ name: 'postern_search_pending_messages', help: 'Archive entries not yet in the full-text index (search plugin)', registers: r }),
    searchLag: new Gauge({ name: 'postern_search_index_lag_seconds', help: 'Age of the oldest archive entry not yet in the full-text index (0 when caught up)', registers: r }),
    searchExtractionFailures: new Counter({ name: 'postern_search_extraction_failures_total', help: 'Messages whose text could not be extracted for the index (indexed by headers and envelope only)', registers: r }),
    searchIndexed: new Counter({ name: 'postern_search_indexed_messages_total', help: 'Messages added to the full-text index', registers: r }),
    jobRuns: new Counter({ name: 'postern_job_runs_total', help: 'Job runs finished, by job kind and outcome', labelNames: ['kind', 'outcome'], registers: r }),
    jobMessages: new Counter({ name: 'postern_job_messages_total', help: 'Messages handled by job runs (found, archived, duplicates, failed)', labelNames: ['kind', 'result'], registers: r }),
    importMailboxes: new Counter({ name: 'postern_import_mailboxes_total', help: 'Mailboxes of batch imports finished, by outcome (succeeded, completed-with-errors, failed)', labelNames: ['outcome'], registers: r }),
    pop3Sessions: new Counter({ name: 'postern_pop3_sessions_total', help: 'POP3 proxy sessions ended, by outcome', labelNames: ['outcome'], registers: r }),
    pop3Retrieved: new Counter({ name: 'postern_pop3_retrieved_total', help: 'Messages retrieved through the POP3 proxy and durably captured', registers: r }),
    pop3CapturedBytes: new Counter({ name: 'postern_pop3_captured_bytes_total', help: 'Dot-unstuffed message bytes captured by the POP3 proxy', registers: r }),
    pop3CaptureFailures: new Counter({ name: 'postern_pop3_capture_failures_total', help: 'Retrievals whose capture failed (the client never got the end of the message)', registers: r }),
    pop3UpstreamErrors: new Counter({ name: 'postern_pop3_upstream_errors_total', help: 'Upstream POP3 failures, by kind', labelNames: ['kind'], registers: r }),
    relayTransactions: new Counter({ name: 'postern_relay_transactions_total', help: 'Relay proxy transactions by outcome (delivered, rejected, upstream_unavailable, intake_failed)', labelNames: ['outcome'], registers: r }),
    relayUpstreamDuration: new Histogram({
      name: 'postern_relay_upstream_duration_seconds', help: 'Relay proxy upstream latency by phase (connect, command, data)', labelNames: ['phase'], registers: r,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    }),
    adminRequests: new Counter({ name: 'postern_admin_requests_total', help: 'Admin API requests by status class', labelNames: ['status'], registers: r }),
    signIns: new Counter({ name: 'postern_sign_ins_total', help: 'Password sign-in attempts (imap, api) by outcome: ok, failed, or throttled (refused unchecked)', labelNames: ['via', 'outcome'], registers: r }),
    auditRecords: new Counter({ name: 'postern_audit_records_total', help: 'Audit records written durably', registers: r }),
    auditAppendDuration: new Histogram({
      name: 'postern_audit_append_duration_seconds', help: 'Time to hash and durably append one batch of audit records', registers: r,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    }),
    auditBatchRecords: new Histogram({ name: 'postern_audit_batch_records', help: 'Audit records sharing one synced append', registers: r, buckets: [1, 2, 4, 8, 16, 64, 256, 1000] }),
    auditFailures: new Counter({ name: 'postern_audit_failures_total', help: 'Audit records that could not be written', registers: r }),
    verifyProblems: new Gauge({ name: 'postern_verify_problems', help: 'Problems found by the last integrity verification, by kind', labelNames: ['kind'], registers: r }),
    verifyLastRun: new Gauge({ name: 'postern_verify_last_run_timestamp_seconds', help: 'When the last integrity verification finished (0: never)', registers: r }),
    verifyDuration: new Gauge({ name: 'postern_verify_last_duration_seconds', help: 'How long the last integrity verification ran', registers: r }),
    verifyCheckedBytes: new Gauge({ name: 'postern_verify_last_checked_bytes', help: 'Blob bytes re-read and re-hashed by the last integrity verification', registers: r }),
    backups: new Counter({ name: 'postern_backups_total', help: 'Backups (`postern backup`) finished, by outcome', labelNames: ['outcome'], registers: r }),
    backupLastSuccess: new Gauge({ name: 'postern_backup_last_success_timestamp_seconds', help: 'When the last successful backup finished (0: none since start)', registers: r }),
    backupDuration: new Gauge({ name: 'postern_backup_last_duration_seconds', help: 'How long the last backup ran', registers: r }),
    backupBytesWritten: new Gauge({ name: 'postern_backup_last_written_bytes', help: 'Bytes the last successful backup wrote (incremental: new chunks and the metadata)', registers: r }),
    purgeDeleted: new Counter({ name: 'postern_purge_deleted_total', help: 'Archive entries deleted by the retention purge', registers: r }),
    purgeSkippedHeld: new Counter({ name: 'postern_purge_skipped_held_total', help: 'Entries past their maximum retention that a legal hold kept', registers: r }),
    purgeBlobsRemoved: new Counter({ name: 'postern_purge_blobs_removed_total', help: 'Blobs deleted because their reference count reached zero (purge and manual deletion)', registers: r }),
    entriesDeleted: new Counter({ name: 'postern_entries_deleted_total', help: 'Archive entries deleted manually (API/CLI)', registers: r }),
    deletionsRefused: new Counter({ name: 'postern_deletions_refused_total', help: 'Deletion requests refused by a hold, retention or a beforeDelete veto', labelNames: ['reason'], registers: r }),
    residentMemory: new Gauge({
      name: 'postern_process_resident_memory_bytes', help: 'Resident set size of the Postern process', registers: r,
      collect() { this.set(process.memoryUsage.rss()); },
    }),
    unhandledRejections: new Counter({ name: 'postern_unhandled_rejections_total', help: 'Promise rejections nobody handled (logged; the process keeps running)', registers: r }),
    uncaughtExceptions: new Counter({ name: 'postern_uncaught_exceptions_total', help: 'Exceptions nobody caught (logged; the process then stops gracefully)', registers: r }),
    startTime: new Gauge({ name: 'postern_process_start_time_seconds', help: 'Start time of the process since the epoch', registers: r }),
    dataDirSize: new Gauge({
      name: 'postern_data_dir_filesystem_size_bytes', help: 'Size of the filesystem holding the data directory', registers: opts.dataDir ? r : [],
      collect() { const fs = dataDirFs(opts.dataDir); if (fs) this.set(fs.size); },
    }),
    dataDirFree: new Gauge({
      name: 'postern_data_dir_filesystem_free_bytes', help: 'Space available to Postern on the filesystem holding the data directory', registers: opts.dataDir ? r : [],
      collect() { const fs = dataDirFs(opts.dataDir); if (fs) this.set(fs.free); },
    }),
  };
  m.startTime.set(Math.floor(Date.now() / 1000));
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Size and space available to unprivileged writers of the filesystem holding `dir`; null when it cannot be read. */
function dataDirFs(dir: string | undefined): { size: number; free: number } | null {
  if (!dir) return null;
  try {
    const s = statfsSync(dir);
    return { size: s.blocks * s.bsize, free: s.bavail * s.bsize };
  } catch {
    return null;
  }
}
