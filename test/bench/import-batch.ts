// `npm run bench:import-batch`: the import-imap-batch job over a private Dovecot holding M mailboxes
// of N SpamAssassin corpus messages each (CSV list), once per concurrency level, each on a fresh
// Postern data directory; prints mailboxes/minute and messages/s from the run's own start and end
// (after the intake has drained) and the CPU time the server used (from /proc: Linux only), with the
// machine's load average so a busy machine shows.
// Environment: BATCH_BENCH_MAILBOXES (50), BATCH_BENCH_MESSAGES (10 per mailbox),
// BATCH_BENCH_CONCURRENCY ("1,4"). Asserts nothing about speed.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCorpus } from '../helpers/corpus.ts';
import { spawnServer, stopServer, waitDrained } from '../helpers/spawn-server.ts';
import { startDovecot } from '../interop/dovecot.ts';

interface Result { id: string; status: string; startedAt: string; endedAt: string; counts: { found: number; archived: number; failed: number } }

const mailboxes = Number(process.env.BATCH_BENCH_MAILBOXES ?? 50);
const perMailbox = Number(process.env.BATCH_BENCH_MESSAGES ?? 10);
const levels = (process.env.BATCH_BENCH_CONCURRENCY ?? '1,4').split(',').map(Number);
const corpus = loadCorpus().filter((m) => m.length < 64 * 1024);
if (corpus.length < mailboxes * perMailbox) throw new Error(`The corpus has ${corpus.length} messages under 64 KiB; ask for fewer`);
/** CPU seconds (user + system) a process has used so far, from /proc. */
const cpuSeconds = (pid: number | undefined): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) / 100;
};
const name = (i: number): string => `mb${String(i + 1).padStart(3, '0')}`;

const dir = mkdtempSync(join(tmpdir(), 'postern-batch-bench-'));
chmodSync(dir, 0o755);
const dc = await startDovecot({
  name: 'bench-import-batch', protocols: ['imap'], implicitTls: false,
  users: Array.from({ length: mailboxes }, (_, i) => ({ name: name(i), password: `pw-${i}`, messages: corpus.slice(i * perMailbox, (i + 1) * perMailbox) })),
});
writeFileSync(join(dir, 'mailboxes.csv'), ['login,password,address', ...Array.from({ length: mailboxes }, (_, i) => `${name(i)},pw-${i},${name(i)}@example.test`)].join('\n') + '\n');
const bytes = corpus.slice(0, mailboxes * perMailbox).reduce((n, m) => n + m.length, 0);
process.stdout.write(`${mailboxes} mailboxes × ${perMailbox} messages (${(bytes / 1e6).toFixed(1)} MB), Dovecot on loopback\n`);
try {
  for (const concurrency of levels) {
    const dataDir = join(dir, `data-${concurrency}`);
    mkdirSync(dataDir);
    const pg = await spawnServer(dataDir);
    try {
      await pg.api('POST', '/api/v1/jobs', {
        name: 'bench', kind: 'import-imap-batch',
        options: { server: '127.0.0.1', port: dc.imapPort, tls: 'none', mailboxes: 'csv', csvFile: join(dir, 'mailboxes.csv'), createUsers: true, concurrency },
      });
      const load = loadavg()[0] ?? 0;
      const cpu0 = cpuSeconds(pg.child.pid);
      const t0 = Date.now();
      const started = (await pg.api<{ job: { lastRunId: string } }>('POST', '/api/v1/jobs/bench/run', {})).job;
      for (;;) {
        const j = (await pg.api<{ job: { status: string } }>('GET', '/api/v1/jobs/bench')).job;
        if (j.status !== 'running') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await waitDrained(pg, 600_000);
      const drainedMs = Date.now() - t0;
      const cpu = cpuSeconds(pg.child.pid) - cpu0;
      const r = (await pg.api<{ results: Result[] }>('GET', '/api/v1/jobs/bench/results')).results.find((x) => x.id === started.lastRunId);
      if (!r || r.counts.archived !== mailboxes * perMailbox) throw new Error(`Run incomplete: ${JSON.stringify(r)}`);
      const runS = (Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000;
      const totalS = drainedMs / 1000;
      process.stdout.write(`concurrency ${concurrency}: job ${runS.toFixed(1)} s, archived (intake drained) ${totalS.toFixed(1)} s → `
        + `${(mailboxes / (totalS / 60)).toFixed(1)} mailboxes/min, ${(r.counts.archived / totalS).toFixed(1)} messages/s `
        + `, Postern used ${cpu.toFixed(1)} CPU s (${((cpu / totalS) * 100).toFixed(0)} % of one core, ${((cpu * 1000) / r.counts.archived).toFixed(1)} ms per message)`
        + ` (load average at start ${load.toFixed(1)}, after ${(loadavg()[0] ?? 0).toFixed(1)})\n`);
    } finally {
      await stopServer(pg);
    }
  }
} finally {
  await dc.stop();
  rmSync(dir, { recursive: true, force: true });
}
