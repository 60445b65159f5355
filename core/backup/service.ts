// The running server's backup: one at a time, in the background, its progress and outcome kept for
// `GET /api/v1/backups/current` (the CLI polls it), logged, counted, and recorded in the audit log.
// Only the admin token may start one: it writes to a path on the server's machine.
import type { AuditLog } from '../audit/types.ts';
import { PosternError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { checkBackupTarget, createBackup, type BackupProgress, type BackupSource } from './create.ts';
import type { BackupManifest } from './manifest.ts';

export interface BackupStatus {
  state: 'running' | 'done' | 'failed';
  output: string;
  startedAt: string;
  finishedAt: string | null;
  by: string;
  progress: BackupProgress;
  manifest: BackupManifest | null;
  error: string | null;
}

export interface BackupServiceDeps {
  source: BackupSource;
  log: Logger;
  audit: () => AuditLog | null;
  /** Why this archive cannot be backed up by `postern backup` (another backend's own tools do it), if so. */
  refuse?: string;
  /** Called when a backup ends (metrics): outcome and seconds. */
  onFinish?: (ok: boolean, seconds: number, manifest: BackupManifest | null) => void;
}

export class BackupService {
  private current: BackupStatus | null = null;
  private running: Promise<void> | null = null;
  private readonly abort = new AbortController();

  constructor(private readonly deps: BackupServiceDeps) {}

  status(): BackupStatus | null {
    return this.current ? { ...this.current, progress: { ...this.current.progress } } : null;
  }

  start(output: string, by: string): BackupStatus {
    if (this.deps.refuse) throw new PosternError('FORBIDDEN', this.deps.refuse);
    if (this.running) throw new PosternError('CONFLICT', `A backup to "${this.current?.output ?? ''}" is running; wait for it (GET /api/v1/backups/current)`);
    const repo = checkBackupTarget(output, this.deps.source.dataDir);
    const started = performance.now();
    const status: BackupStatus = {
      state: 'running', output: repo, startedAt: new Date().toISOString(), finishedAt: null, by, manifest: null, error: null,
      progress: { phase: 'intake', intakeEntries: 0, archiveKeys: 0, chunksCopied: 0, chunksReused: 0, bytesWritten: 0 },
    };
    this.current = status;
    this.deps.log.info('Backup started', { output: repo, by });
    this.running = createBackup(this.deps.source, repo, (p) => {
      status.progress = p;
    }, this.abort.signal).then(async (manifest) => {
      status.state = 'done';
      status.manifest = manifest;
      status.finishedAt = new Date().toISOString();
      const seconds = (performance.now() - started) / 1000;
      this.deps.log.info('Backup finished', {
        output: repo, snapshot: manifest.id, parent: manifest.parent, messages: manifest.counts.messages, chunksCopied: manifest.counts.chunksCopied,
        chunksReused: manifest.counts.chunksReused, bytesWritten: manifest.counts.bytesWritten, seconds: Number(seconds.toFixed(1)),
      });
      this.deps.onFinish?.(true, seconds, manifest);
      await this.audit(by, 'success', { output: repo, snapshot: manifest.id, parent: manifest.parent, messages: manifest.counts.messages, auditHead: manifest.auditHead });
    }, async (err: unknown) => {
      status.state = 'failed';
      status.error = errorMessage(err);
      status.finishedAt = new Date().toISOString();
      this.deps.log.error('Backup failed; nothing of it is used by a restore', { output: repo, err: status.error });
      this.deps.onFinish?.(false, (performance.now() - started) / 1000, null);
      await this.audit(by, 'failure', { output: repo, error: status.error });
    }).finally(() => {
      this.running = null;
    });
    return this.status() as BackupStatus;
  }

  /** Stop a backup in progress (shutdown): it is discarded, the repository keeps its earlier snapshots. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async audit(actor: string, outcome: 'success' | 'failure', details: Record<string, unknown>): Promise<void> {
    try {
      await this.deps.audit()?.record({ category: 'admin', action: 'backup.create', actor, target: String(details.output), outcome, details });
    } catch (err) {
      this.deps.log.error('Audit record of a backup failed', { err: errorMessage(err) });
    }
  }
}
