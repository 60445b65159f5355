// `postern intake …`: list the entries waiting in the intake (quarantined ones with their reason) and
// retry a quarantined entry after an upgrade or a fix, through the admin API of the running server.
import type { Command } from 'commander';
import type { IntakeRecord } from '../intake/intake.ts';
import { callJson, type AdminTarget } from './client.ts';

const STATES = ['active', 'deferred', 'corrupt', 'held'] as const;

export function addIntakeCommands(program: Command, target: () => AdminTarget): void {
  const intake = program.command('intake').description('entries acknowledged but not yet archived, and quarantined ones');
  intake.command('list')
    .description('list intake entries (quarantined ones show why)')
    .option('--state <state>', `only entries in this state (${STATES.join(', ')}; "quarantined" = corrupt)`)
    .action(async (o: { state?: string }) => {
      const state = o.state === 'quarantined' ? 'corrupt' : o.state;
      if (state !== undefined && !(STATES as readonly string[]).includes(state)) {
        throw new Error(`Unknown state "${o.state}"; use one of ${STATES.join(', ')} or quarantined`);
      }
      const { entries } = await callJson<{ entries: IntakeRecord[] }>(target(), 'GET', `/api/v1/intake${state ? `?state=${state}` : ''}`);
      if (entries.length === 0) {
        console.log(state ? `No intake entries are ${o.state}.` : 'The intake is empty.');
        return;
      }
      for (const e of entries) {
        const why = e.lastError ? `  ${e.lastError}` : '';
        console.log(`${e.id}  ${e.state === 'corrupt' ? 'quarantined' : e.state}  ${e.receivedAt}  ${e.size} bytes  from ${e.envelope.mailFrom || '<>'}${why}`);
      }
    });
  intake.command('retry')
    .description('archive a quarantined entry again, e.g. after an upgrade')
    .argument('<id>', 'intake entry id (see `postern intake list` or `postern status`)')
    .action(async (id: string) => {
      const r = await callJson<{ id: string; retries: number }>(target(), 'POST', `/api/v1/intake/${encodeURIComponent(id)}/retry`, {});
      console.log(`Intake entry ${r.id} queued for archiving again (retry ${r.retries}).`);
    });
}
