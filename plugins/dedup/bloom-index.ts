// The dedup plugin's Bloom filter (bloom-filters' BloomFilter, sized from config): answers "surely new"
// for most new messages so the exact identity lookup runs only for likely copies. Persisted to a file
// and reloaded at start; when missing or stale it is rebuilt in the background while exact lookups
// serve (never on the startup path).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import bloomFilters from 'bloom-filters';
import type { Logger } from '../../core/log.ts';

const { BloomFilter } = bloomFilters;
type Filter = InstanceType<typeof BloomFilter>;

interface SavedFilter {
  version: 1;
  expected: number;
  falsePositiveRate: number;
  /** Messages in the archive when saved: a different count at start means the file is stale. */
  archiveMessages: number;
  filter: unknown;
}

export class BloomIndex {
  private filter: Filter;
  private ready = false;
  /** Keys added while a rebuild runs; merged into the rebuilt filter. */
  private pendingDuringRebuild: string[] = [];

  constructor(private readonly file: string, private readonly expected: number, private readonly falsePositiveRate: number, private readonly log: Logger) {
    this.filter = BloomFilter.create(expected, falsePositiveRate);
  }

  /** Load a saved filter if it is current; returns false when a rebuild is needed. */
  load(archiveMessages: number): boolean {
    if (!existsSync(this.file)) return false;
    try {
      const saved = JSON.parse(readFileSync(this.file, 'utf8')) as SavedFilter;
      if (saved.version !== 1 || saved.expected !== this.expected || saved.falsePositiveRate !== this.falsePositiveRate) return false;
      if (saved.archiveMessages !== archiveMessages) return false;
      this.filter = BloomFilter.fromJSON(saved.filter as Parameters<typeof BloomFilter.fromJSON>[0]);
      this.ready = true;
      return true;
    } catch (err) {
      this.log.warn('Dedup filter file unreadable; rebuilding it', { file: this.file, err: String(err) });
      return false;
    }
  }

  /** Rebuild from every identity key; lookups stay exact (filter bypassed) until it finishes. */
  async rebuild(keys: AsyncIterable<string>): Promise<number> {
    const fresh = BloomFilter.create(this.expected, this.falsePositiveRate);
    let n = 0;
    for await (const k of keys) {
      fresh.add(k);
      if (++n % 5000 === 0) await new Promise((r) => setImmediate(r)); // stay off the event loop's back
    }
    this.filter = fresh;
    for (const k of this.pendingDuringRebuild) this.filter.add(k);
    this.pendingDuringRebuild = [];
    this.ready = true;
    return n;
  }

  /** True when the key may have been seen; always true until the filter is ready (exact lookups). */
  mayContain(key: string): boolean {
    return !this.ready || this.filter.has(key);
  }

  add(key: string): void {
    this.filter.add(key);
    if (!this.ready) this.pendingDuringRebuild.push(key);
  }

  isReady(): boolean {
    return this.ready;
  }

  /** Bits of the filter, as bytes (the memory it holds). */
  bytes(): number {
    return Math.ceil(this.filter.size / 8);
  }

  save(archiveMessages: number): void {
    if (!this.ready) return;
    const saved: SavedFilter = { version: 1, expected: this.expected, falsePositiveRate: this.falsePositiveRate, archiveMessages, filter: this.filter.saveAsJSON() };
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(saved), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
