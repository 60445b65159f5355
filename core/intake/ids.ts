// Intake ids: time-ordered, unique across restarts and processes sharing nothing: 9 base-36 chars of
// milliseconds, a per-process counter and 6 random hex chars. Sorting ids sorts by arrival.
import { randomBytes } from 'node:crypto';

let counter = 0;
const processTag = randomBytes(2).toString('hex');

export function newIntakeId(now = Date.now()): string {
  counter = (counter + 1) % 36 ** 4;
  return `${now.toString(36).padStart(9, '0')}${counter.toString(36).padStart(4, '0')}${processTag}${randomBytes(1).toString('hex')}`;
}
