// `postern migrate --to postgres-s3`: an offline command (like `postern restore`): it opens the embedded
// archive of the configuration's dataDir itself, so no server may run on it, and copies it into the
// PostgreSQL + S3 archive the configuration names (core/migrate/run.ts). Prints the verification report;
// exits 1 when source and target differ.
import { Command, Option } from 'commander';
import type { Config } from '../config/schema.ts';
import { AdminClientError } from './client.ts';
import { count } from './text.ts';

export function addMigrateCommands(program: Command, loadedConfig: () => Config): void {
  program.command('migrate')
    .description('copy the embedded archive of dataDir into the scale-out backend (storage.postgres, storage.s3); stop the server first; resumable; verified')
    .addOption(new Option('--to <backend>', 'the target backend').choices(['postgres-s3']).makeOptionMandatory())
    .option('--batch <n>', 'records per PostgreSQL transaction and chunks per checkpoint', '1000')
    .option('--json', 'print the report as JSON')
    .action(async (o: { to: string; batch: string; json?: boolean }) => {
      if (!/^\d{1,6}$/.test(o.batch) || Number(o.batch) < 1) throw new AdminClientError('--batch must be a whole number from 1 to 999999', null);
      const { migrateToPostgresS3 } = await import('../migrate/run.ts');
      const tty = process.stderr.isTTY;
      const t0 = Date.now();
      const r = await migrateToPostgresS3(loadedConfig(), {
        batch: Number(o.batch),
        onPhase: (p) => process.stderr.write(`${tty ? '\n' : ''}${((Date.now() - t0) / 1000).toFixed(1)} s: ${p}…\n`),
        onProgress: (p) => tty && process.stderr.write(`\r${p.phase}: ${count(p.copied, p.phase === 'chunks' ? 'chunk' : 'record')} copied   `),
      });
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        const rep = r.report;
        const started = { new: 'new migration', resumed: `resumed at phase ${r.start.phase}`, restarted: 'restarted (the source changed since the last attempt)', finished: 'already copied; verified again' }[r.start.kind];
        process.stdout.write([
          `Migrated ${r.source.path} (RocksDB ${r.source.id}) to ${r.target.postgres} + bucket ${r.target.bucket}: ${started}`,
          ...(r.chunks ? [`  Copied ${count(r.chunks.copied, 'blob chunk')} this run (${r.chunks.bytes} bytes)`] : []),
          ...(r.records ? [`  Copied ${count(r.records.copied, 'record')} this run`] : []),
          ...(r.holds ? [`  Legal holds: ${count(r.holds.set, 'blob')} set under hold, of ${r.holds.blobs}`] : []),
          'Verification:',
          ...rep.records.filter((t) => t.source.count > 0 || t.target.count > 0 || !t.ok).map((t) => `  ${t.ok ? 'ok' : 'DIFFERS'}\t${t.table}\t${t.source.count} → ${t.target.count}\t${t.target.sha256.slice(0, 16)}`),
          `  ${rep.objects.mismatched === 0 ? 'ok' : 'DIFFERS'}\tobjects\t${count(rep.objects.count, 'object')} of ${count(rep.objects.blobs, 'blob')} re-read (${rep.objects.bytes} bytes), every blob's decoded SHA-256 checked`,
          `  ${rep.objects.retentionMissing === 0 ? 'ok' : 'DIFFERS'}\tretention\t${count(rep.objects.retentionChecked, 'retained object')} each checked for its COMPLIANCE retain-until`,
          ...rep.problems.map((p) => `  problem: ${p}`),
          rep.ok
            ? 'The target matches the source. Set storage.backend: postgres-s3 and start the server on the same dataDir (its intake drains into the new archive), then run `postern verify` and `postern audit verify`.'
            : 'The target DIFFERS from the source: do not switch to it (run the migration again to resume or re-check).',
        ].join('\n') + '\n');
      }
      if (!r.report.ok) process.exitCode = 1;
    });
}
