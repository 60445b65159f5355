// Wires backups into the running server: the service over the archive and intake engines, its admin
// routes, metrics, and a clean stop (a backup in progress finishes before the databases close).
import type { App } from '../app/app.ts';
import type { Intake } from '../intake/intake.ts';
import type { KvEngine } from '../storage/kv.ts';
import { addBackupRoutes } from './routes.ts';
import { BackupService } from './service.ts';

export function setupBackup(app: App, engines: { archive: KvEngine; intake: KvEngine; intakeStore: Intake }, version: string): BackupService {
  const config = app.service('config');
  const metrics = app.service('metrics');
  const service = new BackupService({
    source: {
      archive: engines.archive, intake: engines.intake, spoolPath: (id) => engines.intakeStore.spoolPath(id),
      dataDir: config.dataDir, encryptionKeyFile: config.storage.encryptionKeyFile || null, version,
    },
    log: app.service('log').child({ component: 'backup' }),
    audit: () => (app.hasService('audit') ? app.service('audit') : null),
    onFinish: (ok, seconds, manifest) => {
      metrics.backups.inc({ outcome: ok ? 'success' : 'failure' });
      metrics.backupDuration.set(seconds);
      if (ok && manifest) {
        metrics.backupLastSuccess.set(Date.now() / 1000);
        metrics.backupBytesWritten.set(manifest.counts.bytesWritten);
      }
    },
  });
  addBackupRoutes(app.service('adminRoutes'), service);
  app.onClose('backup', () => service.stop());
  return service;
}
