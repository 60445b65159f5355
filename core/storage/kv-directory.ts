// The user directory of the embedded archive: users with addresses, owned domains and POP3 logins,
// with in-memory indexes (the directory is small and read for every participant of every message).
// Changes are serialised and written in one synced batch each, so no identity ever has two owners.
// Users carry their full name and, for accounts the directory sync keeps, the DN and directory id.
import { PosternError } from '../errors.ts';
import { isShared, type KvEngine, type KvOp } from './kv.ts';
import { keys, prefixEnd } from './kv-keys.ts';
import { ADDRESS, DOMAIN, GROUP_NAME, PRIVILEGES, USER_NAME, USER_SOURCES, addressKey, normalizeAddress, type NewUser, type Privilege, type UserChange, type UserRecord } from './types.ts';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

type Identity = 'address' | 'domain' | 'pop3';
const KEY_OF: Record<Identity, (v: string) => string> = { address: keys.address, domain: keys.domain, pop3: keys.pop3 };

export class KvDirectory {
  private readonly index: Record<Identity, Map<string, string>> = { address: new Map(), domain: new Map(), pop3: new Map() };
  private chain: Promise<unknown> = Promise.resolve();

  /** A change runs as one step of a shared engine's cluster-wide writer (else as is). */
  private readonly step: <T>(fn: () => Promise<T>) => Promise<T>;

  constructor(private readonly kv: KvEngine) {
    this.step = isShared(kv) ? (fn) => kv.shared.serialize(fn) : (fn) => fn();
  }

  /**
   * Replaces the index only once the users are read: a lookup never sees it half-built, and a read that
   * fails (a shared engine unreachable) keeps the old index instead of an empty one, which would route
   * every message to the unmatched archive.
   */
  async load(): Promise<void> {
    const users = await this.list();
    for (const m of Object.values(this.index)) m.clear();
    for (const u of users) this.indexUser(u, u.name);
  }

  /** load() queued behind this node's own changes, so a reload never interleaves with one. */
  reload(): Promise<void> {
    const run = this.chain.then(() => this.load());
    this.chain = run.catch(() => undefined);
    return run;
  }

  private indexUser(u: UserRecord, owner: string | null): void {
    const set = (kind: Identity, k: string): void => {
      if (owner === null) this.index[kind].delete(k);
      else this.index[kind].set(k, owner);
    };
    for (const a of u.addresses) set('address', addressKey(a));
    for (const d of u.domains) set('domain', d);
    for (const p of u.pop3Users) set('pop3', p);
  }

  /** Directory changes are rare; serialise them so two changes cannot claim one identity. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => this.step(fn));
    this.chain = run.catch(() => undefined);
    return run;
  }

  add(user: NewUser): Promise<UserRecord> {
    return this.serial(async () => {
      if (!USER_NAME.test(user.name)) throw new PosternError('INVALID_INPUT', `User name "${user.name}" must match ${USER_NAME.source}`);
      if (await this.kv.get(keys.user(user.name))) throw new PosternError('CONFLICT', `User "${user.name}" already exists`);
      const empty: UserRecord = {
        name: user.name, addresses: [], domains: [], pop3Users: [], createdAt: new Date().toISOString(),
        passwordHash: null, privileges: [], groups: [], imapAccess: false, webAccess: false,
        fullName: '', source: 'local', dn: null, directoryId: null, disabled: false,
      };
      return this.write(empty, {
        addAddresses: user.addresses, addDomains: user.domains ?? [], addPop3Users: user.pop3Users ?? [],
        ...(user.passwordHash !== undefined ? { passwordHash: user.passwordHash } : {}),
        addPrivileges: user.privileges ?? [], addGroups: user.groups ?? [],
        ...(user.imapAccess !== undefined ? { imapAccess: user.imapAccess } : {}),
        ...(user.webAccess !== undefined ? { webAccess: user.webAccess } : {}),
        ...(user.fullName !== undefined ? { fullName: user.fullName } : {}),
        ...(user.source !== undefined ? { source: user.source } : {}),
        ...(user.dn !== undefined ? { dn: user.dn } : {}),
        ...(user.directoryId !== undefined ? { directoryId: user.directoryId } : {}),
        ...(user.disabled !== undefined ? { disabled: user.disabled } : {}),
      }, true);
    });
  }

  update(name: string, change: UserChange): Promise<UserRecord> {
    return this.serial(async () => {
      const current = await this.get(name);
      if (!current) throw new PosternError('NOT_FOUND', `User "${name}" does not exist`);
      return this.write(current, change, false);
    });
  }

  remove(name: string): Promise<void> {
    return this.serial(async () => {
      const current = await this.get(name);
      if (!current) throw new PosternError('NOT_FOUND', `User "${name}" does not exist`);
      const ops: KvOp[] = [{ type: 'del', key: keys.user(name) }];
      for (const a of current.addresses) ops.push({ type: 'del', key: keys.address(addressKey(a)) });
      for (const d of current.domains) ops.push({ type: 'del', key: keys.domain(d) });
      for (const p of current.pop3Users) ops.push({ type: 'del', key: keys.pop3(p) });
      await this.kv.write(ops, { sync: true });
      this.indexUser(current, null);
    });
  }

  /**
   * Run fn with directory changes held off (a rename builds its batch from the directory and the
   * archive at once); fn gets the current record and returns the ops and the renamed record to index.
   */
  rename(from: string, to: string, build: (current: UserRecord) => Promise<{ ops: KvOp[]; next: UserRecord }>): Promise<UserRecord> {
    return this.serial(async () => {
      const current = await this.get(from);
      if (!current) throw new PosternError('NOT_FOUND', `User "${from}" does not exist`);
      if (!USER_NAME.test(to)) throw new PosternError('INVALID_INPUT', `User name "${to}" must match ${USER_NAME.source}`);
      if (await this.kv.get(keys.user(to))) throw new PosternError('CONFLICT', `User "${to}" already exists`);
      const { ops, next } = await build(current);
      ops.push({ type: 'del', key: keys.user(from) }, { type: 'put', key: keys.user(to), value: json(next) });
      for (const a of current.addresses) ops.push({ type: 'put', key: keys.address(addressKey(a)), value: Buffer.from(to) });
      for (const d of current.domains) ops.push({ type: 'put', key: keys.domain(d), value: Buffer.from(to) });
      for (const p of current.pop3Users) ops.push({ type: 'put', key: keys.pop3(p), value: Buffer.from(to) });
      await this.kv.write(ops, { sync: true });
      this.indexUser(current, null);
      this.indexUser(next, to);
      return next;
    });
  }

