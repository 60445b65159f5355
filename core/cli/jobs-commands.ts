// `postern jobs …`: list, show, create, update, delete, run (or a dry --list), cancel and results of
// scheduled jobs, through the admin API of the running server. Secrets are never printed (the
// server redacts them); options come from JSON on the command line or a file.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { JobRecord, JobResult } from '../jobs/types.ts';
import { describeTargets, targetsSchema } from '../jobs/targets.ts';
import { targetOptions, targetsFrom, type TargetFlags } from './target-flags.ts';
import { AdminClientError, callJson, type AdminTarget } from './client.ts';
import { count } from './text.ts';

const by = (): string => {
  try {
    return userInfo().username;
  } catch {
    return 'cli';
  }
};

function parseOptions(o: { options?: string; optionsFile?: string }): Record<string, unknown> | undefined {
  const text = o.optionsFile !== undefined ? readFileSync(o.optionsFile, 'utf8') : o.options;
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new AdminClientError(`Job options must be a JSON object: ${(err as Error).message}`, null);
  }
}

function printJob(j: JobRecord): void {
  const lines = [
    `Job:           ${j.name} (${j.kind}, from ${j.source})`,
    `Schedule:      ${j.schedule ?? 'on demand'}${j.enabled ? '' : ' (disabled)'}`,
    `Status:        ${j.status}`,
    `Command:       ${j.command || '-'}`,
    `Detail:        ${j.detail || '-'}`,
    `Sequence:      ${j.sequence}`,
    `Created:       ${j.createdAt} by ${j.createdBy}`,
    `Last modified: ${j.updatedAt} by ${j.updatedBy}`,
    `Last run:      ${j.lastRunAt ?? '-'}`,
    `Next run:      ${j.nextRunAt ?? '-'}`,
    `Options:       ${JSON.stringify(j.options)}`,
  ];
  const targets = targetsSchema.safeParse(j.options.targets);
  if (targets.success) lines.push(`Targets:       ${describeTargets(targets.data)} (resolved when a run starts)`);
  if (j.pending) lines.push(`Pending change (applies after the current run): ${JSON.stringify(j.pending)}`);
  process.stdout.write(lines.join('\n') + '\n');
}

function printResults(results: JobResult[]): void {
  for (const r of results) {
    const c = r.counts;
    process.stdout.write(`${r.startedAt}\t${r.endedAt}\t${r.job}\t${r.kind}\t${r.status}\tfound ${c.found}, archived ${c.archived}, duplicates ${c.duplicates}, failed ${c.failed}\n`);
    for (const e of r.errors) process.stdout.write(`  ${e.replace(/[\r\n]+/g, ' ')}\n`);
  }
}

