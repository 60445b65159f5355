// The `postern` command. `serve` runs the gateway; every other command talks to the running server
// through the admin API (never to the database directly). `--help` works on every command.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { Command, Option } from 'commander';
import { loadConfig, envVariables, ConfigError } from '../config/load.ts';
import { pluginEnvVariables, resolvePlugins } from '../app/app.ts';
import { hashPassword } from '../smtp/password.ts';
import { createLogger } from '../log.ts';
import { unknownEnvVariables, unknownEnvWarning } from '../config/unknown-env.ts';
import { isSystemUser, type ArchiveEntry, type UserRecord } from '../storage/types.ts';
import { AdminClientError, adminUrl, call, callJson, errorOf, targetFromConfig, type AdminTarget } from './client.ts';
import { addImapCommands } from './imap-commands.ts';
import { addWebCommands } from './web-commands.ts';
import { addDirectoryCommands } from './directory-commands.ts';
import { addAuditCommands } from './audit-commands.ts';
import { addImportCommands } from './import-commands.ts';
import { addJobsCommands } from './jobs-commands.ts';
import { addIntakeCommands } from './intake-commands.ts';
import { addComplianceCommands } from './compliance-commands.ts';
import { addExportCommands } from './export-commands.ts';
import { addSearchCommands } from './search-commands.ts';
import { addSessionCommands } from './session-commands.ts';
import { addBackupCommands } from './backup-commands.ts';
import { addMigrateCommands } from './migrate-commands.ts';
import { resolveFolder, type FolderNames } from './folders.ts';
import { count } from './text.ts';

const DEFAULT_CONFIG = fileURLToPath(new URL('../../config/postern.yaml', import.meta.url));

/** A reader that went away (`postern … | head`) ends the command quietly, as other Unix tools do. */
function isClosedPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'EPIPE';
}
process.stdout.on('error', (err) => {
  if (isClosedPipe(err)) process.exit(0);
  throw err;
});

interface GlobalOptions {
  config?: string;
  url?: string;
  tokenFile?: string;
}

const program = new Command('postern')
  .description('Postern: mail journaling gateway. Captures, routes and archives every mail durably.')
  .version('0.1.0')
  .addOption(new Option('-c, --config <file>', 'configuration file').default(DEFAULT_CONFIG, 'config/postern.yaml').env('POSTERN_CONFIG'))
  .option('--url <url>', 'admin API URL (default: from the configuration)')
  .option('--token-file <file>', 'admin API token file (default: <dataDir>/admin.token)')
  .showHelpAfterError();

function configFile(opts: GlobalOptions): string | null {
  const file = opts.config ?? DEFAULT_CONFIG;
  if (file === DEFAULT_CONFIG && !existsSync(file)) return null;
  return file;
}

function target(): AdminTarget {
  const opts = program.opts<GlobalOptions>();
  const { config } = loadConfig(configFile(opts));
  return targetFromConfig(config, { url: opts.url, tokenFile: opts.tokenFile });
}

/** The received and sent folder names of the configuration (the same file and environment the server reads). */
function folderNames(): FolderNames {
  const { routing } = loadConfig(configFile(program.opts<GlobalOptions>())).config;
  return { received: routing.receivedFolder, sent: routing.sentFolder };
}

/** Warnings about POSTERN_* variables that set nothing (misspelt overrides). */
async function envWarnings(): Promise<string[]> {
  const plugins = (await pluginEnvVariables()).map((v) => v.name);
  return unknownEnvVariables(process.env, plugins).map(unknownEnvWarning);
}

program.command('serve')
  .description('run the gateway in the foreground (SMTP endpoint, archiving, admin API)')
  .action(async () => {
    const file = configFile(program.opts<GlobalOptions>());
    const warnings = await envWarnings();
    if (warnings.length > 0) {
      // Logged once at start, in the server's log format (the server's logger exists only inside serve()).
      const { log: logConfig } = loadConfig(file).config;
      const log = createLogger({ level: logConfig.level, format: logConfig.format === 'auto' ? (process.stderr.isTTY ? 'pretty' : 'json') : logConfig.format });
      for (const w of warnings) log.warn(w);
    }
    const { serve } = await import('../app/serve.ts');
    await serve(file);
  });

