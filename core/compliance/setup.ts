// Wires compliance into the app: the `compliance` service, its admin routes, the `purge` job kind (when
// the jobs service exists) and the job definition from compliance.purgeSchedule. The archive enforces
// holds and retention on its own; this adds actors, audit records, the beforeDelete hook and the API.
import type { App } from '../app/app.ts';
import type { JobDefinition } from '../jobs/types.ts';
import type { AuditLog } from '../audit/types.ts';
import type { Config } from '../config/schema.ts';
import type { PolicyMatch, RetentionPolicy } from './types.ts';
import { createApiAccess, type ApiAccess } from './access.ts';
import { addComplianceRoutes } from './routes.ts';
import { ComplianceService } from './service.ts';
import { purgeJobKind } from './purge-job.ts';
import { defined } from '../admin/http.ts';

declare module '../app/services.ts' {
  interface Services {
    /** Retention policies, legal holds, deletion and purge with audit records (core/compliance). */
    compliance: ComplianceService;
  }
}

export interface ComplianceSetup {
  service: ComplianceService;
  /** For AdminServer: Basic-auth users, privilege checks and preview blocking. */
  access: ApiAccess;
  /** The scheduled purge, when compliance.purgeSchedule is set. */
  jobs: JobDefinition[];
}

/** Call after the archive, audit and jobs services are decorated, before plugins load. */
export function setupCompliance(app: App): ComplianceSetup {
  const archive = app.service('archive');
  const config = app.service('config').compliance;
  const log = app.service('log').child({ component: 'compliance' });
  const audit = (): AuditLog | null => (app.hasService('audit') ? app.service('audit') : null);
  const service = new ComplianceService({ archive, hooks: app.hooks, log, metrics: app.service('metrics'), audit });
  app.decorate('compliance', service);
  if (app.hasService('jobs')) app.service('jobs').registerKind(purgeJobKind(service));
  addComplianceRoutes(app.service('adminRoutes'), archive, service);
  const access = createApiAccess({
    archive, previewBlocking: config.previewBlocking, log, audit, metrics: app.service('metrics'),
    selfChecking: (area) => app.service('adminRoutes').isReserved(area),
    ...(app.hasService('signIn') ? { throttle: app.service('signIn') } : {}),
    ...(app.hasService('credentials') ? { credentials: app.service('credentials') } : {}),
  });
  const jobs: JobDefinition[] = config.purgeSchedule
    ? [{ name: 'retention-purge', kind: 'purge', schedule: config.purgeSchedule, enabled: true, options: { dryRun: false, batchSize: config.purgeBatchSize } }]
    : [];
  return { service, access, jobs };
}

/** The configuration's policies as the store takes them (source "config", undefined members dropped). */
export function configuredPolicies(config: Config['compliance']): RetentionPolicy[] {
  return config.policies.map((p) => ({
    name: p.name, minimum: p.minimum, source: 'config' as const, ...(p.maximum !== undefined ? { maximum: p.maximum } : {}),
    match: defined(p.match) as PolicyMatch,
  }));
}
