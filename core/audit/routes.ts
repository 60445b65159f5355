// Admin API routes of the audit log and integrity verification:
//   GET  /api/v1/audit/verify                        walk the hash chain → { ok, records, problem }
//   GET  /api/v1/audit/records?since=ISO&fromSeq=N&limit=N   records as JSON lines (streamed)
//   POST /api/v1/verify                              start integrity verification (202; joins a running one)
//   GET  /api/v1/verify                              { running, last } (the last report)
// Validates query parameters at the edge; streams with backpressure; hands on records and reports.
import { once } from 'node:events';
import { z } from 'zod';
import { HttpError } from '../admin/http.ts';
import type { AdminRoutes } from '../admin/routes.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';
import type { VerifyService } from '../verify/service.ts';
import type { AuditLog } from './types.ts';

const MAX_LIMIT = 10_000_000;
const recordsQuery = z.object({
  since: z.string().optional().describe('ISO time: records written then or later'), fromSeq: z.string().regex(/^\d+$/).optional().describe('records from this number'),
  limit: z.string().regex(/^\d+$/).optional().describe(`at most this many (1 to ${MAX_LIMIT})`),
});

function intParam(url: URL, name: string, min: number, max: number): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null) return undefined;
  if (!/^\d{1,16}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new HttpError(400, `${name} "${raw}" must be a whole number from ${min} to ${max}`);
  return Number(raw);
}

export function addAuditRoutes(routes: AdminRoutes, audit: AuditLog, verify: VerifyService, log: Logger): void {
  routes.add('GET', 'audit/verify', async () => ({ body: await audit.verify() }), 'audit', { summary: 'Walk the audit log\'s hash chain', access: ['admin', 'auditor'], responses: { 200: 'whether the chain is intact, and the first problem' } });

  routes.add('GET', 'audit/records', async ({ url, res }) => {
    const since = url.searchParams.get('since');
    if (since !== null && (since.length > 64 || Number.isNaN(new Date(since).getTime()))) throw new HttpError(400, `since "${since.slice(0, 64)}" is not an ISO date`);
    const fromSeq = intParam(url, 'fromSeq', 1, Number.MAX_SAFE_INTEGER);
    const limit = intParam(url, 'limit', 1, MAX_LIMIT);
    const records = audit.list({ ...(since !== null ? { since } : {}), ...(fromSeq !== undefined ? { fromSeq } : {}), ...(limit !== undefined ? { limit } : {}) });
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8' });
    try {
      for await (const r of records) {
        if (res.destroyed) return undefined;
        if (!res.write(JSON.stringify(r) + '\n')) await once(res, 'drain');
      }
    } catch (err) {
      log.error('Audit export failed', { err: errorMessage(err) });
      res.destroy();
      return undefined;
    }
    res.end();
    return undefined;
  }, 'audit', { summary: 'Audit records as JSON lines, streamed', access: ['admin', 'auditor'], query: recordsQuery, produces: 'application/x-ndjson', responses: { 200: 'the records', 400: 'bad since, fromSeq or limit' } });

  routes.add('POST', 'verify', async ({ principal }) => {
    const joined = verify.running;
    void verify.run(principal).catch(() => undefined);  // logged and audited by the service
    return { status: 202, body: { started: !joined, running: true } };
  }, 'audit', { summary: 'Start integrity verification (joins a running one)', access: ['admin'], responses: { 202: 'started or joined' } });

  routes.add('GET', 'verify', async () => ({ body: { running: verify.running, last: verify.last(), lastError: verify.lastError() } }), 'audit', { summary: 'Integrity verification: whether one runs, and the last report', access: ['admin', 'auditor'], responses: { 200: 'the state and last report' } });
}