const config = program.command('config').description('check configuration and make credentials');
config.command('check')
  .description('validate the configuration file, environment overrides and plugin settings')
  .action(async () => {
    const file = configFile(program.opts<GlobalOptions>());
    const loaded = loadConfig(file);
    await resolvePlugins(loaded.config.plugins, loaded.where);
    const env = loaded.fromEnv.length ? ` (overridden by ${loaded.fromEnv.join(', ')})` : '';
    process.stdout.write(`${file ?? 'defaults'}: OK${env}\n`);
    for (const w of await envWarnings()) process.stderr.write(`postern: warning: ${w}\n`);
  });
config.command('env')
  .description('list every environment variable that overrides a setting')
  .action(async () => {
    for (const v of envVariables()) process.stdout.write(`${v.name}\t${v.path.join('.')}\t(default ${JSON.stringify(v.sample)})\n`);
    for (const v of await pluginEnvVariables()) process.stdout.write(`${v.name}\tplugins[${v.plugin}].config.${v.path}\t(plugin ${v.plugin})\n`);
  });
config.command('hash-password')
  .description('read a password from standard input and print a hash for smtp.auth.users')
  .action(async () => {
    const parts: Buffer[] = [];
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) parts.push(chunk);
    const password = Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
    if (password === '') throw new AdminClientError('No password on standard input', null);
    process.stdout.write((await hashPassword(password)) + '\n');
  });

const user = program.command('user').description('manage users whose mail is archived');
const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function printUser(u: UserRecord): void {
  process.stdout.write([
    `User:      ${u.name}${u.disabled ? ' (disabled)' : ''}`,
    `Full name: ${u.fullName || '-'}`,
    `Source:    ${u.source}${u.dn ? ` (${u.dn})` : ''}`,
    `Addresses: ${u.addresses.join(', ') || '-'}`,
    `Domains:   ${u.domains.join(', ') || '-'}`,
    `POP3:      ${u.pop3Users.join(', ') || '-'}`,
    `Groups:    ${u.groups.join(', ') || '-'}`,
    `Privileges: ${u.privileges.join(', ') || '-'}`,
    `IMAP:      ${u.imapAccess ? 'on' : 'off'}`,
    `Web:       ${u.webAccess ? 'on' : 'off'}`,
    `Created:   ${u.createdAt}`,
  ].join('\n') + '\n');
}

user.command('add <name>')
  .description('add a user with addresses (aliases), owned domains and POP3 logins')
  .option('-a, --address <address>', 'mail address of the user (repeatable)', collect)
  .option('-d, --domain <domain>', 'a whole domain this user owns (repeatable)', collect)
  .option('-p, --pop3-user <login>', 'a POP3 login name of this user (repeatable)', collect)
  .option('-g, --group <group>', 'a group the user belongs to (retention rules, IMAP accessGroups; repeatable)', collect)
  .option('--full-name <name>', "the person's display name")
  .action(async (name: string, opts: { address?: string[]; domain?: string[]; pop3User?: string[]; group?: string[]; fullName?: string }) => {
    const res = await callJson<{ user: UserRecord }>(target(), 'POST', '/api/v1/users', {
      name, addresses: opts.address ?? [], domains: opts.domain ?? [], pop3Users: opts.pop3User ?? [],
      ...(opts.group ? { groups: opts.group } : {}), ...(opts.fullName !== undefined ? { fullName: opts.fullName } : {}),
    });
    process.stdout.write(`Added user ${res.user.name} (${[...res.user.addresses, ...res.user.domains.map((d) => `@${d}`)].join(', ')})\n`);
  });
user.command('edit <name>')
  .description("change a user's addresses, domains, POP3 logins and groups")
  .option('--add-address <address>', 'add an address (repeatable)', collect)
  .option('--remove-address <address>', 'remove an address (repeatable)', collect)
  .option('--add-domain <domain>', 'add an owned domain (repeatable)', collect)
  .option('--remove-domain <domain>', 'remove an owned domain (repeatable)', collect)
  .option('--add-pop3-user <login>', 'add a POP3 login (repeatable)', collect)
  .option('--remove-pop3-user <login>', 'remove a POP3 login (repeatable)', collect)
  .option('--add-group <group>', 'add the user to a group (repeatable)', collect)
  .option('--remove-group <group>', 'remove the user from a group (repeatable)', collect)
  .option('--full-name <name>', "set the person's display name")
  .action(async (name: string, o: Record<string, string[] | undefined> & { fullName?: string }) => {
    const res = await callJson<{ user: UserRecord }>(target(), 'PATCH', `/api/v1/users/${encodeURIComponent(name)}`, {
      addAddresses: o.addAddress ?? [], removeAddresses: o.removeAddress ?? [], addDomains: o.addDomain ?? [],
      removeDomains: o.removeDomain ?? [], addPop3Users: o.addPop3User ?? [], removePop3Users: o.removePop3User ?? [],
      addGroups: o.addGroup ?? [], removeGroups: o.removeGroup ?? [], ...(o.fullName !== undefined ? { fullName: o.fullName } : {}),
    });
    printUser(res.user);
  });
