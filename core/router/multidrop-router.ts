// The built-in router on the `route` hook: every participant (from a journal report, the SMTP
// envelope or the configured header sources) that resolves to a known user files the message into
// that user's Sent (sender) or Inbox (recipient) folder. Unknown addresses follow routing.unknownAddresses.
import { z } from 'zod';
import { definePlugin } from '../app/plugin.ts';
import type { Route } from '../app/hook-types.ts';
import type { Config } from '../config/schema.ts';
import { isPosternError } from '../errors.ts';
import { normalizeAddress } from '../storage/types.ts';
import type { ArchiveStore } from '../storage/types.ts';
import { AddressResolver } from './directory.ts';
import { participantsOf } from './participants.ts';

type Routing = Config['routing'];

/** A user name for an auto-created user: the local part made safe, numbered if taken. */
async function createUserFor(archive: ArchiveStore, address: string): Promise<string | null> {
  const local = address.slice(0, address.lastIndexOf('@')).toLowerCase();
  const base = (local.replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '') || 'user').slice(0, 56);
  for (let n = 1; n <= 50; n++) {
    const name = n === 1 ? base : `${base}-${n}`;
    try {
      await archive.addUser({ name, addresses: [address] });
      return name;
    } catch (err) {
      if (!isPosternError(err, 'CONFLICT')) throw err;
      const owner = await archive.userByAddress(address);
      if (owner) return owner; // someone added the address meanwhile
    }
  }
  return null;
}

export default definePlugin({
  name: 'multidrop-router',
  configSchema: z.custom<Routing>((v) => typeof v === 'object' && v !== null),
  register(app, routing) {
    const archive = app.service('archive');
    const metrics = app.service('metrics');
    const resolver = new AddressResolver(archive, routing);
    const autoDomains = new Set(routing.autoCreateDomains.map((d) => d.toLowerCase()));
    app.on('route', async ({ context }, { log }) => {
      const assigned: Route[] = [];
      if (context.assign) {
        const { user, direction, folder, reason } = context.assign;
        assigned.push({ user, folder: folder ?? (direction === 'sent' ? routing.sentFolder : routing.receivedFolder), reason });
        if (context.assign.exclusive) return assigned;
      }
      const set = participantsOf(context, routing);
      // The guess is the configured fallback for copies without an envelope (always_bcc, imports): expected, not a warning.
      if (set.guessed) log.debug('No envelope source named any recipient; participants guessed from To/Cc/From', { intakeId: context.intakeId });
      const routes: Route[] = [];
      for (const p of set.participants) {
        const folder = p.role === 'sender' ? routing.sentFolder : routing.receivedFolder;
        const found = await resolver.resolve(p.address);
        if (found) {
          routes.push({ user: found.user, folder, reason: `${p.reason}${found.via === 'address' ? '' : ` (${found.via})`}` });
          continue;
        }
        metrics.unknownAddresses.inc({ role: p.role });
        if (routing.unknownAddresses === 'unassigned') {
          routes.push({ user: routing.unmatchedUser, folder: routing.receivedFolder, reason: `unknown ${p.role} ${p.address}` });
        } else if (routing.unknownAddresses === 'create') {
          const address = normalizeAddress(p.address);
          if (!autoDomains.has(address.slice(address.lastIndexOf('@') + 1))) continue;
          const user = await createUserFor(archive, address);
          if (user) {
            log.info('User created for an address in an owned domain', { user, address });
            routes.push({ user, folder, reason: `${p.reason} (auto-created)` });
          }
        }
      }
      const seen = new Set<string>();
      return [...assigned, ...routes].filter((r) => {
        const k = `${r.user}\u0000${r.folder}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
    });
  },
});
