// `postern directory sync [--dry-run]`: run the directory sync (job "directory-sync") and print what it
// did, or with --dry-run what it would create, rename, change, disable and remove, changing nothing.
// `postern user rename OLD NEW`: rename a user; their archive, retention and holds follow. Both through
// the admin API of the running server.
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { JobRecord, JobResult } from '../jobs/types.ts';
import type { NewUser, UserRecord } from '../storage/types.ts';
import { AdminClientError, callJson, type AdminTarget } from './client.ts';

const JOB = 'directory-sync';

interface Preview {
  accounts: number;
  groups: number;
  create: NewUser[];
  rename: Array<{ from: string; to: string }>;
  update: Array<{ name: string; what: string[] }>;
  disable: string[];
  remove: string[];
  unchanged: number;
  problems: string[];
}

const by = (): string => {
  try {
    return userInfo().username;
  } catch {
    return 'cli';
  }
};

function printPreview(p: Preview): void {
  const out: string[] = [`Directory: ${p.accounts} accounts, ${p.groups} groups; ${p.unchanged} users unchanged`];
  for (const u of p.create) out.push(`create   ${u.name}\t${u.fullName ?? ''}\t${u.addresses.join(', ') || '-'}\tgroups ${(u.groups ?? []).join(', ') || '-'}`);
  for (const r of p.rename) out.push(`rename   ${r.from} -> ${r.to}`);
  for (const u of p.update) out.push(`change   ${u.name}\t${u.what.join(', ')}`);
  for (const n of p.disable) out.push(`disable  ${n}`);
  for (const n of p.remove) out.push(`remove   ${n}\t(archive kept)`);
  for (const m of p.problems) out.push(`problem  ${m}`);
  if (p.create.length + p.rename.length + p.update.length + p.disable.length + p.remove.length === 0) out.push('Nothing to change');
  process.stdout.write(out.join('\n') + '\n');
}

function printResult(r: JobResult): void {
  const s = r.summary as Partial<Record<'created' | 'renamed' | 'updated' | 'disabled' | 'removed', string[]>> & { accounts?: number; unchanged?: number };
  const out = [`Directory sync ${r.status} (${r.startedAt} – ${r.endedAt}): ${s.accounts ?? r.counts.found} accounts, ${s.unchanged ?? 0} users unchanged`];
  for (const k of ['created', 'renamed', 'updated', 'disabled', 'removed'] as const) {
    const list = s[k] ?? [];
    if (list.length > 0) out.push(`${k.padEnd(9)}${list.join(', ')}`);
  }
  for (const e of r.errors) out.push(`error    ${e.replace(/[\r\n]+/g, ' ')}`);
  process.stdout.write(out.join('\n') + '\n');
}

export function addDirectoryCommands(program: Command, user: Command, target: () => AdminTarget): void {
  const directory = program.command('directory').description('the LDAP / Active Directory sync (directory.ldap)');
  directory.command('sync')
    .description('synchronise users from the directory now and print what changed (exit 1 unless it succeeded)')
    .option('--dry-run', 'print what would be created, renamed, changed, disabled or removed, and change nothing')
    .option('--json', 'print JSON')
    .action(async (o: { dryRun?: boolean; json?: boolean }) => {
      const t = target();
      const path = `/api/v1/jobs/${JOB}`;
      if (o.dryRun) {
        const res = await callJson<{ list: Preview }>(t, 'POST', `${path}/run`, { list: true });
        if (o.json) return void process.stdout.write(JSON.stringify(res.list, null, 2) + '\n');
        return printPreview(res.list);
      }
      const started = await callJson<{ job: JobRecord }>(t, 'POST', `${path}/run`, { by: by() });
      for (;;) {
        await new Promise((r) => setTimeout(r, 200));
        if ((await callJson<{ job: JobRecord }>(t, 'GET', path)).job.status !== 'running') break;
      }
      const res = await callJson<{ results: JobResult[] }>(t, 'GET', `${path}/results`);
      const mine = res.results.find((r) => r.id === started.job.lastRunId);
      if (!mine) throw new AdminClientError(`The result of run ${started.job.lastRunId} is missing`, null);
      if (o.json) process.stdout.write(JSON.stringify(mine, null, 2) + '\n');
      else printResult(mine);
      if (mine.status !== 'succeeded') process.exitCode = 1;
    });

  user.command('rename <old> <new>')
    .description('rename a user; their archive (folders, UIDs), retention, legal holds and stored policies follow (recorded in the audit log)')
    .action(async (from: string, to: string) => {
      const res = await callJson<{ user: UserRecord }>(target(), 'POST', `/api/v1/users/${encodeURIComponent(from)}/rename`, { to });
      process.stdout.write(`Renamed user ${from} to ${res.user.name}; the archive moved with them\n`);
    });
}
