// `postern policy|hold|retention|delete|purge|auditor|privileges`: retention policies, legal holds,
// manual deletion, the purge and auditor accounts, through the running server's admin API. By default
// the CLI acts with the admin token; `--as USER` acts as that archive user instead (HTTP Basic with the
// password from POSTERN_PASSWORD), so the server checks that user's privileges (delete, compliance …).
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { request as httpsRequest } from 'node:https';
import type { Command } from 'commander';
import type { HoldRecord, HoldStatus, RetentionPolicy } from '../compliance/types.ts';
import type { PurgeRun } from '../compliance/service.ts';
import type { ArchiveEntry } from '../storage/types.ts';
import { AdminClientError, call, callJson, errorOf, type AdminTarget } from './client.ts';
import { count } from './text.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
interface AsOption { as?: string }
const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** A request as USER (Basic auth, password from POSTERN_PASSWORD) rather than with the token. */
async function requestAs(url: string, user: string, method: Method, path: string, body?: unknown): Promise<IncomingMessage> {
  const password = process.env.POSTERN_PASSWORD;
  if (!password) throw new AdminClientError(`--as ${user} needs the password of "${user}" in the environment variable POSTERN_PASSWORD`, null);
  const target = new URL(path, url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const auth = Buffer.from(`${user}:${password}`).toString('base64');
  const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, {
    method,
    headers: { authorization: `Basic ${auth}`, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
    ...(target.protocol === 'https:' ? { rejectUnauthorized: false } : {}),
    timeout: 30000,
  });
  return new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new AdminClientError(`Cannot reach the admin API at ${url}: ${err.message}`, null)));
    req.end(payload);
  });
}

/**
 * The error of a refused --as request: a 401 means the server took neither name and password nor the
 * privilege to sign in, and does not say which (no password oracle), so neither does this.
 */
async function refusedAs(res: IncomingMessage, user: string): Promise<AdminClientError> {
  if (res.statusCode === 401) {
    res.resume();
    return new AdminClientError(`Wrong user name or password for --as ${user} (POSTERN_PASSWORD), or "${user}" may not sign in (needs the "login" privilege)`, 401);
  }
  return errorOf(res);
}

/** A JSON call as USER; same errors as callJson. */
async function callAs<T>(url: string, user: string, method: Method, path: string, body?: unknown): Promise<T> {
  const res = await requestAs(url, user, method, path, body);
  if (res.statusCode === 401) throw await refusedAs(res, user);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024 * 1024) throw new AdminClientError('Admin API answer is too large', res.statusCode ?? null);
    parts.push(chunk);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw new AdminClientError(`Admin API answered ${res.statusCode} with a body that is not JSON`, res.statusCode ?? null);
  }
  if ((res.statusCode ?? 500) >= 400) throw new AdminClientError((parsed as { error?: string }).error ?? `HTTP ${res.statusCode}`, res.statusCode ?? null);
  return parsed as T;
}

