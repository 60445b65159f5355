// A small pool of idle upstream sessions for the relay proxy: when a client leaves, its upstream
// connection (greeted, EHLO'd, STARTTLS'd as configured) is kept for the next client if it is
// unauthenticated, outside a transaction and still open. Bounded in size and idle time (a pooled
// connection older than the idle limit is closed, never handed out). Authenticated sessions are
// never pooled: one client's credentials never serve another.
import type { UpstreamCapabilities } from './relay-capabilities.ts';
import type { UpstreamConnection } from './relay-upstream.ts';

export interface PooledUpstream {
  conn: UpstreamConnection;
  capabilities: UpstreamCapabilities;
}

export class UpstreamPool {
  private readonly idle: Array<PooledUpstream & { since: number }> = [];
  private closed = false;

  constructor(private readonly maxSize: number, private readonly maxIdleMs = 30_000) {}

  /** A usable idle session, or null. */
  take(): PooledUpstream | null {
    const now = Date.now();
    for (let item = this.idle.pop(); item; item = this.idle.pop()) {
      if (item.conn.usable && now - item.since < this.maxIdleMs) return { conn: item.conn, capabilities: item.capabilities };
      item.conn.close();
    }
    return null;
  }

  /** Keep a session for later; closes it (politely) when the pool is full or it is not usable. */
  give(item: PooledUpstream): void {
    if (!item.conn.usable) return;
    if (this.closed || this.idle.length >= this.maxSize) {
      void item.conn.quit();
      return;
    }
    this.idle.push({ ...item, since: Date.now() });
  }

  get size(): number {
    return this.idle.length;
  }

  /** QUIT every idle session and pool nothing more (shutdown). */
  async drain(): Promise<void> {
    this.closed = true;
    const all = this.idle.splice(0);
    await Promise.allSettled(all.map((i) => i.conn.quit()));
  }
}
