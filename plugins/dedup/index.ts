// dedup: single-instance storage by message identity. Its analyzer (analyzer.ts, in the analysis
// workers) computes the canonical hash (core/mime/canonical-hash.ts: per-hop headers, folding and line
// endings ignored) under the archiving budget; on the `dedup` hook it asks the Bloom filter whether
// the message may be a copy, looks it up exactly only then, and always hands the key to the archive,
// whose writer merges copies atomically (two identical messages arriving at once become one).
// Identical bytes are merged by core already (blob identity).
import { join } from 'node:path';
import { Counter, Gauge, Histogram } from 'prom-client';
import { z } from 'zod';
import { definePlugin } from '../../core/app/plugin.ts';
import { errorMessage } from '../../core/errors.ts';
import { BloomIndex } from './bloom-index.ts';
import type { DedupAnalysis } from './analyzer.ts';

/** Largest Bloom filter (bytes) the plugin builds and saves. */
const MAX_FILTER_BYTES = 256 * 1024 * 1024;

export const dedupConfig = z.strictObject({
  /** Messages the filter is sized for; past it the false-positive rate rises (more exact lookups). */
  expectedMessages: z.number().int().min(1000).max(2_000_000_000).default(1_000_000),
  falsePositiveRate: z.number().gt(0).lt(0.5).default(0.01),
  /** Where the filter is saved; relative to the data directory. */
  filterFile: z.string().min(1).default('dedup-bloom.json'),
  saveIntervalSeconds: z.number().int().min(10).max(86400).default(300),
  /** Largest message hashed in memory; larger ones are deduplicated by identical bytes only. */
  maxHashBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
}).superRefine((c, ctx) => {
  // The filter is saved as one base64 string: keep it well under V8's ~512 MiB string limit.
  const bytes = Math.ceil((-c.expectedMessages * Math.log(c.falsePositiveRate)) / (Math.LN2 * Math.LN2) / 8);
  if (bytes > MAX_FILTER_BYTES) {
    ctx.addIssue({
      code: 'custom', path: ['expectedMessages'],
      message: `a filter for ${c.expectedMessages} messages at a false-positive rate of ${c.falsePositiveRate} needs ${Math.ceil(bytes / 2 ** 20)} MiB; at most ${MAX_FILTER_BYTES / 2 ** 20} MiB (lower expectedMessages or raise falsePositiveRate)`,
    });
  }
});

const PREFIX = 'c';

export default definePlugin({
  name: 'dedup',
  configSchema: dedupConfig,
  register(app, config) {
    const archive = app.service('archive');
    const { registry } = app.service('metrics');
    const dataDir = app.service('config').dataDir;
    const r = [registry];
    const m = {
      lookups: new Counter({ name: 'postern_dedup_lookups_total', help: 'Exact identity lookups (the filter said "maybe")', registers: r }),
      hits: new Counter({ name: 'postern_dedup_duplicates_total', help: 'Messages recognised as copies of a stored message', registers: r }),
      falsePositives: new Counter({ name: 'postern_dedup_bloom_false_positives_total', help: 'Filter said "maybe" but no message had the key', registers: r }),
      skipped: new Counter({ name: 'postern_dedup_bloom_negatives_total', help: 'Lookups the filter saved ("surely new")', registers: r }),
      seconds: new Histogram({ name: 'postern_dedup_seconds', help: 'Time to hash and look up one message', registers: r, buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25] }),
      bloomBytes: new Gauge({ name: 'postern_dedup_bloom_bytes', help: 'Memory held by the dedup Bloom filter', registers: r }),
      bloomReady: new Gauge({ name: 'postern_dedup_bloom_ready', help: '1 when the filter is loaded or rebuilt, 0 while rebuilding (exact lookups only)', registers: r }),
    };
    const file = join(dataDir, config.filterFile);
    const bloom = new BloomIndex(file, config.expectedMessages, config.falsePositiveRate, app.log);
    m.bloomBytes.set(bloom.bytes());

    // From here on keys are added that the saved file lacks until the final save at a clean stop.
    bloom.claim();
    void (async () => {
      const { messages } = await archive.stats();
      if (bloom.load(messages)) {
        app.log.info('Dedup filter loaded', { file });
      } else {
        app.log.info('Dedup filter missing or stale; rebuilding in the background (exact lookups meanwhile)', { file });
        const n = await bloom.rebuild(archive.listIdentities(PREFIX));
        app.log.info('Dedup filter rebuilt', { keys: n });
      }
      m.bloomReady.set(1);
    })().catch((err: unknown) => app.log.error('Dedup filter could not be prepared; exact lookups continue', { err: errorMessage(err) }));

    const save = async (final: boolean): Promise<void> => {
      try {
        bloom.save((await archive.stats()).messages, { final });
      } catch (err) {
        app.log.warn('Saving the dedup filter failed', { err: errorMessage(err) });
      }
    };
    const timer = setInterval(() => void save(false), config.saveIntervalSeconds * 1000);
    timer.unref();
    app.onClose(async () => {
      clearInterval(timer);
      await save(true);
    });

    app.analyzer({ module: new URL('./analyzer.ts', import.meta.url).href, options: { maxHashBytes: config.maxHashBytes, prefix: PREFIX } });
    app.on('dedup', async ({ context }) => {
      const started = process.hrtime.bigint();
      const analysis = context.analysis.dedup as DedupAnalysis | null | undefined;
      if (!analysis) return null;
      const { key } = analysis;
      let mergeInto: string | null = null;
      if (bloom.mayContain(key)) {
        m.lookups.inc();
        mergeInto = await archive.messageByIdentity(key);
        if (mergeInto) m.hits.inc();
        else if (bloom.isReady()) m.falsePositives.inc();
      } else {
        m.skipped.inc();
      }
      bloom.add(key);
      m.seconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      return mergeInto ? { mergeInto, identities: [key] } : { identities: [key] };
    });
  },
});