  private async write(current: UserRecord, change: UserChange, isNew: boolean): Promise<UserRecord> {
    const next = { ...current };
    const ops: KvOp[] = [];
    const apply = (kind: Identity, list: string[], add: string[] | undefined, remove: string[] | undefined, canon: (v: string) => string, valid: (v: string) => boolean, what: string): string[] => {
      let out = [...list];
      for (const raw of remove ?? []) {
        const v = canon(raw);
        const k = kind === 'address' ? addressKey(v) : v;
        const before = out.length;
        out = out.filter((x) => (kind === 'address' ? addressKey(x) : x) !== k);
        if (out.length === before) throw new PosternError('NOT_FOUND', `User "${current.name}" has no ${what} "${v}"`);
        ops.push({ type: 'del', key: KEY_OF[kind](k) });
      }
      for (const raw of add ?? []) {
        const v = canon(raw);
        if (!valid(v)) throw new PosternError('INVALID_INPUT', `${what[0]?.toUpperCase()}${what.slice(1)} "${v}" is not valid`);
        const k = kind === 'address' ? addressKey(v) : v;
        const owner = this.index[kind].get(k);
        if (owner && owner !== current.name) throw new PosternError('CONFLICT', `${what[0]?.toUpperCase()}${what.slice(1)} "${v}" already belongs to user "${owner}"`);
        if (out.some((x) => (kind === 'address' ? addressKey(x) : x) === k)) continue;
        out.push(v);
        ops.push({ type: 'put', key: KEY_OF[kind](k), value: Buffer.from(current.name) });
      }
      return out;
    };
    next.addresses = apply('address', current.addresses, change.addAddresses, change.removeAddresses, normalizeAddress, (v) => ADDRESS.test(v), 'address');
    next.domains = apply('domain', current.domains, change.addDomains, change.removeDomains, (v) => v.trim().toLowerCase().replace(/^@/, ''), (v) => DOMAIN.test(v), 'domain');
    next.pop3Users = apply('pop3', current.pop3Users, change.addPop3Users, change.removePop3Users, (v) => v.trim(), (v) => /^[^\s\0]{1,255}$/.test(v), 'POP3 user');
    const account = applyAccount(current, change);
    Object.assign(next, account.record);
    if (!isNew && ops.length === 0 && !account.changed) return current;
    ops.push({ type: 'put', key: keys.user(current.name), value: json(next) });
    await this.kv.write(ops, { sync: true });
    this.indexUser(current, null);
    this.indexUser(next, next.name);
    return next;
  }

