// Certificate reload for every TLS listener (SMTP journaling, relay, POP3, admin, IMAP, web): each
// listener registers its configured certificate/key paths and a function that swaps its secure
// context; SIGHUP (or reloadAll) re-reads every pair and swaps them. Open sessions keep the context
// they negotiated with; new handshakes and STARTTLS upgrades get the new one. A pair that cannot be
// read is logged and the listener keeps its old certificate.
// Trusts: the registered apply functions. Hands on: fresh TlsMaterial from core/tls/dev-certificate.ts.
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';
import { loadTls, type TlsMaterial } from './dev-certificate.ts';

export interface TlsFiles {
  cert: string;
  key: string;
}

export interface TlsReloadOutcome {
  listener: string;
  ok: boolean;
  error?: string;
}

interface Entry {
  files: TlsFiles;
  hostname: string;
  apply(material: TlsMaterial): void;
}

export class TlsReloader {
  private readonly entries = new Map<string, Entry>();
  private readonly onSignal = (): void => void this.reloadAll();
  private watching = false;

  constructor(private readonly dataDir: string, private readonly log: Logger) {}

  /** A listener whose certificate SIGHUP re-reads; `apply` must swap the context without closing sessions. */
  register(listener: string, files: TlsFiles, hostname: string, apply: (material: TlsMaterial) => void): void {
    this.entries.set(listener, { files, hostname, apply });
  }

  unregister(listener: string): void {
    this.entries.delete(listener);
  }

  listeners(): string[] {
    return [...this.entries.keys()];
  }

  /** Re-read every registered pair and swap it in; one failure leaves that listener's old certificate. */
  async reloadAll(): Promise<TlsReloadOutcome[]> {
    const outcomes: TlsReloadOutcome[] = [];
    for (const [listener, e] of this.entries) {
      try {
        e.apply(await loadTls(e.files, this.dataDir, e.hostname, this.log));
        outcomes.push({ listener, ok: true });
      } catch (err) {
        outcomes.push({ listener, ok: false, error: errorMessage(err) });
        this.log.error('Reloading a TLS certificate failed; the listener keeps the old one', { listener, err: errorMessage(err) });
      }
    }
    const reloaded = outcomes.filter((o) => o.ok).map((o) => o.listener);
    if (reloaded.length > 0) this.log.info('TLS certificates reloaded', { listeners: reloaded });
    return outcomes;
  }

  /** Reload on SIGHUP until unwatch(). */
  watch(): void {
    if (this.watching) return;
    this.watching = true;
    process.on('SIGHUP', this.onSignal);
  }

  unwatch(): void {
    if (!this.watching) return;
    this.watching = false;
    process.off('SIGHUP', this.onSignal);
  }
}
