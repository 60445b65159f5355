// The address comparison rules the router applies (routing.localPartCase, routing.subaddressSeparator),
// as pure functions, so everything that asks "is this dave's address?" (routing, legal holds, retention
// policies) answers it the same way. Trusts nothing about the address text; never throws.
import type { Config } from '../config/schema.ts';

export type AddressRules = Pick<Config['routing'], 'localPartCase' | 'subaddressSeparator'>;

/** The configuration's defaults (core/config/schema.ts), for callers given no configuration. */
export const DEFAULT_ADDRESS_RULES: AddressRules = { localPartCase: 'insensitive', subaddressSeparator: '+' };

/**
 * The address without its sub-address ("alice+news@example.com" → "alice@example.com"), or null when
 * it has none under this separator ('' turns sub-addressing off) or nothing is left of the local part.
 */
export function withoutSubaddress(address: string, separator: string): string | null {
  if (separator === '') return null;
  const at = address.lastIndexOf('@');
  if (at <= 0) return null;
  const cut = address.slice(0, at).indexOf(separator);
  if (cut <= 0) return null;
  return address.slice(0, cut) + address.slice(at);
}
