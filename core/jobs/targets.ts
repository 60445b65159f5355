// Job targets: which archive users a per-user job works on (every user with an address, all but a
// list, only a list, or the members of a directory group). Stored in a job's options as `targets` and
// resolved against the user directory when a run starts, so users added or removed between runs are
// followed. Lists accept an array or one ";"-separated string. Disabled users are never targets.
import { z } from 'zod';
import { PosternError } from '../errors.ts';
import { GROUP_NAME, USER_NAME, type UserRecord } from '../storage/types.ts';

const userList = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(';').map((s) => s.trim()).filter((s) => s !== '') : v),
  z.array(z.string().regex(USER_NAME, 'is not a valid user name')).max(100_000),
);

export const targetsSchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('all') }),
  z.strictObject({ mode: z.literal('except'), users: userList }),
  z.strictObject({ mode: z.literal('only'), users: userList.pipe(z.array(z.string()).min(1, 'name at least one user')) }),
  z.strictObject({ mode: z.literal('group'), group: z.string().regex(GROUP_NAME, 'is not a valid group name') }),
]);

export type JobTargets = z.infer<typeof targetsSchema>;

/** One line for `postern jobs show`. */
export function describeTargets(t: JobTargets): string {
  switch (t.mode) {
    case 'all': return 'every user with an address';
    case 'except': return t.users.length ? `every user with an address except ${t.users.join(';')}` : 'every user with an address';
    case 'only': return `only ${t.users.join(';')}`;
    case 'group': return `members of group "${t.group}" with an address`;
  }
}

/**
 * The users a run works on, in name order. A user named by "only" who does not exist, is disabled or
 * has no address is an error of the run (NOT_FOUND), so a typo never passes silently.
 */
export function resolveTargets(t: JobTargets, users: readonly UserRecord[]): UserRecord[] {
  const eligible = users.filter((u) => !u.disabled && u.addresses.length > 0);
  let out: UserRecord[];
  switch (t.mode) {
    case 'all':
      out = eligible;
      break;
    case 'except': {
      const skip = new Set(t.users);
      out = eligible.filter((u) => !skip.has(u.name));
      break;
    }
    case 'only': {
      const byName = new Map(eligible.map((u) => [u.name, u]));
      const missing = t.users.filter((n) => !byName.has(n));
      if (missing.length) throw new PosternError('NOT_FOUND', `Job targets name users that do not exist, are disabled or have no address: ${missing.map((n) => `"${n}"`).join(', ')}`);
      out = [...new Set(t.users)].map((n) => byName.get(n) as UserRecord);
      break;
    }
    case 'group':
      out = eligible.filter((u) => u.groups.includes(t.group));
      break;
  }
  return [...out].sort((a, b) => a.name.localeCompare(b.name));
}
