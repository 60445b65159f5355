// Which messages the POP3 proxy has durably captured lately, per owner (archive user, else login):
// SHA-256 of the unstuffed bytes. A repeat retrieval of the same bytes for the same owner is then
// released at once instead of being committed again (dedup would discard it anyway). In memory only
// and bounded (oldest forgotten first): after a restart a repeat is simply captured again.
export class RecentCaptures {
  private readonly keys = new Set<string>();

  constructor(private readonly limit = 100_000) {}

  private key(owner: string, sha256: string): string {
    return `${owner}\u0000${sha256}`;
  }

  has(owner: string, sha256: string): boolean {
    return this.keys.has(this.key(owner, sha256));
  }

  add(owner: string, sha256: string): void {
    const k = this.key(owner, sha256);
    this.keys.delete(k);
    this.keys.add(k);
    if (this.keys.size > this.limit) {
      const oldest = this.keys.values().next();
      if (!oldest.done) this.keys.delete(oldest.value);
    }
  }

  get size(): number {
    return this.keys.size;
  }
}
