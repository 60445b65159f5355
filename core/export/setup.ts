// Wires exports into the app: the `exports` service (files under <dataDir>/exports), the `export` job
// kind and the admin routes. Call after the audit, jobs and compliance setup and before plugins load
// (the `search` service a query export needs is looked up at call time); start() after the jobs start.
import type { App } from '../app/app.ts';
import { addExportRoutes } from './routes.ts';
import { ExportService } from './service.ts';
import { exportJobKind } from './job.ts';

declare module '../app/services.ts' {
  interface Services {
    /** Verifiable exports of archived mail (core/export). */
    exports: ExportService;
  }
}

export function setupExport(app: App): ExportService {
  const config = app.service('config');
  const archive = app.service('archive');
  const jobs = app.service('jobs');
  const service = new ExportService({
    dataDir: config.dataDir, archive, jobs, log: app.service('log').child({ component: 'export' }),
    audit: () => (app.hasService('audit') ? app.service('audit') : null),
    previewBlocking: config.compliance.previewBlocking,
    settings: config.exports,
    selection: {
      archive,
      search: () => (app.hasService('search') ? app.service('search') : null),
      addressRules: { localPartCase: config.routing.localPartCase, subaddressSeparator: config.routing.subaddressSeparator },
      folders: { received: config.routing.receivedFolder, sent: config.routing.sentFolder },
    },
  });
  app.decorate('exports', service);
  jobs.registerKind(exportJobKind(service));
  addExportRoutes(app.service('adminRoutes'), service);
  app.onClose('export', () => service.stop());
  return service;
}
