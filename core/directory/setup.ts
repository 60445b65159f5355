// Wires the directory into the app: the shared password check (`credentials` service: stored hashes or
// LDAP binds per auth.mode), the "directory-sync" job kind with its configuration job (directory.ldap
// .schedule; on demand when null), and the rename route. Call after the audit and jobs services exist
// and before setupCompliance and the plugins (they take the password check from here).
import type { App } from '../app/app.ts';
import type { AuditLog } from '../audit/types.ts';
import { Credentials } from '../auth/credentials.ts';
import { PosternError, errorMessage } from '../errors.ts';
import { parseSchedule } from '../jobs/schedule.ts';
import { addDirectoryRoutes } from './routes.ts';
import { DIRECTORY_SYNC_JOB, DIRECTORY_SYNC_KIND, directorySyncKind } from './sync-job.ts';

export function setupDirectory(app: App): void {
  const config = app.service('config');
  const ldap = config.directory.ldap;
  if (config.auth.mode !== 'local' && !ldap) {
    throw new PosternError('CONFIG_INVALID', `auth.mode "${config.auth.mode}" signs directory users in by an LDAP bind: configure directory.ldap`);
  }
  if (ldap?.schedule) {
    try {
      parseSchedule(ldap.schedule);
    } catch (err) {
      throw new PosternError('CONFIG_INVALID', `directory.ldap.schedule: ${errorMessage(err)}`);
    }
  }
  app.decorate('credentials', new Credentials(config.auth.mode, ldap));
  const archive = app.service('archive');
  const log = app.service('log').child({ component: 'directory' });
  const audit = (): AuditLog | null => (app.hasService('audit') ? app.service('audit') : null);
  if (app.hasService('jobs')) {
    const jobs = app.service('jobs');
    jobs.registerKind(directorySyncKind({ settings: ldap, archive, hooks: app.hooks, log, audit }));
    if (ldap) jobs.defineConfigJob({ name: DIRECTORY_SYNC_JOB, kind: DIRECTORY_SYNC_KIND, schedule: ldap.schedule, enabled: true, options: {} });
  }
  addDirectoryRoutes(app.service('adminRoutes'), { archive, hooks: app.hooks, log, audit });
}
