// Intake ids: time-ordered, unique across restarts and processes sharing nothing: 9 base-36 chars of
// milliseconds, a per-process counter and 6 random hex chars. Sorting ids sorts by arrival.
// The random byte of each id comes from a pool filled 256 bytes at a time (one call into the CSPRNG
// per 256 ids instead of one per id: it showed in the receiving path's profile).
import { randomBytes, randomFillSync } from 'node:crypto';

let counter = 0;
const processTag = randomBytes(2).toString('hex');
const pool = Buffer.alloc(256);
let poolAt = pool.length;

function randomHexByte(): string {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  return (pool[poolAt++] as number).toString(16).padStart(2, '0');
}

export function newIntakeId(now = Date.now()): string {
  counter = (counter + 1) % 36 ** 4;
  return `${now.toString(36).padStart(9, '0')}${counter.toString(36).padStart(4, '0')}${processTag}${randomHexByte()}`;
}
