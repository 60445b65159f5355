// Command-line flags for job targets (per-user jobs, exports of several archives): --targets MODE,
// --target-user NAMES (";"-separated or repeated), --target-group GROUP, checked with the same schema
// the server applies.
import type { Command } from 'commander';
import { targetsSchema } from '../jobs/targets.ts';
import { AdminClientError } from './client.ts';

export interface TargetFlags { targets?: string; targetUser?: string[]; targetGroup?: string }

/** Job targets from --targets/--target-user/--target-group, or undefined when none is given. */
export function targetsFrom(o: TargetFlags): Record<string, unknown> | undefined {
  const users = (o.targetUser ?? []).flatMap((u) => u.split(';')).map((u) => u.trim()).filter((u) => u !== '');
  if (o.targets === undefined) {
    if (users.length || o.targetGroup !== undefined) throw new AdminClientError('--target-user and --target-group need --targets except|only|group', null);
    return undefined;
  }
  const raw = o.targets === 'group' ? { mode: 'group', group: o.targetGroup } : o.targets === 'all' ? { mode: 'all' } : { mode: o.targets, users };
  const r = targetsSchema.safeParse(raw);
  if (!r.success) throw new AdminClientError(`Job targets: ${r.error.issues.map((i) => `${i.path.join('.') || o.targets}: ${i.message}`).join('; ')}`, null);
  return r.data as Record<string, unknown>;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function targetOptions(c: Command): Command {
  return c
    .option('--targets <mode>', 'per-user jobs and exports: all (every user with an address), except, only (users from --target-user) or group')
    .option('--target-user <names>', 'with --targets except|only: user names, ";"-separated or the flag repeated', collect)
    .option('--target-group <group>', 'with --targets group: the directory group');
}
