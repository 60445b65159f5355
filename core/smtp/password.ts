// Password hashes for credentials kept in configuration: scrypt with a random salt, encoded as
// scrypt$N$r$p$salt$hash (base64). Verification is constant-time.
// Successful verifications are remembered for a while (like Dovecot's auth cache): for each stored hash
// that a password matched, an HMAC of that password under a key made at process start, so a client that
// signs in again and again (a mail client's many connections, login/logout churn) costs one scrypt per
// hour instead of one per login. Only successes are kept: a wrong password always pays the full scrypt.
// The entry is keyed by the stored hash itself, so a changed password invalidates it at once. Bounded.
// Opt-in per call (`cached`): a caller may use it only where a right password is told apart from a
// wrong one by the answer anyway (the sign-in succeeds); where a right password still fails (no access,
// a disabled account) a fast answer would reveal it, so those checks always pay the full scrypt.
import { createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> =>
  new Promise((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));

const N = 16384;
const R = 8;
const P = 1;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, 32, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

const CACHE_TTL_MS = 60 * 60 * 1000;
const CACHE_ENTRIES = 10_000;
const cacheKey = randomBytes(32);
const verified = new Map<string, { digest: Buffer; at: number }>();

function digestOf(password: string): Buffer {
  return createHmac('sha256', cacheKey).update(password, 'utf8').digest();
}

function cachedMatch(password: string, encoded: string): boolean {
  const hit = verified.get(encoded);
  if (!hit) return false;
  if (Date.now() - hit.at > CACHE_TTL_MS) {
    verified.delete(encoded);
    return false;
  }
  return timingSafeEqual(hit.digest, digestOf(password));
}

function remember(password: string, encoded: string): void {
  verified.delete(encoded);
  verified.set(encoded, { digest: digestOf(password), at: Date.now() });
  while (verified.size > CACHE_ENTRIES) verified.delete(verified.keys().next().value as string);
}

export async function verifyPassword(password: string, encoded: string, options: { cached?: boolean } = {}): Promise<boolean> {
  if (!options.cached) return verifyScrypt(password, encoded);
  if (cachedMatch(password, encoded)) return true;
  const ok = await verifyScrypt(password, encoded);
  if (ok) remember(password, encoded);
  return ok;
}

async function verifyScrypt(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![n, r, p].every((x) => Number.isInteger(x) && x > 0) || n > 1 << 20) return false;
  const salt = Buffer.from(parts[4] as string, 'base64');
  const expected = Buffer.from(parts[5] as string, 'base64');
  if (expected.length < 16) return false;
  const actual = await scrypt(password, salt, expected.length, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 });
  return timingSafeEqual(actual, expected);
}