export function addComplianceCommands(program: Command, target: () => AdminTarget): void {
  const api = <T>(o: AsOption, method: Method, path: string, body?: unknown): Promise<T> => {
    if (!o.as) return callJson<T>(target(), method, path, body);
    const url = program.opts<{ url?: string }>().url ?? target().url;
    return callAs<T>(url, o.as, method, path, body);
  };
  const asOption = (c: Command): Command => c.option('--as <user>', 'act as this archive user (password from POSTERN_PASSWORD) instead of with the admin token');
  const out = (text: string): void => void process.stdout.write(text + '\n');
  const enc = encodeURIComponent;

  // ---- policies ----
  const policy = program.command('policy').description('retention policies: minimum (earliest deletion) and maximum (automatic purge) per user, group, address, domain, folder or direction');
  asOption(policy.command('list').description('list policies (configured ones first; they can only be changed in the configuration)').option('--json', 'print JSON'))
    .action(async (o: AsOption & { json?: boolean }) => {
      const r = await api<{ policies: RetentionPolicy[] }>(o, 'GET', '/api/v1/policies');
      if (o.json) return out(JSON.stringify(r.policies, null, 2));
      for (const p of r.policies) out(`${p.name}\t${p.source}\tmin ${p.minimum}\tmax ${p.maximum ?? '-'}\t${JSON.stringify(p.match)}`);
    });
  asOption(policy.command('add <name>')
    .description('add a policy; retention of mail already archived never shortens (a new policy applies to new mail)')
    .requiredOption('--minimum <duration>', 'earliest deletion after archiving: 30d, 6w, 18m, 7y or forever')
    .option('--maximum <duration>', 'eligible for automatic purge after this (omit: never purged)')
    .option('--user <name>', 'match this user (repeatable)', collect)
    .option('--group <group>', 'match this group (repeatable)', collect)
    .option('--address <address>', 'match the owner or any participant address (repeatable)', collect)
    .option('--domain <domain>', 'match the owner or any participant domain (repeatable)', collect)
    .option('--folder <folder>', 'match this folder (repeatable)', collect)
    .option('--direction <direction>', 'received or sent'))
    .action(async (name: string, o: AsOption & { minimum: string; maximum?: string; user?: string[]; group?: string[]; address?: string[]; domain?: string[]; folder?: string[]; direction?: string }) => {
      const match = Object.fromEntries(Object.entries({ users: o.user, groups: o.group, addresses: o.address, domains: o.domain, folders: o.folder, direction: o.direction }).filter(([, v]) => v !== undefined));
      const r = await api<{ policy: RetentionPolicy }>(o, 'POST', '/api/v1/policies', { name, match, minimum: o.minimum, ...(o.maximum ? { maximum: o.maximum } : {}) });
      out(`Added policy ${r.policy.name} (minimum ${r.policy.minimum}, maximum ${r.policy.maximum ?? 'none'})`);
    });
  asOption(policy.command('remove <name>').description('remove a stored policy (entries keep the retention they were given)'))
    .action(async (name: string, o: AsOption) => {
      await api(o, 'DELETE', `/api/v1/policies/${enc(name)}`);
      out(`Removed policy ${name}`);
    });

  // ---- holds ----
  const hold = program.command('hold').description('legal holds: held mail cannot be deleted or purged by any path');
  asOption(hold.command('create <name>')
    .description('create a hold over users, participant addresses, a date range and/or a header search (criteria are ANDed)')
    .option('--description <text>', 'what the case is')
    .option('--user <name>', 'hold this user\'s archive (repeatable)', collect)
    .option('--address <address>', 'hold mail with this participant: From/To/Cc or envelope (repeatable)', collect)
    .option('--from <date>', 'date range start (ISO, inclusive)')
    .option('--to <date>', 'date range end (ISO, inclusive)')
    .option('--date-field <field>', 'date range applies to the message "date" header or "archivedAt"', 'date')
    .option('--query <expression>', 'header search: field:value terms ANDed; fields from, to, cc, subject, message-id, participant'))
    .action(async (name: string, o: AsOption & { description?: string; user?: string[]; address?: string[]; from?: string; to?: string; dateField: string; query?: string }) => {
      const scope = {
        ...(o.user ? { users: o.user } : {}), ...(o.address ? { addresses: o.address } : {}), ...(o.query ? { query: o.query } : {}),
        ...(o.from || o.to ? { dateRange: { field: o.dateField, ...(o.from ? { from: o.from } : {}), ...(o.to ? { to: o.to } : {}) } } : {}),
      };
      const r = await api<{ hold: HoldRecord }>(o, 'POST', '/api/v1/holds', { name, scope, ...(o.description ? { description: o.description } : {}) });
      out(`Created hold ${r.hold.name}: ${JSON.stringify(r.hold.scope)}`);
    });
  asOption(hold.command('release <name>').description('release a hold (kept in the list with --all, for the record)'))
    .action(async (name: string, o: AsOption) => {
      const r = await api<{ hold: HoldRecord }>(o, 'POST', `/api/v1/holds/${enc(name)}/release`);
      out(`Released hold ${r.hold.name} at ${r.hold.releasedAt ?? ''}`);
    });
  asOption(hold.command('list').description('list active holds and the hold-everything switch').option('--all', 'include released holds').option('--json', 'print JSON'))
    .action(async (o: AsOption & { all?: boolean; json?: boolean }) => {
      const r = await api<{ holds: HoldRecord[]; holdEverything: { stored: boolean; configured: boolean } }>(o, 'GET', `/api/v1/holds${o.all ? '?all=1' : ''}`);
      if (o.json) return out(JSON.stringify(r, null, 2));
      out(`Hold everything: ${r.holdEverything.stored || r.holdEverything.configured ? 'ON' : 'off'}${r.holdEverything.configured ? ' (configuration)' : ''}`);
      for (const h of r.holds) out(`${h.name}\t${h.releasedAt ? `released ${h.releasedAt}` : 'active'}\t${h.createdAt} by ${h.createdBy}\t${JSON.stringify(h.scope)}`);
    });
  asOption(hold.command('show <name>').description('show one hold').option('--json', 'print JSON'))
    .action(async (name: string, o: AsOption & { json?: boolean }) => {
      const { hold: h } = await api<{ hold: HoldRecord }>(o, 'GET', `/api/v1/holds/${enc(name)}`);
      if (o.json) return out(JSON.stringify(h, null, 2));
      out([`Hold:        ${h.name}`, `Description: ${h.description || '-'}`, `Scope:       ${JSON.stringify(h.scope)}`, `Created:     ${h.createdAt} by ${h.createdBy}`,
        `Released:    ${h.releasedAt ? `${h.releasedAt} by ${h.releasedBy ?? ''}` : 'no (active)'}`].join('\n'));
    });
  asOption(hold.command('everything <state>').description('switch hold-everything "on" or "off" (nothing can be deleted or purged while on)'))
    .action(async (state: string, o: AsOption) => {
      if (state !== 'on' && state !== 'off') throw new AdminClientError(`State "${state}" must be "on" or "off"`, null);
      await api(o, 'PUT', '/api/v1/hold-everything', { on: state === 'on' });
      out(`Hold everything ${state}`);
    });

  // ---- retention, deletion, purge ----
  const retention = program.command('retention').description("an entry's retention and what holds it");
  asOption(retention.command('show <user> <uid>').description('retainUntil, purgeAfter and the holds protecting an entry').option('-f, --folder <folder>', 'folder', 'Inbox').option('--json', 'print JSON'))
    .action(async (user: string, uid: string, o: AsOption & { folder: string; json?: boolean }) => {
      const r = await api<HoldStatus>(o, 'GET', `/api/v1/retention/${enc(user)}/${enc(uid)}?${new URLSearchParams({ folder: o.folder })}`);
      if (o.json) return out(JSON.stringify(r, null, 2));
      out(`Retain until: ${r.retention?.retainUntil ?? '-'}\nPurge after:  ${r.retention?.purgeAfter ?? 'never'}\nHeld:         ${r.held ? r.reasons.join(', ') : 'no'}`);
    });
  asOption(retention.command('extend <user> <uid> <until>').description('extend retainUntil to an ISO date (shortening is refused)').option('-f, --folder <folder>', 'folder', 'Inbox'))
    .action(async (user: string, uid: string, until: string, o: AsOption & { folder: string }) => {
      await api(o, 'POST', `/api/v1/retention/${enc(user)}/${enc(uid)}/extend`, { folder: o.folder, retainUntil: until });
      out(`Retention of ${user}/${o.folder}/${uid} extended to ${until}`);
    });
  asOption(program.command('delete <user> <folder> <uid>')
    .description('delete one archived entry (needs the delete privilege; refused while held or before its minimum retention)'))
    .action(async (user: string, folder: string, uid: string, o: AsOption) => {
      if (!/^\d{1,10}$/.test(uid)) throw new AdminClientError(`UID "${uid}" must be a number`, null);
      const r = await api<{ deleted: number; messagesRemoved: number; blobsRemoved: number }>(o, 'POST', '/api/v1/entries/delete', { entries: [{ user, folder, uid: Number(uid) }] });
      out(`Deleted ${count(r.deleted, 'entry', 'entries')} (${count(r.messagesRemoved, 'message')} and ${count(r.blobsRemoved, 'blob')} removed)`);
    });
  asOption(program.command('purge')
    .description('delete every entry past its maximum retention, in bounded batches, skipping held ones')
    .option('--dry-run', 'only count what would be deleted')
    .option('--batch-size <n>', 'entries examined per batch (1-10000)', '500')
    .option('--json', 'print JSON'))
    .action(async (o: AsOption & { dryRun?: boolean; batchSize: string; json?: boolean }) => {
      const r = await api<PurgeRun>(o, 'POST', '/api/v1/purge', { dryRun: o.dryRun === true, batchSize: Number(o.batchSize) });
      if (o.json) return out(JSON.stringify(r, null, 2));
      out(`${r.dryRun ? 'Dry run: would delete' : 'Deleted'} ${count(r.deleted, 'entry', 'entries')} (${count(r.messagesRemoved, 'message')}, ${count(r.blobsRemoved, 'blob')} removed); skipped ${r.skippedHeld} held, ${r.skippedVetoed} vetoed; ${r.scanned} examined in ${count(r.batches, 'batch', 'batches')}`);
    });

  // ---- auditors and privileges ----
  const auditor = program.command('auditor').description('auditor accounts: read every archive, change nothing');
  asOption(auditor.command('create').description('create auditor-YYYYMMDD-HHMMSS with a generated password (printed once)'))
    .action(async (o: AsOption) => {
      const r = await api<{ name: string; password: string }>(o, 'POST', '/api/v1/auditors');
      out(`Auditor: ${r.name}\nPassword: ${r.password}\n(The password is shown only now.)`);
    });
  asOption(auditor.command('list <user>')
    .description("list a user's archived messages (as an auditor: --as auditor-…): UID, date, from, subject")
    .option('-f, --folder <folder>', 'folder', 'Inbox')
    .option('--after-uid <uid>', 'only messages with a larger UID', '0')
    .option('--limit <n>', 'at most this many', '1000'))
    .action(async (user: string, o: AsOption & { folder: string; afterUid: string; limit: string }) => {
      const q = new URLSearchParams({ folder: o.folder, afterUid: o.afterUid, limit: o.limit });
      const r = await api<{ entries: ArchiveEntry[] }>(o, 'GET', `/api/v1/archive/${enc(user)}/messages?${q}`);
      const flat = (t: string): string => t.replace(/[\t\r\n]+/g, ' ');
      for (const e of r.entries) out(`${e.uid}\t${e.date ?? e.internalDate}\t${flat(e.from)}\t${flat(e.subject)}`);
    });
  asOption(auditor.command('get <user> <uid>')
    .description("write the original bytes of any user's message to standard output (as an auditor: --as auditor-…)")
    .option('-f, --folder <folder>', 'folder', 'Inbox'))
    .action(async (user: string, uid: string, o: AsOption & { folder: string }) => {
      const path = `/api/v1/archive/${enc(user)}/messages/${enc(uid)}/raw?${new URLSearchParams({ folder: o.folder })}`;
      const res = o.as ? await requestAs(program.opts<{ url?: string }>().url ?? target().url, o.as, 'GET', path) : await call(target(), 'GET', path);
      if ((res.statusCode ?? 500) >= 400) throw o.as ? await refusedAs(res, o.as) : await errorOf(res);
      await pipeline(res, process.stdout);
    });
  asOption(program.command('privileges <user>')
    .description('grant or revoke privileges: admin, login, archive, export, delete, compliance, auditor')
    .option('--add <privilege>', 'grant (repeatable)', collect)
    .option('--remove <privilege>', 'revoke (repeatable)', collect))
    .action(async (user: string, o: AsOption & { add?: string[]; remove?: string[] }) => {
      const r = await api<{ name: string; privileges: string[] }>(o, 'PATCH', `/api/v1/privileges/${enc(user)}`, { add: o.add ?? [], remove: o.remove ?? [] });
      out(`${r.name}: ${r.privileges.join(', ') || '(none)'}`);
    });
}
