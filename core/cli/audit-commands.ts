// `postern audit verify`, `postern audit export` and `postern verify`: the audit log's hash-chain check,
// its export as JSON lines, and integrity verification of the archive — all through the running server's
// admin API. Exit status: 0 when everything checked out, 1 when a problem was found (printed).
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { AuditVerifyResult } from '../audit/types.ts';
import type { VerifyReport } from '../verify/verify.ts';
import { AdminClientError, call, callJson, errorOf, type AdminTarget } from './client.ts';
import { count } from './text.ts';

const POLL_MS = 500;

function printReport(r: VerifyReport): void {
  const lines = [
    `Checked:  ${count(r.checked.blobs, 'blob')} (${count(r.checked.blobBytes, 'byte')} re-hashed), ${count(r.checked.messages, 'message')}, ${count(r.checked.entries, 'entry', 'entries')}`,
    `Duration: ${r.startedAt} – ${r.finishedAt}${r.cancelled ? ' (cancelled before the end)' : ''}`,
  ];
  if (r.total === 0) lines.push(r.cancelled ? 'No problems found in the part checked' : 'No problems found');
  else {
    lines.push(`Problems: ${r.total} (${Object.entries(r.problems).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')})`);
    if (r.byFolder.length > 0) lines.push('Affected entries per user and folder:');
    for (const f of r.byFolder) lines.push(`  ${f.user}\t${f.folder}\t${f.entries}\t${Object.entries(f.kinds).map(([k, n]) => `${k} ${n}`).join(', ')}`);
    lines.push('Problems:');
    for (const p of r.details) {
      const where = p.entries.map((e) => `${e.user}/${e.folder}/${e.uid}`).join(', ');
      lines.push(`  ${p.kind}: ${p.detail}${where ? ` [${count(p.affected, 'entry', 'entries')}: ${where}${p.affected > p.entries.length ? ', …' : ''}]` : ''}`);
    }
    if (r.truncated) lines.push(`  … ${r.total - r.details.length} more (see the metrics and the job results)`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

export function addAuditCommands(program: Command, target: () => AdminTarget): void {
  const audit = program.command('audit').description('check and export the tamper-evident audit log');

  audit.command('verify')
    .description('walk the audit log hash chain; exit 1 and print the first broken, missing or reordered record')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const r = await callJson<AuditVerifyResult>(target(), 'GET', '/api/v1/audit/verify');
      if (opts.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else if (r.ok) process.stdout.write(`Audit log OK: ${count(r.records, 'record')}, hash chain intact\n`);
      else if (r.problem) process.stdout.write(`Audit log BROKEN at record ${r.problem.seq} (${r.problem.kind}): ${r.problem.detail}\n${count(r.records, 'record')} before it ${r.records === 1 ? 'is' : 'are'} intact\n`);
      if (!r.ok) process.exitCode = 1;
    });

  audit.command('export')
    .description('write audit records as JSON lines (one record per line, with seq, at, prev and hash)')
    .option('--since <time>', 'only records written at or after this ISO time (e.g. 2026-01-01T00:00:00Z)')
    .option('--from-seq <n>', 'only records with this sequence number or later')
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .action(async (opts: { since?: string; fromSeq?: string; output?: string }) => {
      const q = new URLSearchParams();
      if (opts.since !== undefined) {
        if (Number.isNaN(new Date(opts.since).getTime())) throw new AdminClientError(`--since "${opts.since}" is not an ISO date or time`, null);
        q.set('since', new Date(opts.since).toISOString());
      }
      if (opts.fromSeq !== undefined) {
        if (!/^\d{1,15}$/.test(opts.fromSeq) || Number(opts.fromSeq) < 1) throw new AdminClientError(`--from-seq "${opts.fromSeq}" must be a positive whole number`, null);
        q.set('fromSeq', opts.fromSeq);
      }
      const res = await call(target(), 'GET', `/api/v1/audit/records?${q}`);
      if ((res.statusCode ?? 500) >= 400) throw await errorOf(res);
      await pipeline(res, opts.output ? createWriteStream(opts.output, { mode: 0o600 }) : process.stdout);
    });

  program.command('verify')
    .description('integrity verification: re-read and re-hash every blob, check references and counts; exit 1 on problems')
    .option('--json', 'print the report as JSON')
    .option('--no-wait', 'start the verification and return (see `postern verify --last`)')
    .option('--last', 'print the last report without starting a run')
    .action(async (opts: { json?: boolean; wait: boolean; last?: boolean }) => {
      const t = target();
      type State = { running: boolean; last: VerifyReport | null; lastError: string | null };
      let state: State;
      if (opts.last) state = await callJson<State>(t, 'GET', '/api/v1/verify');
      else {
        const before = new Date().toISOString();
        await callJson(t, 'POST', '/api/v1/verify');
        if (!opts.wait) return void process.stdout.write('Integrity verification started\n');
        for (;;) {
          state = await callJson<State>(t, 'GET', '/api/v1/verify');
          if (!state.running) break;
          await new Promise((r) => setTimeout(r, POLL_MS));
        }
        if (!state.last || state.last.finishedAt < before) throw new AdminClientError(`Integrity verification did not finish: ${state.lastError ?? 'see the server log'}`, null);
      }
      if (!state.last) return void process.stdout.write('No verification has run since the server started\n');
      if (opts.json) process.stdout.write(JSON.stringify(state.last, null, 2) + '\n');
      else printReport(state.last);
      if (!state.last.ok) process.exitCode = 1;
    });
}
