// `postern user web USER on|off`: allow or refuse a user the web access (plugin web), through the web
// plugin's admin route, as `postern user imap` does for IMAP. Groups can be allowed in the web plugin's
// config (accessGroups); auditors and holders of the compliance privilege have it by their privilege.
import type { Command } from 'commander';
import { AdminClientError, callJson, type AdminTarget } from './client.ts';

export function addWebCommands(user: Command, target: () => AdminTarget): void {
  user.command('web <name> <state>')
    .description('allow (on) or refuse (off) web access to the archive for a user; groups can be allowed in the web plugin config (accessGroups)')
    .action(async (name: string, state: string) => {
      if (state !== 'on' && state !== 'off') throw new AdminClientError(`State must be "on" or "off", not "${state}"`, null);
      await callJson(target(), 'PUT', `/api/v1/users/${encodeURIComponent(name)}/web`, { enabled: state === 'on' });
      process.stdout.write(`Web access ${state === 'on' ? 'enabled' : 'disabled'} for ${name}\n`);
    });
}