export function addJobsCommands(program: Command, target: () => AdminTarget): void {
  const jobs = program.command('jobs').description('scheduled and on-demand jobs (imports, purge, verify)');
  jobs.command('list')
    .description('list jobs with status, schedule and sequence')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const res = await callJson<{ jobs: JobRecord[]; kinds: Array<{ kind: string; description: string }> }>(target(), 'GET', '/api/v1/jobs');
      if (o.json) return void process.stdout.write(JSON.stringify(res, null, 2) + '\n');
      for (const j of res.jobs) process.stdout.write(`${j.name}\t${j.kind}\t${j.status}\t${j.schedule ?? 'on demand'}\tsequence ${j.sequence}\tnext ${j.nextRunAt ?? '-'}\n`);
    });
  jobs.command('kinds')
    .description('list the kinds of jobs this server knows')
    .action(async () => {
      const res = await callJson<{ kinds: Array<{ kind: string; description: string }> }>(target(), 'GET', '/api/v1/jobs');
      for (const k of res.kinds) process.stdout.write(`${k.kind}\t${k.description}\n`);
    });
  jobs.command('show <name>')
    .description('show a job: status, command in progress, latest detail, sequence, who changed it')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const res = await callJson<{ job: JobRecord }>(target(), 'GET', `/api/v1/jobs/${encodeURIComponent(name)}`);
      if (o.json) return void process.stdout.write(JSON.stringify(res.job, null, 2) + '\n');
      printJob(res.job);
    });
  targetOptions(jobs.command('create <name>'))
    .description('define a job (options as JSON; prefer passwordFile or passwordEnv to a password)')
    .requiredOption('-k, --kind <kind>', 'job kind (see `postern jobs kinds`)')
    .option('-s, --schedule <schedule>', 'cron expression or interval ("15m", "1h"); none = on demand')
    .option('-o, --options <json>', 'the options as a JSON object')
    .option('--options-file <file>', 'read the options (JSON object) from a file')
    .option('--disabled', 'create it disabled (no scheduled runs)')
    .action(async (name: string, o: { kind: string; schedule?: string; options?: string; optionsFile?: string; disabled?: boolean } & TargetFlags) => {
      const targets = targetsFrom(o);
      const res = await callJson<{ job: JobRecord }>(target(), 'POST', '/api/v1/jobs', {
        name, kind: o.kind, schedule: o.schedule ?? null, enabled: !o.disabled, options: { ...(parseOptions(o) ?? {}), ...(targets ? { targets } : {}) }, by: by(),
      });
      printJob(res.job);
    });
  targetOptions(jobs.command('update <name>'))
    .description('change a job; a running job takes the change after its current run')
    .option('-s, --schedule <schedule>', 'new cron expression or interval')
    .option('--on-demand', 'remove the schedule')
    .option('-o, --options <json>', 'replace the options (omitted secrets are kept)')
    .option('--options-file <file>', 'replace the options from a JSON file')
    .option('--enable', 'enable scheduled runs')
    .option('--disable', 'disable scheduled runs')
    .action(async (name: string, o: { schedule?: string; onDemand?: boolean; options?: string; optionsFile?: string; enable?: boolean; disable?: boolean } & TargetFlags) => {
      const body: Record<string, unknown> = { by: by() };
      if (o.schedule !== undefined) body.schedule = o.schedule;
      if (o.onDemand) body.schedule = null;
      if (o.enable) body.enabled = true;
      if (o.disable) body.enabled = false;
      let options = parseOptions(o);
      const targets = targetsFrom(o);
      if (targets) {
        // New targets alone keep the other options (stored secrets stay: they come back as "(secret)").
        options ??= (await callJson<{ job: JobRecord }>(target(), 'GET', `/api/v1/jobs/${encodeURIComponent(name)}`)).job.options;
        options = { ...options, targets };
      }
      if (options) body.options = options;
      const res = await callJson<{ job: JobRecord }>(target(), 'PATCH', `/api/v1/jobs/${encodeURIComponent(name)}`, body);
      printJob(res.job);
    });
  jobs.command('delete <name>')
    .description('remove a job (its results history is kept)')
    .action(async (name: string) => {
      await callJson(target(), 'DELETE', `/api/v1/jobs/${encodeURIComponent(name)}?by=${encodeURIComponent(by())}`);
      process.stdout.write(`Removed job ${name}\n`);
    });
  jobs.command('run <name>')
    .description('run a job now (or --list: show what it would import, changing nothing)')
    .option('--list', 'dry run: list folders and message counts')
    .option('--wait', 'wait until the run ends and print its result (exit 1 unless it succeeded)')
    .action(async (name: string, o: { list?: boolean; wait?: boolean }) => {
      const t = target();
      const path = `/api/v1/jobs/${encodeURIComponent(name)}`;
      if (o.list) {
        const res = await callJson<{ list: { server?: string; folders?: Array<{ folder: string; messages: number }> } }>(t, 'POST', `${path}/run`, { list: true });
        if (res.list.server) process.stdout.write(`Server: ${res.list.server}\n`);
        for (const f of res.list.folders ?? []) process.stdout.write(`${f.folder}\t${count(f.messages, 'message')}\n`);
        return;
      }
      const started = await callJson<{ job: JobRecord }>(t, 'POST', `${path}/run`, { by: by() });
      process.stdout.write(`Started job ${name} (run ${started.job.lastRunId})\n`);
      if (!o.wait) return;
      for (;;) {
        await new Promise((r) => setTimeout(r, 250));
        const j = (await callJson<{ job: JobRecord }>(t, 'GET', path)).job;
        if (j.status !== 'running') break;
      }
      const res = await callJson<{ results: JobResult[] }>(t, 'GET', `${path}/results`);
      const mine = res.results.find((r) => r.id === started.job.lastRunId);
      if (!mine) throw new AdminClientError(`The result of run ${started.job.lastRunId} is missing`, null);
      printResults([mine]);
      if (mine.status !== 'succeeded') process.exitCode = 1;
    });
  jobs.command('cancel <name>')
    .description('cancel a running job at its next safe point')
    .action(async (name: string) => {
      await callJson(target(), 'POST', `/api/v1/jobs/${encodeURIComponent(name)}/cancel`, { by: by() });
      process.stdout.write(`Cancelling job ${name}\n`);
    });
  jobs.command('results')
    .description('results history: start, end, status, counts and errors of finished runs')
    .option('--from <date>', 'runs started at or after (yyyy-mm-dd or ISO time)')
    .option('--to <date>', 'runs started before (yyyy-mm-dd or ISO time)')
    .option('--job <name>', 'only this job')
    .option('--limit <n>', 'at most this many', '1000')
    .option('--json', 'print JSON')
    .action(async (o: { from?: string; to?: string; job?: string; limit: string; json?: boolean }) => {
      const q = new URLSearchParams({ limit: o.limit });
      if (o.from) q.set('from', o.from);
      if (o.to) q.set('to', o.to);
      if (o.job) q.set('job', o.job);
      const res = await callJson<{ results: JobResult[] }>(target(), 'GET', `/api/v1/job-results?${q}`);
      if (o.json) return void process.stdout.write(JSON.stringify(res.results, null, 2) + '\n');
      printResults(res.results);
    });
}