user.command('remove <name>')
  .description('remove a user from the directory (their archived mail is kept)')
  .action(async (name: string) => {
    await callJson(target(), 'DELETE', `/api/v1/users/${encodeURIComponent(name)}`);
    process.stdout.write(`Removed user ${name} from the directory; the archive is kept\n`);
  });
user.command('show <name>')
  .description("show a user's identities and folders")
  .option('--json', 'print JSON')
  .action(async (name: string, opts: { json?: boolean }) => {
    const res = await callJson<{ user: UserRecord; folders: Array<{ folder: string; messages: number; uidNext: number; uidValidity: number }> }>(target(), 'GET', `/api/v1/users/${encodeURIComponent(name)}`);
    if (opts.json) return void process.stdout.write(JSON.stringify(res, null, 2) + '\n');
    printUser(res.user);
    for (const f of res.folders) process.stdout.write(`Folder:    ${f.folder}\t${count(f.messages, 'message')} (UIDVALIDITY ${f.uidValidity}, UIDNEXT ${f.uidNext})\n`);
  });
user.command('list')
  .description('list users and their addresses (system archives such as _unrouted only with --all)')
  .option('--all', 'include system archives (names starting with "_", e.g. _unrouted for mail no user matched)')
  .option('--json', 'print JSON')
  .action(async (opts: { all?: boolean; json?: boolean }) => {
    const res = await callJson<{ users: UserRecord[] }>(target(), 'GET', '/api/v1/users');
    const users = opts.all ? res.users : res.users.filter((u) => !isSystemUser(u.name));
    if (opts.json) return void process.stdout.write(JSON.stringify(users, null, 2) + '\n');
    for (const u of users) process.stdout.write(`${u.name}\t${[...u.addresses, ...u.domains.map((d) => `@${d}`)].join(', ')}\n`);
  });

addImapCommands(user, target);
addWebCommands(user, target);
addDirectoryCommands(program, user, target);

const archive = program.command('archive').description('read archived mail');
const FOLDER_HELP = 'folder (default: the received folder, Inbox); IMAP names such as INBOX and any letter case work';
archive.command('list <user>')
  .description('list messages in a folder: UID, date, from, subject (tab-separated)')
  .option('-f, --folder <folder>', FOLDER_HELP)
  .option('--after-uid <uid>', 'only messages with a larger UID', '0')
  .option('--limit <n>', 'at most this many', '1000')
  .option('--json', 'print JSON')
  .action(async (name: string, opts: { folder?: string; afterUid: string; limit: string; json?: boolean }) => {
    const t = target();
    const folder = await resolveFolder(t, name, opts.folder, folderNames());
    const q = new URLSearchParams({ folder, afterUid: opts.afterUid, limit: opts.limit });
    const res = await callJson<{ entries: ArchiveEntry[] }>(t, 'GET', `/api/v1/archive/${encodeURIComponent(name)}/messages?${q}`);
    if (opts.json) return void process.stdout.write(JSON.stringify(res.entries, null, 2) + '\n');
    const clean = (s: string): string => s.replace(/[\t\r\n]+/g, ' ');
    for (const e of res.entries) process.stdout.write(`${e.uid}\t${e.date ?? e.internalDate}\t${clean(e.from)}\t${clean(e.subject)}\n`);
  });
archive.command('get <user> <uid>')
  .description('write the original bytes of a message to standard output, unaltered')
  .option('-f, --folder <folder>', FOLDER_HELP)
  .action(async (name: string, uid: string, opts: { folder?: string }) => {
    const t = target();
    const q = new URLSearchParams({ folder: await resolveFolder(t, name, opts.folder, folderNames()) });
    const res = await call(t, 'GET', `/api/v1/archive/${encodeURIComponent(name)}/messages/${encodeURIComponent(uid)}/raw?${q}`);
    if ((res.statusCode ?? 500) >= 400) throw await errorOf(res);
    await pipeline(res, process.stdout);
  });

