// Address → user resolution under the configured comparison rules (RFC 5321/6531): domains always
// case-insensitive, local parts case-insensitive unless configured otherwise, an optional sub-address
// separator ("alice+news@" is alice's), then whole-domain ownership. Reads the archive's directory.
import type { Config } from '../config/schema.ts';
import type { ArchiveStore } from '../storage/types.ts';
import { normalizeAddress } from '../storage/types.ts';
import { withoutSubaddress } from './address-rules.ts';

export type Resolution = { user: string; via: 'address' | 'subaddress' | 'domain' };

export class AddressResolver {
  constructor(private readonly archive: ArchiveStore, private readonly rules: Pick<Config['routing'], 'localPartCase' | 'subaddressSeparator'>) {}

  async resolve(raw: string): Promise<Resolution | null> {
    const address = normalizeAddress(raw);
    const at = address.lastIndexOf('@');
    if (at <= 0 || at === address.length - 1) return null;
    const exact = await this.byAddress(address);
    if (exact) return { user: exact, via: 'address' };
    const stripped = withoutSubaddress(address, this.rules.subaddressSeparator);
    if (stripped !== null) {
      const base = await this.byAddress(stripped);
      if (base) return { user: base, via: 'subaddress' };
    }
    const owner = await this.archive.userByDomain(address.slice(at + 1));
    return owner ? { user: owner, via: 'domain' } : null;
  }

  private async byAddress(address: string): Promise<string | null> {
    const user = await this.archive.userByAddress(address);
    if (!user || this.rules.localPartCase === 'insensitive') return user;
    // Case-sensitive local parts: the index is case-folded, so confirm the exact spelling.
    const record = await this.archive.getUser(user);
    return record?.addresses.includes(address) ? user : null;
  }
}
