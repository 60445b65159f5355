// Typed services: things that exist exactly once (archive, intake, metrics …) as decorators on the app.
// Plugins add their own services with declaration merging:
//   declare module '../../core/app/services.ts' { interface Services { search: SearchService } }
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { ArchiveStore } from '../storage/types.ts';
import type { Metrics } from '../metrics.ts';
import type { HookRegistry } from './hooks.ts';
import type { AdminRoutes } from '../admin/routes.ts';
import type { CaptureService } from '../intake/capture.ts';
import type { JobService } from '../jobs/service.ts';
import type { AuditLog } from '../audit/types.ts';
import type { StorageHealth } from '../storage/storage-health.ts';
import type { AnalysisPool } from '../pipeline/analysis-pool.ts';
import type { TlsReloader } from '../tls/reload.ts';

export interface Services {
  config: Config;
  log: Logger;
  metrics: Metrics;
  archive: ArchiveStore;
  hooks: HookRegistry;
  /** Admin API routes for features outside the core server (register before the server starts). */
  adminRoutes: AdminRoutes;
  /** Hand a message to the archiving half (proxies, importers); resolves after the durable intake commit. */
  capture: CaptureService;
  /** Job kinds, definitions, schedules and results (register kinds during plugin register). */
  jobs: JobService;
  /** The tamper-evident audit log (core/audit): record compliance, admin, login, deletion and access events. */
  audit: AuditLog;
  /** Listening ports by name (smtp, relay, pop3, imap …): modules register theirs; shown by status and the ready log line. */
  listeners: ListenerPorts;
  /** Failures, reopens and lost writes of the embedded databases (verify and status report them). */
  storageHealth: StorageHealth;
  /** The analysis workers: plugins run their analyzer on a stored message under the archiving budget (analyzeWith). */
  analysis: Pick<AnalysisPool, 'analyzeWith'>;
  /** TLS listeners register their certificate files here; SIGHUP re-reads every one (core/tls/reload.ts). */
  tlsReload: TlsReloader;
}

export interface ListenerPorts {
  /** Record a listener's bound port (null = configured off). */
  set(name: string, port: number | null): void;
  all(): Record<string, number | null>;
}
