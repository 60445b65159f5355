// Wires backups into the running server: the service over the archive and intake engines, its admin
// routes, metrics, and a clean stop (a backup in progress is stopped before the databases close).
// At the first start of a restored data directory, the restore is recorded in the audit log.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { App } from '../app/app.ts';
import { errorMessage } from '../errors.ts';
import type { Intake } from '../intake/intake.ts';
import type { KvEngine } from '../storage/kv.ts';
import { addBackupRoutes } from './routes.ts';
import { BackupService } from './service.ts';

export async function setupBackup(app: App, engines: { archive: KvEngine; intake: KvEngine; intakeStore: Intake; refuse?: string }, version: string): Promise<BackupService> {
  const config = app.service('config');
  const metrics = app.service('metrics');
  const service = new BackupService({
    source: {
      archive: engines.archive, intake: engines.intake, spoolPath: (id) => engines.intakeStore.spoolPath(id),
      dataDir: config.dataDir, encryptionKeyFile: config.storage.encryptionKeyFile || null, version,
    },
    log: app.service('log').child({ component: 'backup' }),
    ...(engines.refuse ? { refuse: engines.refuse } : {}),
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
  await recordRestore(app, config.dataDir);
  return service;
}

/** restored-from.json (written by `postern restore`) becomes an audit record once, then is marked recorded. */
async function recordRestore(app: App, dataDir: string): Promise<void> {
  const file = join(dataDir, 'restored-from.json');
  if (!existsSync(file) || !app.hasService('audit')) return;
  const log = app.service('log').child({ component: 'backup' });
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as { repository?: unknown; snapshot?: unknown; recordedSeq?: unknown };
    if (info.recordedSeq !== undefined) return;
    const record = await app.service('audit').record({
      category: 'admin', action: 'backup.restore', actor: 'system', target: String(info.repository), outcome: 'success', details: info as Record<string, unknown>,
    });
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify({ ...info, recordedSeq: record.seq }, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, file);
    log.info('This data directory was restored from a backup; recorded in the audit log', { repository: info.repository, snapshot: info.snapshot, auditSeq: record.seq });
  } catch (err) {
    log.error('The restore of this data directory could not be recorded in the audit log', { err: errorMessage(err) });
  }
}
