// Results reports of import jobs, mailed (with nodemailer) through the SMTP server configured in
// `jobReports` when a definition names reportTo. Sending is best effort: a failure is logged and
// recorded in the run, never fails the import. Trusts the configuration; puts no secrets in mail.
import nodemailer from 'nodemailer';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { JobCounts } from '../jobs/types.ts';

export interface RunReport {
  job: string;
  kind: string;
  server: string;
  startedAt: Date;
  endedAt: Date;
  outcome: string;
  counts: JobCounts;
  errors: string[];
  folders: Array<{ folder: string; found: number; archived: number; duplicates: number; failed: number }>;
}

export interface ReportMailer {
  /** Mail the report; resolves to null when sent, else the reason it was not. */
  send(to: string, report: RunReport): Promise<string | null>;
}

export function formatReport(r: RunReport): { subject: string; text: string } {
  const c = r.counts;
  const lines = [
    `Job:        ${r.job} (${r.kind})`,
    `Source:     ${r.server}`,
    `Started:    ${r.startedAt.toISOString()}`,
    `Ended:      ${r.endedAt.toISOString()}`,
    `Outcome:    ${r.outcome}`,
    `Found:      ${c.found}`,
    `Archived:   ${c.archived}`,
    `Duplicates: ${c.duplicates}`,
    `Failed:     ${c.failed}`,
    '',
  ];
  if (r.folders.length) {
    lines.push('Folders:');
    for (const f of r.folders) lines.push(`  ${f.folder}: found ${f.found}, archived ${f.archived}, duplicates ${f.duplicates}, failed ${f.failed}`);
    lines.push('');
  }
  if (r.errors.length) {
    lines.push('Errors:');
    for (const e of r.errors.slice(0, 100)) lines.push(`  ${e}`);
    if (r.errors.length > 100) lines.push(`  … and ${r.errors.length - 100} more`);
  }
  return { subject: `Postern import ${r.job}: ${r.outcome} (${c.archived} archived, ${c.failed} failed)`, text: lines.join('\n') + '\n' };
}

export function createReportMailer(cfg: Config['jobReports'], log: Logger): ReportMailer {
  return {
    async send(to, report) {
      if (cfg.host === '') return 'no SMTP server configured for reports (jobReports.host)';
      const transport = nodemailer.createTransport({
        host: cfg.host,
        port: cfg.port,
        secure: cfg.tls === 'implicit',
        ignoreTLS: cfg.tls === 'none',
        requireTLS: cfg.tls === 'starttls',
        tls: { rejectUnauthorized: !cfg.acceptSelfSigned },
        connectionTimeout: cfg.timeoutSeconds * 1000,
        greetingTimeout: cfg.timeoutSeconds * 1000,
        socketTimeout: cfg.timeoutSeconds * 1000,
      });
      const { subject, text } = formatReport(report);
      try {
        await transport.sendMail({ from: cfg.from, to, subject, text });
        log.info('Import report mailed', { job: report.job });
        return null;
      } catch (err) {
        const why = (err as Error).message;
        log.warn('Import report could not be mailed', { job: report.job, err: why });
        return why;
      } finally {
        transport.close();
      }
    },
  };
}