program.command('status')
  .description('show intake depth, archive counts and listeners of the running server')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const t = target();
    const s = await callJson<{
      version: string; uptimeSeconds: number; storage: string; listeners: Record<string, number | null>; plugins: string[];
      intake: { depth: number; active: number; deferred: number; corrupt: number; processing: number };
      archive: { users: number; messages: number; entries: number; blobs: number; blobBytes: number; flagged: number };
      flagged: Array<{ messageId: string; flags: string[]; archivedAt: string; subject: string }>;
      unrouted: { user: string; messages: number };
      durability: { refusingWrites: string[]; lostWrites: Array<{ store: string; batches: number; detectedAt: string }> };
      nodes?: Array<{ name: string; host: string; pid: number; version: string; seenAt: string; alive: boolean; self: boolean }>;
    }>(t, 'GET', '/api/v1/status');
    if (opts.json) return void process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    const lines = [
      `Postern ${s.version}, up ${s.uptimeSeconds}s, storage ${s.storage}`,
      `Listeners: ${Object.entries(s.listeners).map(([k, v]) => `${k}=${v ?? 'off'}`).join(' ')}`,
      `Plugins:   ${s.plugins.join(', ')}`,
      `Intake:    depth ${s.intake.depth} (active ${s.intake.active}, deferred ${s.intake.deferred}, processing ${s.intake.processing}), corrupt ${s.intake.corrupt}`,
      `Archive:   ${count(s.archive.users, 'user')}, ${count(s.archive.messages, 'message')}, ${count(s.archive.entries, 'entry', 'entries')}, ${count(s.archive.blobs, 'blob')} (${count(s.archive.blobBytes, 'byte')})`,
      `Unrouted:  ${count(s.unrouted.messages, 'message')} in "${s.unrouted.user}" (matched no known user; npx postern archive list ${s.unrouted.user})`,
    ];
    for (const n of s.nodes ?? []) {
      const ago = Math.max(0, Math.round((Date.now() - Date.parse(n.seenAt)) / 1000));
      lines.push(`Node:      ${n.name}${n.self ? ' (this one)' : ''} on ${n.host} pid ${n.pid}, ${n.version}, ${n.alive ? 'alive' : 'NOT SEEN'} (last seen ${ago}s ago)`);
    }
    for (const store of s.durability.refusingWrites) {
      lines.push(`Storage:   the ${store} database refuses writes after a failed write (full disk?) until it has been reopened; mail is answered 451 meanwhile`);
    }
    for (const l of s.durability.lostWrites) {
      lines.push(`Storage:   the ${l.store} database LOST ${count(l.batches, 'acknowledged write batch', 'acknowledged write batches')} (found ${l.detectedAt}); see postern verify`);
    }
    if (s.archive.flagged > 0) {
      lines.push(`Flagged messages (${s.archive.flagged}; archived, with problems such as malformed journal reports):`);
      for (const f of s.flagged) lines.push(`  ${f.messageId}\t${f.archivedAt}\t${f.subject.replace(/[\t\r\n]+/g, ' ')}\t${f.flags.join('; ')}`);
    }
    if (s.intake.corrupt > 0) {
      const c = await callJson<{ entries: Array<{ id: string; receivedAt: string; lastError: string | null }> }>(t, 'GET', '/api/v1/intake?state=corrupt');
      lines.push('Quarantined intake entries (bytes kept; postern intake retry ID after a fix):');
      for (const e of c.entries) lines.push(`  ${e.id}\t${e.receivedAt}\t${e.lastError ?? ''}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  });

addAuditCommands(program, target);
addImportCommands(program, target);
addJobsCommands(program, target);
addSearchCommands(program, target);
addIntakeCommands(program, target);
addComplianceCommands(program, target);
addExportCommands(program, target);
addSessionCommands(program, () => {
  const opts = program.opts<GlobalOptions>();
  const { config } = loadConfig(configFile(opts));
  return { url: adminUrl(config, opts.url), insecure: config.admin.tls.cert !== '' };
});
addBackupCommands(program, target);
addMigrateCommands(program, () => loadConfig(configFile(program.opts<GlobalOptions>())).config);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (isClosedPipe(err)) process.exit(0);
  if (err instanceof ConfigError) {
    process.stderr.write(`postern: configuration is invalid:\n${err.problems.map((p) => `  ${p.where}: ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n')}\n`);
    process.exit(2);
  }
  process.stderr.write(`postern: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
