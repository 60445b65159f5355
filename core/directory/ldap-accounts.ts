// What the directory holds, read and shaped for the sync: accounts (name, full name, mail addresses,
// groups with nesting resolved, DN, stable id) from userFilter, groups from groupFilter. The shaping is
// pure and exported for tests: mail addresses from plain attributes and from AD proxyAddresses
// ("SMTP:" primary, "smtp:" secondary; X500:, SIP: … ignored); group membership from the groups' member
// lists and the account's own memberOf, followed upwards through groups in groups client-side (OpenLDAP
// has no LDAP_MATCHING_RULE_IN_CHAIN), bounded in depth and safe against cycles. Trusts nothing it reads:
// names that are not valid user or group names are reported, not used.
import type { Client, Entry } from 'ldapts';
import { addressKey, normalizeAddress, ADDRESS, USER_NAME } from '../storage/types.ts';
import { directoryError, type LdapSettings } from './ldap-connection.ts';

export interface DirectoryAccount {
  dn: string;
  name: string;
  fullName: string;
  addresses: string[];
  /** Group names (lower-case cn), direct and inherited, sorted. */
  groups: string[];
  /** The stable id (entryUUID; objectGUID as hex), or null when the entry has none. */
  id: string | null;
}

export interface DirectoryGroup {
  dn: string;
  name: string;
  members: string[];
}

export interface DirectoryRead {
  accounts: DirectoryAccount[];
  /** Entries that could not become accounts, with the reason. */
  problems: string[];
  groups: number;
}

/** DNs compared as the directory would for our purposes: case-insensitive, spaces around separators ignored. */
export function dnKey(dn: string): string {
  return dn.trim().toLowerCase().replace(/\s*([,=+])\s*/g, '$1');
}

/** Values of an attribute, whatever case the server spelled its name in. */
export function values(entry: Entry, attribute: string): string[] {
  const want = attribute.toLowerCase();
  for (const [k, v] of Object.entries(entry)) {
    if (k.toLowerCase() !== want || k === 'dn') continue;
    const list = Array.isArray(v) ? v : [v];
    return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
  }
  return [];
}

/** Mail addresses from attribute values: plain addresses, and AD proxyAddresses "smtp:"/"SMTP:" (primary first). */
export function mailAddresses(raw: readonly string[]): string[] {
  const primary: string[] = [];
  const rest: string[] = [];
  for (const v of raw) {
    const typed = /^([A-Za-z0-9]+):(.+)$/s.exec(v.trim());
    if (!typed) {
      rest.push(normalizeAddress(v));
      continue;
    }
    const [, type = '', address = ''] = typed;
    if (type.toLowerCase() !== 'smtp') continue; // another address type (X500:, SIP:, X400: …)
    (type === 'SMTP' ? primary : rest).push(normalizeAddress(address));
  }
  const out: string[] = [];
  const seen = new Set<string>();
  for (const a of [...primary, ...rest]) {
    if (!ADDRESS.test(a) || seen.has(addressKey(a))) continue;
    seen.add(addressKey(a));
    out.push(a);
  }
  return out;
}

/** A directory group name as a Postern group name (lower-case letters, digits, ".", "_", "-"), or null. */
export function groupName(cn: string): string | null {
  const n = cn.trim().toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 64).replace(/-+$/, '');
  return n === '' ? null : n;
}

/**
 * The names of every group an account is in: groups listing its DN (or named by its memberOf), then
 * the groups those are members of, up to `depth` levels above the direct ones; a cycle ends a path.
 */
export function groupsOf(accountDn: string, memberOf: readonly string[], groups: readonly DirectoryGroup[], depth: number): string[] {
  const byDn = new Map(groups.map((g) => [dnKey(g.dn), g]));
  const parents = new Map<string, string[]>();
  for (const g of groups) {
    for (const m of g.members) {
      const k = dnKey(m);
      const list = parents.get(k) ?? [];
      list.push(dnKey(g.dn));
      parents.set(k, list);
    }
  }
  const found = new Set<string>();
  let level = [...new Set([...(parents.get(dnKey(accountDn)) ?? []), ...memberOf.map(dnKey).filter((k) => byDn.has(k))])];
  for (let d = 0; d <= depth && level.length > 0; d++) {
    const next: string[] = [];
    for (const k of level) {
      if (found.has(k)) continue;
      found.add(k);
      for (const p of parents.get(k) ?? []) if (!found.has(p)) next.push(p);
    }
    level = next;
  }
  const names = new Set<string>();
  for (const k of found) {
    const g = byDn.get(k);
    if (g && g.name !== '') names.add(g.name);
  }
  return [...names].sort();
}

async function search(client: Client, s: LdapSettings, base: string, filter: string, attributes: string[], binary: string[]): Promise<Entry[]> {
  try {
    const { searchEntries } = await client.search(base, {
      scope: 'sub', filter, attributes, paged: { pageSize: 500 }, timeLimit: s.timeoutSeconds, explicitBufferAttributes: binary,
    });
    return searchEntries;
  } catch (err) {
    throw directoryError(s, `search under "${base}" with ${filter} failed`, err);
  }
}

/** Read every account and group, and shape the accounts (nested groups resolved). */
export async function readDirectory(client: Client, s: LdapSettings): Promise<DirectoryRead> {
  const a = s.attributes;
  const binaryId = a.id.toLowerCase() === 'objectguid';
  const groupEntries = await search(client, s, s.groupBaseDn || s.baseDn, s.groupFilter, [a.groupName, a.groupMembers], []);
  const groups: DirectoryGroup[] = groupEntries.map((e) => ({
    dn: e.dn, name: groupName(values(e, a.groupName)[0] ?? '') ?? '', members: values(e, a.groupMembers),
  }));
  const userEntries = await search(client, s, s.baseDn, s.userFilter, [a.name, a.fullName, ...a.addresses, a.groups, a.id], binaryId ? [a.id] : []);
  const accounts: DirectoryAccount[] = [];
  const problems: string[] = [];
  const names = new Set<string>();
  for (const e of userEntries) {
    const raw = values(e, a.name)[0]?.trim() ?? '';
    const name = raw.toLowerCase();
    if (!USER_NAME.test(name) || name.startsWith('_')) {
      problems.push(`"${e.dn}": account name ${raw === '' ? `(no ${a.name})` : `"${raw}"`} is not a valid user name`);
      continue;
    }
    if (names.has(name)) {
      problems.push(`"${e.dn}": account name "${name}" is used by another entry too`);
      continue;
    }
    names.add(name);
    const idValue = (e as Record<string, unknown>)[Object.keys(e).find((k) => k.toLowerCase() === a.id.toLowerCase()) ?? ''];
    const idBuf = Array.isArray(idValue) ? idValue[0] : idValue;
    const id = Buffer.isBuffer(idBuf) ? idBuf.toString('hex') : typeof idBuf === 'string' && idBuf !== '' ? idBuf.toLowerCase() : null;
    accounts.push({
      dn: e.dn, name, fullName: values(e, a.fullName)[0]?.trim().slice(0, 256) ?? '',
      addresses: mailAddresses(a.addresses.flatMap((attr) => values(e, attr))),
      groups: groupsOf(e.dn, values(e, a.groups), groups, s.nestedGroupDepth),
      id,
    });
  }
  return { accounts, problems, groups: groups.length };
}
