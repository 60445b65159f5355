// The dedup plugin's Bloom filter (bit-bloom.ts, sized from config): answers "surely new" for most new
// messages so the exact identity lookup runs only for likely copies. Persisted to a file and reloaded at
// start; when missing, stale, or written in an older format (version 1 held a bloom-filters/xxhash
// filter, whose bits mean nothing to this hash family) it is rebuilt in the background from the stored
// identity keys while exact lookups serve (never on the startup path).
// Trusts: nothing in the file (checked, and a rebuild replaces anything unusable). Hands on: maybe/no.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Logger } from '../../core/log.ts';
import { BitBloom, type BloomSnapshot } from './bit-bloom.ts';

const FILE_VERSION = 2;

interface SavedFilter {
  version: typeof FILE_VERSION;
  expected: number;
  falsePositiveRate: number;
  /** Messages in the archive when saved: a different count at start means the file is stale. */
  archiveMessages: number;
  filter: BloomSnapshot;
}

export class BloomIndex {
  private filter: BitBloom;
  private ready = false;
  /** Keys added while a rebuild runs; merged into the rebuilt filter (dropped if the rebuild fails). */
  private pendingDuringRebuild: string[] = [];
  private rebuilding = false;
  /** False when claim() found the previous user's in-use mark (no clean stop since); load() then refuses the file. */
  private cleanBefore = true;

  constructor(private readonly file: string, private readonly expected: number, private readonly falsePositiveRate: number, private readonly log: Logger) {
    this.filter = BitBloom.create(expected, falsePositiveRate);
  }

  /** Load a saved filter if it is current; returns false when a rebuild is needed. */
  load(archiveMessages: number): boolean {
    if (!existsSync(this.file)) return false;
    if (!this.cleanBefore) {
      // The last process to use the filter did not save it on a clean stop: keys added after its last
      // periodic save may be missing (a message count alone cannot tell when deletions balanced them).
      this.log.info('Dedup filter was not saved at a clean stop; rebuilding it', { file: this.file });
      return false;
    }
    try {
      const saved = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<SavedFilter>;
      if (saved.version !== FILE_VERSION) {
        this.log.info('Dedup filter file has an older format; rebuilding it', { file: this.file, version: saved.version });
        return false;
      }
      if (saved.expected !== this.expected || saved.falsePositiveRate !== this.falsePositiveRate) return false;
      if (saved.archiveMessages !== archiveMessages) return false;
      const filter = BitBloom.fromSnapshot(saved.filter);
      if (!filter) {
        this.log.warn('Dedup filter file is malformed; rebuilding it', { file: this.file });
        return false;
      }
      this.filter = filter;
      this.ready = true;
      return true;
    } catch (err) {
      this.log.warn('Dedup filter file unreadable; rebuilding it', { file: this.file, err: String(err) });
      return false;
    }
  }

  /** Rebuild from every identity key; lookups stay exact (filter bypassed) until it finishes. */
  async rebuild(keys: AsyncIterable<string>): Promise<number> {
    const fresh = BitBloom.create(this.expected, this.falsePositiveRate);
    let n = 0;
    this.rebuilding = true;
    try {
      for await (const k of keys) {
        fresh.add(k);
        if (++n % 5000 === 0) await new Promise((r) => setImmediate(r)); // stay off the event loop's back
      }
      this.filter = fresh;
      for (const k of this.pendingDuringRebuild) this.filter.add(k);
      this.ready = true;
      return n;
    } finally {
      // A failed rebuild leaves the filter not ready (exact lookups) and keeps no growing key list.
      this.rebuilding = false;
      this.pendingDuringRebuild = [];
    }
  }

  /** True when the key may have been seen; always true until the filter is ready (exact lookups). */
  mayContain(key: string): boolean {
    return !this.ready || this.filter.has(key);
  }

  add(key: string): void {
    this.filter.add(key);
    if (this.rebuilding) this.pendingDuringRebuild.push(key);
  }

  isReady(): boolean {
    return this.ready;
  }

  /** Bits of the filter, as bytes (the memory it holds). */
  bytes(): number {
    return this.filter.byteLength;
  }

  /**
   * Takes the saved file into use: remembers whether the previous user stopped cleanly (for load())
   * and marks the file as possibly behind until a final save. Call before the first key is added.
   */
  claim(): void {
    this.cleanBefore = !existsSync(this.inUseMarker);
    writeFileSync(this.inUseMarker, `${process.pid}\n`, { mode: 0o600 });
  }

  /** Saves the filter; `final` (a clean stop, nothing added after it) clears the in-use mark. */
  save(archiveMessages: number, options: { final?: boolean } = {}): void {
    if (!this.ready) return;
    const saved: SavedFilter = { version: FILE_VERSION, expected: this.expected, falsePositiveRate: this.falsePositiveRate, archiveMessages, filter: this.filter.snapshot() };
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(saved), { mode: 0o600 });
    renameSync(tmp, this.file);
    if (options.final) rmSync(this.inUseMarker, { force: true });
  }

  private get inUseMarker(): string {
    return `${this.file}.in-use`;
  }
}
