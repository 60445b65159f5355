// search: the full-text index (SQLite FTS5, trigram) behind the archive commit, and the `search`
// service over it (query language, IMAP SEARCH candidates). The `stored` hook only wakes the indexer;
// text extraction runs in the analysis workers on demand (never while a message is being archived).
// Adds the admin routes (search, status, reindex), the job kind `search-reconcile` (and a scheduled
// job when `reconcileSchedule` is set) and the postern_search_* gauges.
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { definePlugin } from '../../core/app/plugin.ts';
import { errorMessage } from '../../core/errors.ts';
import type { ArchiveEntry } from '../../core/storage/types.ts';
import '../../core/app/search-service.ts';
import { IndexDb } from './index-db.ts';
import { IndexWriter } from './index-writer.ts';
import { Indexer } from './indexer.ts';
import { IndexSearch } from './service.ts';
import { IndexReader } from './index-reader.ts';
import { addSearchRoutes } from './routes.ts';
import { reconcile } from './reconcile.ts';
import { searchStatus } from './status.ts';
import type { ExtractedText } from './extract.ts';

const config = z.strictObject({
  /** Index directory; relative to dataDir. */
  dir: z.string().min(1).default('search'),
  /** Entries indexed per transaction. */
  batch: z.number().int().min(1).max(10_000).default(200),
  /** Messages extracted at once (each uses an analysis worker while it runs). */
  concurrency: z.number().int().min(1).max(16).default(2),
  /** Larger messages are indexed by headers and envelope only. */
  maxMessageBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
  /** Seconds between passes when no new mail woke the indexer. */
  intervalSeconds: z.number().min(1).max(86_400).default(30),
  /** Indexing pauses while more messages than this wait in the intake (capture comes first). */
  yieldToIntakeAbove: z.number().int().min(0).default(0),
  /** Cron expression for the `search-reconcile` job (empty: none scheduled; run it with `postern jobs run`). */
  reconcileSchedule: z.string().default('30 3 * * *'),
});

export default definePlugin({
  name: 'search',
  provides: ['search'],
  configSchema: config,
  async register(app, settings) {
    const core = app.service('config');
    const archive = app.service('archive');
    const metrics = app.service('metrics');
    const analysis = app.service('analysis');
    const log = app.log;
    app.analyzer({ module: new URL('./extract.ts', import.meta.url).href, export: 'extract', onDemand: true });

    const dir = isAbsolute(settings.dir) ? settings.dir : join(core.dataDir, settings.dir);
    // Queries on the reader threads, every write on the writer thread (WAL: readers never wait for
    // the writer); this thread keeps a connection for the migration and small point lookups.
    const db = new IndexDb(dir);
    const writes = new IndexWriter(dir);
    const reads = new IndexReader(dir);
    const archives = async (): Promise<string[]> => {
      const names = new Set((await archive.listUsers()).map((u) => u.name));
      names.add(core.routing.unmatchedUser);
      return [...names].sort();
    };
    const gauge = async (g: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> => (await g.get()).values[0]?.value ?? 0;
    const indexer = new Indexer({
      archive, db, writes, log, archives,
      extract: async (bytes) => (await analysis.analyzeWith('search', bytes)) as ExtractedText,
      intakeDepth: async () => (await gauge(metrics.intakeDepth)) - (await gauge(metrics.intakeDeferred)),
      onIndexed: (n) => metrics.searchIndexed.inc(n),
      onFailure: (messageId, reason) => {
        metrics.searchExtractionFailures.inc();
        log.warn('Text extraction for the search index failed; the message is indexed by headers and envelope only', { messageId, reason });
      },
    }, settings);
    const search = new IndexSearch(db, archive, writes, reads);
    app.decorate('search', search);
    app.on('stored', () => indexer.wake());

    const indexEntries = async (user: string, folder: string, entries: ArchiveEntry[]): Promise<void> => indexer.indexEntries(user, folder, entries);
    const status = (): Promise<unknown> => searchStatus({ archive, reads, archives });
    addSearchRoutes({
      routes: app.service('adminRoutes'), archive, search,
      audit: () => app.optionalService('audit')(),
      status,
      reindex: async (user) => {
        const users = user ? [user] : await archives();
        await indexer.pause(async () => {
          if (user) await writes.dropUser(user);
          else await writes.dropAll();
          await writes.dropOrphans(1_000_000);
        });
        indexer.wake();
        log.info('Search index rebuild started', { user: user ?? '*' });
        return { users };
      },
    });

    const jobs = app.service('jobs');
    jobs.registerKind({
      kind: 'search-reconcile',
      description: 'Compare the full-text index with the archive: index missing entries, remove entries of deleted mail, drop unused documents',
      schema: z.strictObject({}) as unknown as z.ZodType<Record<string, never>>,
      async run(_o, ctx) {
        const r = await reconcile({ archive, db, writes, archives, indexEntries, signal: ctx.signal, progress: (d) => ctx.progress('reconcile', d) });
        ctx.count({ found: r.missing + r.extra });
        if (r.missing + r.extra > 0) log.warn('Search index drift repaired', { ...r });
        return { summary: { ...r } };
      },
    });
    if (settings.reconcileSchedule !== '') {
      jobs.defineConfigJob({ name: 'search-reconcile', kind: 'search-reconcile', schedule: settings.reconcileSchedule, enabled: true, options: {} });
    }

    // Gauges from folder sizes vs indexed entries per folder (one grouped count over the entries index),
    // refreshed once a minute: lag is an alert over many minutes, not a per-scrape value.
    const refresh = async (): Promise<void> => {
      const s = await searchStatus({ archive, reads, archives });
      metrics.searchPending.set(s.pending);
      metrics.searchLag.set(s.oldestPendingAt ? Math.max(0, (Date.now() - Date.parse(s.oldestPendingAt)) / 1000) : 0);
    };
    const gauges = setInterval(() => refresh().catch((err: unknown) => log.warn('Search index gauges not refreshed', { err: errorMessage(err) })), 60_000);
    gauges.unref();
    refresh().catch(() => undefined);
    indexer.start();
    log.info('Search index open', { dir: settings.dir, documents: db.documents() });
    app.onClose(async () => {
      clearInterval(gauges);
      await indexer.close();
      await writes.close();
      await reads.close();
      db.close();
    });
  },
});
