// The directory sync's decision, as a pure function: from the accounts the directory holds and the users
// Postern holds, what to create, rename, change, disable or remove. Only users whose source is
// "directory" are ever changed or disabled; a local user with an account's name is reported, not taken
// over. An account is matched by its stable id first (so a renamed directory account renames the user
// and keeps the archive), then by name. Addresses and groups of directory users follow the directory
// (groups given to new users by configuration are kept). An empty directory answer disables nobody.
import type { NewUser, UserChange, UserRecord } from '../storage/types.ts';
import { addressKey, isSystemUser } from '../storage/types.ts';
import type { DirectoryAccount } from './ldap-accounts.ts';
import type { LdapSettings } from './ldap-connection.ts';

export interface PlannedUpdate {
  name: string;
  change: UserChange;
  /** Readable list of what changes ("+address a@b", "fullName", "enable" …). */
  what: string[];
}

export interface SyncPlan {
  create: NewUser[];
  rename: Array<{ from: string; to: string }>;
  update: PlannedUpdate[];
  disable: string[];
  remove: string[];
  unchanged: number;
  problems: string[];
}

const byKey = (list: readonly string[]): Map<string, string> => new Map(list.map((a) => [addressKey(a), a]));

export function planSync(accounts: readonly DirectoryAccount[], users: readonly UserRecord[], s: Pick<LdapSettings, 'newUsers' | 'removed'>): SyncPlan {
  const plan: SyncPlan = { create: [], rename: [], update: [], disable: [], remove: [], unchanged: 0, problems: [] };
  const byName = new Map(users.map((u) => [u.name, u]));
  const byId = new Map(users.filter((u) => u.source === 'directory' && u.directoryId).map((u) => [u.directoryId as string, u]));
  const owner = new Map<string, string>();
  for (const u of users) for (const a of u.addresses) owner.set(addressKey(a), u.name);
  const matched = new Set<string>();

  for (const account of accounts) {
    let user = (account.id !== null ? byId.get(account.id) : undefined) ?? byName.get(account.name);
    if (user && user.source !== 'directory') {
      plan.problems.push(`Local user "${user.name}" has the name of directory account "${account.dn}"; it is left alone`);
      continue;
    }
    if (user && user.directoryId !== null && account.id !== null && user.directoryId !== account.id) {
      plan.problems.push(`User "${user.name}" belongs to another directory account (id ${user.directoryId}); "${account.dn}" is left out`);
      continue;
    }
    // Addresses someone outside the directory owns stay theirs.
    const addresses = account.addresses.filter((a) => {
      const o = owner.get(addressKey(a));
      const mine = o === undefined || o === user?.name || byName.get(o)?.source === 'directory';
      if (!mine) plan.problems.push(`Address "${a}" of directory account "${account.name}" belongs to local user "${o}"; left out`);
      return mine;
    });
    if (!user) {
      if (byName.has(account.name)) continue; // reported above
      plan.create.push({
        name: account.name, addresses, fullName: account.fullName, source: 'directory', dn: account.dn, directoryId: account.id,
        privileges: [...s.newUsers.privileges], groups: [...new Set([...account.groups, ...s.newUsers.groups])],
        imapAccess: s.newUsers.imapAccess, webAccess: s.newUsers.webAccess,
      });
      continue;
    }
    matched.add(user.name);
    if (user.name !== account.name) {
      const taken = byName.get(account.name);
      if (taken) {
        plan.problems.push(`Directory account "${account.dn}" was renamed to "${account.name}", which user "${taken.name}" has; not renamed`);
      } else {
        plan.rename.push({ from: user.name, to: account.name });
        user = { ...user, name: account.name };
      }
    }
    const update = changeFor(user, { ...account, addresses }, s.newUsers.groups);
    if (update.what.length > 0) plan.update.push(update);
    else if (!plan.rename.some((r) => r.to === user.name)) plan.unchanged += 1;
  }

  const gone = users.filter((u) => u.source === 'directory' && !matched.has(u.name) && !isSystemUser(u.name));
  if (accounts.length === 0 && gone.length > 0) {
    plan.problems.push(`The directory returned no accounts; none of the ${gone.length} directory users is ${s.removed === 'remove' ? 'removed' : 'disabled'} (check baseDn and userFilter)`);
    return plan;
  }
  for (const u of gone) {
    if (s.removed === 'remove') plan.remove.push(u.name);
    else if (!u.disabled) plan.disable.push(u.name);
    else plan.unchanged += 1;
  }
  return plan;
}

/** What must change on a directory user to match their account. */
function changeFor(user: UserRecord, account: DirectoryAccount, keptGroups: readonly string[]): PlannedUpdate {
  const change: UserChange = {};
  const what: string[] = [];
  const have = byKey(user.addresses);
  const want = byKey(account.addresses);
  const add = [...want].filter(([k]) => !have.has(k)).map(([, a]) => a);
  const remove = [...have].filter(([k]) => !want.has(k)).map(([, a]) => a);
  if (add.length > 0) (change.addAddresses = add, what.push(...add.map((a) => `+address ${a}`)));
  if (remove.length > 0) (change.removeAddresses = remove, what.push(...remove.map((a) => `-address ${a}`)));
  const addGroups = account.groups.filter((g) => !user.groups.includes(g));
  const removeGroups = user.groups.filter((g) => !account.groups.includes(g) && !keptGroups.includes(g));
  if (addGroups.length > 0) (change.addGroups = addGroups, what.push(...addGroups.map((g) => `+group ${g}`)));
  if (removeGroups.length > 0) (change.removeGroups = removeGroups, what.push(...removeGroups.map((g) => `-group ${g}`)));
  if (account.fullName !== user.fullName) (change.fullName = account.fullName, what.push('fullName'));
  if (account.dn !== user.dn) (change.dn = account.dn, what.push('dn'));
  if (account.id !== null && account.id !== user.directoryId) (change.directoryId = account.id, what.push('directoryId'));
  if (user.disabled) (change.disabled = false, what.push('enable'));
  return { name: user.name, change, what };
}
