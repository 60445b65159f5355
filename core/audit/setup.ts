// Wires the audit log and integrity verification into the app: opens the chained log over the archive's
// audit role and decorates it as the `audit` service (before plugins load, so they can record), adds the
// admin routes, subscribes to the `access` hook (IMAP reads), registers the `verify` job kind, and writes
// the `config.loaded` record. Hands serve.ts the wrapper the admin server calls after each request.
import type { App } from '../app/app.ts';
import type { ArchiveStore } from '../storage/types.ts';
import type { JobDefinition } from '../jobs/types.ts';
import { PosternError, errorMessage } from '../errors.ts';
import { parseSchedule } from '../jobs/schedule.ts';
import { VerifyService } from '../verify/service.ts';
import { verifyJobKind } from '../verify/job.ts';
import { adminAuditor, type AdminRequestInfo } from './admin-audit.ts';
import { recordConfigLoaded } from './config-event.ts';
import { accessEvent, loginEvent } from './events.ts';
import { ChainedAuditLog } from './log.ts';
import { addAuditRoutes } from './routes.ts';

export interface AuditSetup {
  audit: ChainedAuditLog;
  verify: VerifyService;
  /** For AdminServer: records token failures, changing requests and (per config) raw message reads. */
  onAdminRequest: (info: AdminRequestInfo) => Promise<void>;
  /** Job definitions the audit section adds (audit.verifySchedule → "integrity-verify"). */
  jobs: JobDefinition[];
}

/** Call after archive.open() and before plugins load. */
export async function setupAudit(app: App, archive: ArchiveStore, configFile: string | null): Promise<AuditSetup> {
  const config = app.service('config');
  if (config.audit.verifySchedule !== null) {
    try {
      parseSchedule(config.audit.verifySchedule);
    } catch (err) {
      throw new PosternError('CONFIG_INVALID', `audit.verifySchedule: ${errorMessage(err)}`);
    }
  }
  const metrics = app.service('metrics');
  const log = app.service('log').child({ component: 'audit' });
  const audit = new ChainedAuditLog(archive.audit(), {
    onAppend: (n, seconds) => {
      metrics.auditRecords.inc(n);
      metrics.auditBatchRecords.observe(n);
      metrics.auditAppendDuration.observe(seconds);
    },
    onFailure: (n, err) => {
      metrics.auditFailures.inc(n);
      log.error('Audit records could not be written', { records: n, err: err.message });
    },
  });
  await audit.open();
  app.decorate('audit', audit);
  app.onClose('audit', () => audit.close());

  const health = app.hasService('storageHealth') ? app.service('storageHealth') : null;
  const verify = new VerifyService({ archive, metrics, log: app.service('log').child({ component: 'verify' }), audit, ...(health ? { writeLosses: () => health.losses() } : {}) });
  app.onClose('audit', () => verify.close());
  if (app.hasService('jobs')) app.service('jobs').registerKind(verifyJobKind(verify));
  addAuditRoutes(app.service('adminRoutes'), audit, verify, log);

  const { recordMessageAccess } = config.audit;
  app.hooks.on('access', 'audit', async (a) => {
    // Reads through the auditor namespace (someone else's archive) are always recorded.
    if (!recordMessageAccess && !a.auditor) return;
    await audit.record(accessEvent(a));
  });
  // Logins on read protocols (IMAP) are always recorded, successful or not.
  app.hooks.on('authenticate', 'audit', async (a) => {
    await audit.record(loginEvent(a));
  });

  await recordConfigLoaded(audit, config, configFile);
  const jobs: JobDefinition[] = config.audit.verifySchedule
    ? [{ name: 'integrity-verify', kind: 'verify', schedule: config.audit.verifySchedule, enabled: true, options: {} }]
    : [];
  return { audit, verify, onAdminRequest: adminAuditor(audit, { recordMessageAccess, log }), jobs };
}
