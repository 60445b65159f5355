// Job schedules: an interval ("30s", "15m", "1.5h", "1d") or a cron expression (croner syntax, with
// optional seconds field). Validates outside input and computes the next run time; nothing else.
import { Cron } from 'croner';
import { PosternError } from '../errors.ts';

const INTERVAL = /^(\d+(?:\.\d+)?)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MIN_INTERVAL_MS = 1000;
const MAX_INTERVAL_MS = 366 * 86_400_000;

export type Schedule = { type: 'interval'; ms: number } | { type: 'cron'; cron: Cron };

export function parseSchedule(text: string): Schedule {
  const m = INTERVAL.exec(text.trim());
  if (m) {
    const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    if (!(ms >= MIN_INTERVAL_MS && ms <= MAX_INTERVAL_MS)) {
      throw new PosternError('INVALID_INPUT', `Schedule "${text}" must be between 1s and 366d`);
    }
    return { type: 'interval', ms };
  }
  if (text.length > 200) throw new PosternError('INVALID_INPUT', 'Schedule is longer than 200 characters');
  try {
    return { type: 'cron', cron: new Cron(text.trim(), { paused: true }) };
  } catch (err) {
    throw new PosternError('INVALID_INPUT', `Schedule "${text}" is neither an interval (e.g. "15m") nor a cron expression: ${(err as Error).message}`);
  }
}

/** When a job with this schedule runs next, given when it last started (null: never). */
export function nextRun(schedule: Schedule, lastStart: Date | null, now: Date): Date | null {
  if (schedule.type === 'interval') {
    if (lastStart === null) return new Date(now.getTime() + schedule.ms);
    const next = lastStart.getTime() + schedule.ms;
    return new Date(Math.max(next, now.getTime()));
  }
  return schedule.cron.nextRun(now);
}
