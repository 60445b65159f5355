// Job kind "import-pop3": pulls a journal/multidrop POP3 mailbox. The checkpoint is the set of UIDLs
// already captured (saved after each intake commit, pruned to what the server still holds), so a
// repeated or interrupted run fetches only new messages. DELE only when enabled and only after the
// commit and under the deletion rules (older than N days by the Date header); QUIT applies them. POP3 has no dates on the server side: startDate/endDate filter
// on each message's Date header after retrieval.
import { z } from 'zod';
import { errorMessage } from '../errors.ts';
import type { JobKind } from '../jobs/types.ts';
import {
  RunTally, SOURCE_CREDENTIALS, checkSource, headerDate, inRange, mayDelete, resolvePassword, sleep, sourceOptions, submitMessage, type ImportDeps,
} from './source.ts';
import { Pop3Client, Pop3TooLarge } from './pop3-client.ts';
import { tlsOptionsFor } from './tls-pin.ts';

const pop3Schema = z.strictObject({ ...sourceOptions, port: sourceOptions.port.default(995) }).superRefine((o, ctx) => {
  checkSource(o, ctx);
  if (o.deleteSkipUnread) ctx.addIssue({ code: 'custom', path: ['deleteSkipUnread'], message: 'POP3 has no read state; this rule is for IMAP sources' });
});
export type Pop3ImportOptions = z.infer<typeof pop3Schema>;

interface Pop3State { uidls: string[] }

async function open(o: Pop3ImportOptions, maxBytes: number): Promise<Pop3Client> {
  const client = new Pop3Client({
    host: o.server, port: o.port, tls: o.tls, tlsOptions: await tlsOptionsFor(o.server, o.port, o, 'pop3'), timeoutMs: 60_000, maxBytes,
  });
  try {
    await client.connect();
    await client.login(o.username, resolvePassword(o));
  } catch (err) {
    client.close();
    throw new Error(`Cannot log in to ${o.server}:${o.port}: ${errorMessage(err)}`);
  }
  return client;
}

export function pop3ImportKind(deps: ImportDeps): JobKind<Pop3ImportOptions> {
  return {
    kind: 'import-pop3',
    description: 'Import a journal/multidrop mailbox from a POP3 server (UIDL checkpoints)',
    schema: pop3Schema as z.ZodType<Pop3ImportOptions>,
    ...SOURCE_CREDENTIALS,
    async list(o) {
      const client = await open(o, deps.maxBytes);
      try {
        const s = await client.stat();
        return { server: `${o.server}:${o.port}`, folders: [{ folder: 'INBOX', messages: s.count, bytes: s.size }] };
      } finally {
        await client.quit().catch(() => client.close());
      }
    },
    async run(o, ctx) {
      const startedAt = new Date();
      const tally = new RunTally(ctx);
      const timeout = AbortSignal.timeout(o.timeoutSeconds * 1000);
      const signal = AbortSignal.any([ctx.signal, timeout]);
      let outcome = 'succeeded';
      let fatal: unknown = null;
      let client: Pop3Client | null = null;
      const onAbort = (): void => client?.close();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        ctx.progress('connecting', `${o.server}:${o.port}`);
        client = await open(o, deps.maxBytes);
        const list = await client.uidl();
        const state = (await ctx.loadState<Pop3State>()) ?? { uidls: [] };
        const onServer = new Set(list.map((m) => m.uid));
        const seen = new Set(state.uidls.filter((u) => onServer.has(u)));
        const todo = list.filter((m) => !seen.has(m.uid));
        tally.count({ found: todo.length });
        for (const [i, m] of todo.entries()) {
          if (signal.aborted) throw signal.reason as Error;
          ctx.progress('importing INBOX', `message ${i + 1} of ${todo.length} (UIDL ${m.uid})`);
          let bytes: Buffer | null = null;
          try {
            bytes = await client.retr(m.n);
          } catch (err) {
            // Only an oversized message is this message's failure (the session stays in step);
            // anything else ends the run with the checkpoint before this message.
            if (!(err instanceof Pop3TooLarge)) throw err;
            tally.count({ failed: 1 });
            tally.error(`UIDL ${m.uid}: message is larger than ${deps.maxBytes} bytes`);
          }
          if (bytes && inRange(o, headerDate(bytes))) {
            const r = await submitMessage(deps, o, bytes, 'import-pop3', { job: ctx.jobName }, signal);
            tally.count(r === 'archived' ? { archived: 1 } : { duplicates: 1 });
            // deleteOlderThanDays judges by the Date header (POP3 has no server-side date).
            if (mayDelete(o, { date: headerDate(bytes), unread: null })) await client.dele(m.n);
          }
          seen.add(m.uid);
          await ctx.saveState({ uidls: [...seen] } satisfies Pop3State);
          if (o.delaySeconds > 0) await sleep(o.delaySeconds * 1000, signal);
        }
        await ctx.saveState({ uidls: [...seen] } satisfies Pop3State);
        await client.quit();
      } catch (err) {
        client?.close();
        if (timeout.aborted && !ctx.signal.aborted) {
          outcome = 'timed out';
          tally.error(`Timed out after ${o.timeoutSeconds} s; the next run continues from the checkpoint`);
        } else {
          outcome = ctx.signal.aborted ? 'cancelled' : 'failed';
          fatal = err;
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      if (outcome === 'succeeded' && (tally.counts.failed > 0 || tally.errors.length > 0)) outcome = 'completed with errors';
      if (o.reportTo) {
        const why = await deps.mailer.send(o.reportTo, {
          job: ctx.jobName, kind: 'import-pop3', server: `${o.server}:${o.port}`, startedAt, endedAt: new Date(), outcome,
          counts: tally.counts, errors: fatal ? [...tally.errors, errorMessage(fatal)] : tally.errors,
          folders: [{ folder: 'INBOX', ...tally.counts }],
        });
        if (why) ctx.error(`Results report to ${o.reportTo} not sent: ${why}`);
      }
      if (fatal) throw fatal;
      ctx.progress('done', outcome);
      return { summary: {} };
    },
  };
}
