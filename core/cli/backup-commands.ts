// Backup and restore of the embedded archive:
//   postern backup --output DIR [--json]            a snapshot of the running server (admin API), incremental
//                                                   when DIR already holds one; waits and prints the summary
//   postern backup verify DIR [--snapshot ID] [--json]  checks a backup here, without the server; exit 1 on damage
//   postern backup list DIR [--json]                the complete snapshots of a backup
//   postern backup prune DIR --keep N               all but the newest N snapshots, and packs none uses
//   postern restore DIR --data-dir NEW [--snapshot ID]  into a new, empty data directory (no server on it)
// The backup itself runs inside the server (it alone may open the databases) and writes DIR on the
// server's machine; verify, list and restore read DIR here.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { BackupStatus } from '../backup/service.ts';
import { chooseSnapshot, listSnapshots, readManifest } from '../backup/manifest.ts';
import { AdminClientError, callJson, type AdminTarget } from './client.ts';
import { count } from './text.ts';

const POLL_MS = 500;
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export function addBackupCommands(program: Command, target: () => AdminTarget): void {
  const backup = program.command('backup')
    .description('a consistent, incremental copy of the running server\'s archive into DIR (also `backup verify`, `backup list`; restore with `postern restore`)')
    .option('-o, --output <dir>', 'the backup directory (new, empty, or an earlier backup: then only new blob chunks are written)')
    .option('--json', 'print the manifest as JSON')
    .action(async (o: { output?: string; json?: boolean }) => {
      if (!o.output) throw new AdminClientError('Give the backup directory: postern backup --output DIR', null);
      const t = target();
      const output = resolve(o.output);
      const started = await callJson<BackupStatus>(t, 'POST', '/api/v1/backups', { output });
      let status = started;
      const tty = process.stderr.isTTY;
      while (status.state === 'running') {
        await new Promise((r) => setTimeout(r, POLL_MS));
        status = await callJson<BackupStatus>(t, 'GET', '/api/v1/backups/current');
        if (status.startedAt !== started.startedAt || status.output !== started.output) {
          throw new AdminClientError('Another backup replaced this one in the server\'s status (the server restarted?); check the server log', null);
        }
        if (tty) {
          const p = status.progress;
          process.stderr.write(`\r${p.phase}: ${count(p.archiveKeys, 'record')}, ${count(p.chunksCopied, 'chunk')} copied, ${p.chunksReused} reused, ${mib(p.bytesWritten)}   `);
        }
      }
      if (tty) process.stderr.write('\n');
      if (status.state === 'failed' || !status.manifest) throw new AdminClientError(`Backup failed: ${status.error ?? 'unknown error'} (nothing of it is used by a restore)`, null);
      const m = status.manifest;
      if (o.json) return void process.stdout.write(JSON.stringify(m, null, 2) + '\n');
      process.stdout.write([
        `Snapshot ${m.id} in ${status.output}${m.parent ? ` (incremental after ${m.parent})` : ' (full)'}`,
        `  ${count(m.counts.users, 'user')}, ${count(m.counts.messages, 'message')}, ${count(m.counts.entries, 'archive entry', 'archive entries')}, ${count(m.counts.auditRecords, 'audit record')}, ${count(m.counts.intakeEntries, 'intake entry', 'intake entries')}`,
        `  ${count(m.counts.chunks, 'blob chunk')}: ${m.counts.chunksCopied} copied, ${m.counts.chunksReused} already in the backup; ${mib(m.counts.bytesWritten)} written`,
        ...(m.encryptionKeyFile ? [`  Blobs are encrypted with "${m.encryptionKeyFile}": keep a copy of that key apart from the backup; a restore is unreadable without it`] : []),
      ].join('\n') + '\n');
    });

  backup.command('verify')
    .description('check every file, checksum and chunk of a backup (here, without the server); exit 1 when anything is damaged')
    .argument('<dir>', 'the backup directory')
    .option('--snapshot <id>', 'only this snapshot (default: all)')
    .option('--json', 'print the report as JSON')
    .action(async (dir: string, o: { snapshot?: string; json?: boolean }) => {
      const { verifyBackup } = await import('../backup/verify.ts');
      const report = await verifyBackup(resolve(dir), o.snapshot);
      if (o.json) process.stdout.write(JSON.stringify({ ok: report.ok, snapshots: report.snapshots.map((s) => ({ id: s.id, ok: s.ok, problems: s.problems })) }, null, 2) + '\n');
      else {
        for (const s of report.snapshots) {
          process.stdout.write(`${s.id}\t${s.ok ? 'ok' : 'DAMAGED'}${s.manifest ? `\t${count(s.manifest.counts.messages, 'message')}` : ''}\n`);
          for (const p of s.problems) process.stdout.write(`  ${p}\n`);
        }
        process.stderr.write(report.ok ? `${count(report.snapshots.length, 'snapshot')} verified, no problems\n` : 'The backup is damaged: a damaged snapshot cannot be restored\n');
      }
      if (!report.ok) process.exitCode = 1;
    });

  backup.command('list')
    .description('the complete snapshots of a backup, oldest first')
    .argument('<dir>', 'the backup directory')
    .option('--json', 'print JSON')
    .action((dir: string, o: { json?: boolean }) => {
      const repo = resolve(dir);
      chooseSnapshot(repo, undefined);
      const manifests = listSnapshots(repo).map((id) => readManifest(repo, id));
      if (o.json) return void process.stdout.write(JSON.stringify(manifests.map((m) => ({ id: m.id, parent: m.parent, startedAt: m.startedAt, counts: m.counts })), null, 2) + '\n');
      for (const m of manifests) process.stdout.write(`${m.id}\t${m.startedAt}\t${count(m.counts.messages, 'message')}\t${mib(m.counts.bytesWritten)} written\t${m.parent ? 'incremental' : 'full'}\n`);
    });

  backup.command('prune')
    .description('remove all but the newest N snapshots, and the blob packs no remaining snapshot uses')
    .argument('<dir>', 'the backup directory')
    .requiredOption('--keep <n>', 'how many of the newest snapshots to keep (at least 1)')
    .action(async (dir: string, o: { keep: string }) => {
      if (!/^\d{1,6}$/.test(o.keep)) throw new AdminClientError('--keep must be a whole number of at least 1', null);
      const { pruneBackup } = await import('../backup/prune.ts');
      const r = await pruneBackup(resolve(dir), Number(o.keep));
      process.stdout.write(`Removed ${count(r.removedSnapshots.length, 'snapshot')} and ${count(r.removedPacks, 'pack')} (${mib(r.freedBytes)}); kept ${r.kept.join(', ')}\n`);
    });

  program.command('restore')
    .description('restore a backup into a new, empty data directory (stop nothing: no server may run on it); refuses a non-empty one')
    .argument('<dir>', 'the backup directory')
    .requiredOption('--data-dir <dir>', 'the new data directory (created; must not exist or be empty)')
    .option('--snapshot <id>', 'the snapshot to restore (default: the newest complete one)')
    .action(async (dir: string, o: { dataDir: string; snapshot?: string }) => {
      const { restoreBackup } = await import('../backup/restore.ts');
      const tty = process.stderr.isTTY;
      const r = await restoreBackup(dir, { dataDir: o.dataDir, ...(o.snapshot ? { snapshot: o.snapshot } : {}), onPhase: (p) => tty && process.stderr.write(`${p}…\n`) });
      const c = r.manifest.counts;
      process.stdout.write([
        `Restored snapshot ${r.snapshot} (taken ${r.manifest.startedAt}) into ${r.dataDir}`,
        `  ${count(c.users, 'user')}, ${count(c.messages, 'message')}, ${count(c.entries, 'archive entry', 'archive entries')}, ${count(c.intakeEntries, 'intake entry', 'intake entries')} to archive at start`,
        `Start it with POSTERN_DATA_DIR=${r.dataDir} (the search index is rebuilt in the background), then run \`postern verify\` and \`postern audit verify\`.`,
        ...(r.manifest.encryptionKeyFile ? [`Blobs are encrypted: configure storage.encryptionKeyFile with the same key as "${r.manifest.encryptionKeyFile}".`] : []),
      ].join('\n') + '\n');
    });
}