  async get(name: string): Promise<UserRecord | null> {
    const raw = await this.kv.get(keys.user(name));
    return raw ? upgrade(JSON.parse(raw.toString('utf8')) as Partial<UserRecord> & { name: string }) : null;
  }

  async list(): Promise<UserRecord[]> {
    const out: UserRecord[] = [];
    const prefix = keys.userPrefix();
    for await (const [, v] of this.kv.entries({ gte: prefix, lt: prefixEnd(prefix) })) out.push(upgrade(JSON.parse(v.toString('utf8')) as Partial<UserRecord> & { name: string }));
    return out;
  }

  byAddress(address: string): string | null {
    return this.index.address.get(addressKey(address)) ?? null;
  }

  byDomain(domain: string): string | null {
    return this.index.domain.get(domain.trim().toLowerCase()) ?? null;
  }

  byPop3User(login: string): string | null {
    return this.index.pop3.get(login.trim()) ?? null;
  }
}

type AccountFields = 'passwordHash' | 'privileges' | 'groups' | 'imapAccess' | 'webAccess' | 'fullName' | 'source' | 'dn' | 'directoryId' | 'disabled';

/** Password, privileges, groups, access flags and directory fields after a change (validated), and whether anything changed. */
function applyAccount(current: UserRecord, change: UserChange): { record: Pick<UserRecord, AccountFields>; changed: boolean } {
  const edit = <T extends string>(list: T[], add: T[] | undefined, remove: T[] | undefined, valid: (v: string) => boolean, what: string): T[] => {
    for (const v of [...(add ?? []), ...(remove ?? [])]) {
      if (!valid(v)) throw new PosternError('INVALID_INPUT', `${what} "${v}" is not valid`);
    }
    const drop = new Set(remove ?? []);
    const out = list.filter((v) => !drop.has(v));
    for (const v of add ?? []) if (!out.includes(v)) out.push(v);
    return out;
  };
  if (change.passwordHash !== undefined && change.passwordHash !== null && !/^scrypt\$/.test(change.passwordHash)) {
    throw new PosternError('INVALID_INPUT', 'Password hash must be a scrypt hash');
  }
  const record = {
    passwordHash: change.passwordHash !== undefined ? change.passwordHash : current.passwordHash,
    privileges: edit<Privilege>(current.privileges, change.addPrivileges, change.removePrivileges, (v) => (PRIVILEGES as readonly string[]).includes(v), 'Privilege'),
    groups: edit(current.groups, change.addGroups?.map((g) => g.toLowerCase()), change.removeGroups?.map((g) => g.toLowerCase()), (v) => GROUP_NAME.test(v), 'Group'),
    imapAccess: change.imapAccess ?? current.imapAccess,
    webAccess: change.webAccess ?? current.webAccess,
    fullName: change.fullName !== undefined ? change.fullName.trim().slice(0, 256) : current.fullName,
    source: change.source ?? current.source,
    dn: change.dn !== undefined ? change.dn : current.dn,
    directoryId: change.directoryId !== undefined ? change.directoryId : current.directoryId,
    disabled: change.disabled ?? current.disabled,
  };
  if (!(USER_SOURCES as readonly string[]).includes(record.source)) throw new PosternError('INVALID_INPUT', `Account source "${record.source}" is not valid`);
  if (record.dn !== null && (record.dn.length > 1024 || record.dn.trim() === '')) throw new PosternError('INVALID_INPUT', 'A distinguished name must be 1 to 1024 characters');
  const changed = record.passwordHash !== current.passwordHash || record.imapAccess !== current.imapAccess || record.webAccess !== current.webAccess
    || record.privileges.join() !== current.privileges.join() || record.groups.join() !== current.groups.join()
    || record.fullName !== current.fullName || record.source !== current.source || record.dn !== current.dn
    || record.directoryId !== current.directoryId || record.disabled !== current.disabled;
  return { record, changed };
}

/** Records written before a field existed read with its empty default. */
function upgrade(u: Partial<UserRecord> & { name: string }): UserRecord {
  return {
    name: u.name, addresses: u.addresses ?? [], domains: u.domains ?? [], pop3Users: u.pop3Users ?? [], createdAt: u.createdAt ?? '',
    passwordHash: u.passwordHash ?? null, privileges: u.privileges ?? [], groups: u.groups ?? [], imapAccess: u.imapAccess ?? false,
    webAccess: u.webAccess ?? false, fullName: u.fullName ?? '', source: u.source ?? 'local', dn: u.dn ?? null,
    directoryId: u.directoryId ?? null, disabled: u.disabled ?? false,
  };
}
