// fast-check arbitraries for byte inputs: seeds as they are, seeds under stacked mutations (bit flips,
// byte sets, insertions of dictionary tokens or random bytes, deletions, truncation, duplication of a
// slice many times over, splicing with another seed), token soups from the dictionary, and random bytes.
// Everything is expressed as fast-check values, so a failing input shrinks (fewer, smaller mutations).
import fc from 'fast-check';

type Op =
  | { k: 'flip'; at: number; bit: number }
  | { k: 'set'; at: number; v: number }
  | { k: 'token'; at: number; d: number; times: number }
  | { k: 'raw'; at: number; bytes: Uint8Array }
  | { k: 'delete'; at: number; len: number }
  | { k: 'truncate'; at: number }
  | { k: 'dup'; at: number; len: number; to: number; times: number }
  | { k: 'splice'; other: number; at: number; from: number };

/** Ready-made nasty tokens every target gets in its dictionary. */
export const COMMON_TOKENS = [
  '\r\n', '\n', '\r', '\r\n\r\n', '\n\n', ' ', '\t', '\0', '\x7f', '\xff', '\xc3\xa9', '\xe2\x82', '\xf0\x9f\x98\x80',
  '(', ')', '"', '\\', '<', '>', '[', ']', '{', '}', ',', ';', ':', '@', '.', '=', '-', '--', '*', '%', '+',
];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ k: fc.constant('set' as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ k: fc.constant('token' as const), at: fc.nat(), d: fc.nat(), times: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 5000 })) }),
  fc.record({ k: fc.constant('raw' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ k: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 256 }) }),
  fc.record({ k: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ k: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 512 }), to: fc.nat(), times: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 2000 })) }),
  fc.record({ k: fc.constant('splice' as const), other: fc.nat(), at: fc.nat(), from: fc.nat() }),
);

function insert(buf: Buffer, at: number, piece: Buffer): Buffer {
  const p = at % (buf.length + 1);
  return Buffer.concat([buf.subarray(0, p), piece, buf.subarray(p)]);
}

function apply(seed: Buffer, ops: Op[], seeds: Buffer[], dict: Buffer[], maxLength: number): Buffer {
  let buf = seed;
  const cap = Math.max(maxLength, seed.length);
  for (const op of ops) {
    if (buf.length > cap) break;
    switch (op.k) {
      case 'flip':
      case 'set': {
        if (buf.length === 0) break;
        const copy = Buffer.from(buf);
        const i = op.at % copy.length;
        copy[i] = op.k === 'flip' ? (copy[i] as number) ^ (1 << op.bit) : op.v;
        buf = copy;
        break;
      }
      case 'token': {
        const token = dict[op.d % dict.length] as Buffer;
        const times = Math.max(1, Math.min(op.times, Math.floor(cap / Math.max(1, token.length))));
        buf = insert(buf, op.at, times === 1 ? token : Buffer.alloc(token.length * times, token));
        break;
      }
      case 'raw':
        buf = insert(buf, op.at, Buffer.from(op.bytes));
        break;
      case 'delete': {
        if (buf.length === 0) break;
        const i = op.at % buf.length;
        buf = Buffer.concat([buf.subarray(0, i), buf.subarray(i + op.len)]);
        break;
      }
      case 'truncate':
        buf = buf.subarray(0, op.at % (buf.length + 1));
        break;
      case 'dup': {
        if (buf.length === 0) break;
        const i = op.at % buf.length;
        const slice = buf.subarray(i, i + op.len);
        const times = Math.max(1, Math.min(op.times, Math.floor(cap / Math.max(1, slice.length))));
        buf = insert(buf, op.to, Buffer.alloc(slice.length * times, slice));
        break;
      }
      case 'splice': {
        const other = seeds[op.other % seeds.length] as Buffer;
        const i = op.at % (buf.length + 1);
        buf = Buffer.concat([buf.subarray(0, i), other.subarray(op.from % (other.length + 1))]);
        break;
      }
    }
  }
  return buf.length > cap ? buf.subarray(0, cap) : buf;
}

/** The input arbitrary of one target. */
export function inputArbitrary(seeds: Buffer[], dictionary: string[], maxLength: number): fc.Arbitrary<Buffer> {
  const pool = seeds.length > 0 ? seeds : [Buffer.alloc(0)];
  const dict = [...new Set([...dictionary, ...COMMON_TOKENS])].map((t) => Buffer.from(t, 'latin1'));
  const seed = fc.nat(pool.length - 1).map((i) => pool[i] as Buffer);
  const mutated = fc
    .tuple(fc.nat(pool.length - 1), fc.array(opArb, { minLength: 1, maxLength: 12 }))
    .map(([i, ops]) => apply(pool[i] as Buffer, ops, pool, dict, maxLength));
  const soup = fc
    .array(fc.oneof(fc.nat(dict.length - 1).map((i) => dict[i] as Buffer), fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u))), { maxLength: 200 })
    .map((parts) => Buffer.concat(parts));
  const random = fc.uint8Array({ maxLength: 1024 }).map((u) => Buffer.from(u));
  return fc.oneof(
    { weight: 1, arbitrary: seed },
    { weight: 12, arbitrary: mutated },
    { weight: 2, arbitrary: soup },
    { weight: 1, arbitrary: random },
  );
}
