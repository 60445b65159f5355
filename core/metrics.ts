// Every Prometheus metric Postern exposes, registered in one place. Names are postern_*, units in the
// name, labels of low cardinality only (listener, stage, reason; never a user or an address).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  const r = [registry];
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
    intakeCorrupt: new Gauge({ name: 'postern_intake_corrupt_messages', help: 'Messages quarantined because they could not be processed', registers: r }),
    commitDuration: new Histogram({
      name: 'postern_commit_duration_seconds', help: 'Durable (fsync) commit latency', labelNames: ['store'], registers: r,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    groupCommitSize: new Histogram({
      name: 'postern_group_commit_callers', help: 'Callers sharing one synced batch', labelNames: ['store'], registers: r,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
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
    adminRequests: new Counter({ name: 'postern_admin_requests_total', help: 'Admin API requests by status class', labelNames: ['status'], registers: r }),
    residentMemory: new Gauge({
      name: 'postern_process_resident_memory_bytes', help: 'Resident set size of the Postern process', registers: r,
      collect() { this.set(process.memoryUsage.rss()); },
    }),
    startTime: new Gauge({ name: 'postern_process_start_time_seconds', help: 'Start time of the process since the epoch', registers: r }),
  };
  m.startTime.set(Math.floor(Date.now() / 1000));
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
