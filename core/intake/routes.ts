// Admin API routes for quarantined intake entries: retry one after an upgrade or a fix
// (`postern intake retry ID`). A retried entry is archived again under a new capture id, through the
// whole pipeline; one that was archived raw-only merges into that same message (identical bytes): its
// entries are not filed twice, and the IMAP data is computed on first read, but the listing summary
// and the analysis-failed flag recorded at the first capture stay. Validates the id at the edge; hands
// the entry to the queue manager.
import type { AdminRoutes } from '../admin/routes.ts';
import { PosternError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Intake, IntakeRecord } from './intake.ts';

const INTAKE_ID = /^[A-Za-z0-9._-]{1,100}$/;

export function addIntakeRoutes(routes: AdminRoutes, intake: Intake, requeue: (record: IntakeRecord) => void, log: Logger): void {
  routes.add('POST', 'intake/:id/retry', async ({ params, principal }) => {
    const id = params.id ?? '';
    if (!INTAKE_ID.test(id)) throw new PosternError('INVALID_INPUT', `Intake id "${id.slice(0, 100)}" is not valid`);
    const record = await intake.get(id);
    if (!record) throw new PosternError('NOT_FOUND', `Intake entry "${id}" does not exist (archived entries leave the intake)`);
    if (record.state !== 'corrupt') {
      throw new PosternError('CONFLICT', `Intake entry "${id}" is ${record.state}, not quarantined: the queue retries it by itself`);
    }
    const retries = (record.retries ?? 0) + 1;
    const next = await intake.setState(record, 'active', { attempts: 0, nextAttemptAt: 0, lastError: null, retries, crashes: 0, rawOnly: null });
    requeue(next);
    log.info('Intake entry retried by an operator', { intakeId: id, principal, from: record.state, retries });
    return { body: { id, state: next.state, retries } };
  }, 'core', { summary: 'Archive a quarantined intake entry again', access: ['admin'], responses: { 200: 'the entry, active again', 400: 'bad id', 404: 'no such entry', 409: 'the entry is not quarantined' } });
}
