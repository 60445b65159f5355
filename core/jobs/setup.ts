// Wires the jobs service into the app: the `jobs` service (decorated before plugins load, so they
// can registerKind) backed by the archive's job store, and its admin API routes.
import type { App } from '../app/app.ts';
import type { ArchiveStore } from '../storage/types.ts';
import { addJobRoutes } from './routes.ts';
import { SecretBox } from './secrets.ts';
import { JobService } from './service.ts';

export function setupJobs(app: App, archive: ArchiveStore, claimSlot?: (job: string, slot: string) => Promise<boolean>): JobService {
  const config = app.service('config');
  const jobs = new JobService({
    store: archive.jobs(), log: app.service('log').child({ component: 'jobs' }), metrics: app.service('metrics'),
    secrets: SecretBox.inDataDir(config.dataDir),
    ...(claimSlot ? { claimSlot } : {}),
  });
  app.decorate('jobs', jobs);
  addJobRoutes(app.service('adminRoutes'), jobs);
  return jobs;
}
