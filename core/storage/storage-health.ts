// Storage health: turns the embedded engines' failure events into log lines and metrics, and keeps
// what `verify` and `postern status` report about them (databases refusing writes after a failed
// write, acknowledged writes found lost at open). Trusts the engines' reports; hands on plain data.
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { RocksEngine, RocksEngineOptions } from './rocksdb-engine.ts';
import type { WriteLoss } from './write-ledger.ts';

export interface StoreWriteLoss extends WriteLoss {
  store: string;
}

export class StorageHealth {
  private readonly engines = new Map<string, RocksEngine>();

  constructor(private readonly metrics: Metrics, private readonly log: Logger) {}

  /** Engine options that report a store's failures, reopens and losses. */
  events(store: string): Pick<RocksEngineOptions, 'onWriteFailure' | 'onRecovery' | 'onWriteLoss'> {
    const { metrics, log } = this;
    return {
      onWriteFailure: (err) => {
        metrics.storageWriteFailures.inc({ store });
        metrics.storageWriting.set({ store }, 0);
        log.error('Database write failed; no write is acknowledged until the database has been reopened', { store, err: err.message });
      },
      onRecovery: (ok, err) => {
        metrics.storageRecoveries.inc({ store, outcome: ok ? 'reopened' : 'failed' });
        if (ok) {
          metrics.storageWriting.set({ store }, 1);
          log.warn('Database reopened after a failed write; writes are accepted again', { store });
        } else {
          log.error('Reopening the database after a failed write failed; writes stay refused', { store, err: errorMessage(err) });
        }
      },
      onWriteLoss: (loss) => {
        log.error('Database lost acknowledged writes: its write ledger saw more synced batches than it holds', { store, ...loss });
      },
    };
  }

  track(store: string, engine: RocksEngine): void {
    this.engines.set(store, engine);
    this.metrics.storageWriting.set({ store }, 1);
    this.refresh();
  }

  /** Call after the engines opened (losses are found at open). */
  refresh(): void {
    for (const [store, engine] of this.engines) {
      this.metrics.storageLostWrites.set({ store }, engine.losses().reduce((n, l) => n + l.batches, 0));
    }
  }

  losses(): StoreWriteLoss[] {
    return [...this.engines].flatMap(([store, engine]) => engine.losses().map((l) => ({ store, ...l })));
  }

  /** Stores currently refusing writes after a failed write. */
  failing(): string[] {
    return [...this.engines].filter(([, e]) => e.failed).map(([store]) => store);
  }
}
