// A plain Bloom filter over string keys for the dedup plugin: a bit array sized from the expected
// count and false-positive rate, probed with enhanced double hashing. The two 53-bit base hashes come
// from four murmur3-style 32-bit lanes over the key's UTF-16 code units, computed in one pass with no
// allocation (the bloom-filters package hashed with xxhashjs/cuint, which allocated dozens of objects
// per key and was a measurable part of archiving one message).
// Trusts: nothing in a serialised form (every field is checked before use). Hands on: yes/no answers
// and a JSON-able snapshot whose `hash` names the hash family, so a future change is detected on load.

/** Name of the hash family; a snapshot made with another one is refused (the caller rebuilds). */
export const BLOOM_HASH = 'murmur3x4-dh1';

export interface BloomSnapshot {
  hash: string;
  bits: number;
  hashes: number;
  /** The bit array, base64. */
  data: string;
}

/** Largest bit array accepted (also bounds what a snapshot may ask for): just under 4 GiB. */
const MAX_BITS = (2 ** 32 - 64) * 8;
const TWO_21 = 2 ** 21;

// The four lanes' results for the key hashed last (module state: add/has are synchronous).
let laneA = 0;
let laneB = 0;
let laneC = 0;
let laneD = 0;

function mix(h: number, k: number): number {
  let x = Math.imul(k, 0xcc9e2d51);
  x = (x << 15) | (x >>> 17);
  x = Math.imul(x, 0x1b873593);
  let y = h ^ x;
  y = (y << 13) | (y >>> 19);
  return (Math.imul(y, 5) + 0xe6546b64) | 0;
}

function finish(h: number, len: number): number {
  let x = h ^ len;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

function hashKey(key: string): void {
  let a = 0x2f0b3c51;
  let b = 0x6a09e667;
  let c = 0x3c6ef372;
  let d = 0x510e527f;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    a = mix(a, ch);
    b = mix(b, ch ^ 0x5bd1e995);
    c = mix(c, ch + 0x27d4eb2f);
    d = mix(d, Math.imul(ch, 0x165667b1) ^ 0x9e3779b9);
  }
  laneA = finish(a, key.length);
  laneB = finish(b, key.length);
  laneC = finish(c, key.length);
  laneD = finish(d, key.length);
}

export class BitBloom {
  private constructor(readonly bits: number, readonly hashes: number, private readonly array: Uint8Array) {}

  /** A filter for `expected` keys at `falsePositiveRate` (the usual optimal sizing). */
  static create(expected: number, falsePositiveRate: number): BitBloom {
    if (!(expected >= 1) || !(falsePositiveRate > 0 && falsePositiveRate < 1)) throw new RangeError('Bloom filter sizing is out of range');
    const bits = Math.min(MAX_BITS, Math.max(64, Math.ceil((-expected * Math.log(falsePositiveRate)) / (Math.LN2 * Math.LN2))));
    const hashes = Math.max(1, Math.round((bits / expected) * Math.LN2));
    return new BitBloom(bits, hashes, new Uint8Array(Math.ceil(bits / 8)));
  }

  /** Rebuild from a snapshot; null when it was made with another hash family or is malformed. */
  static fromSnapshot(s: unknown): BitBloom | null {
    if (typeof s !== 'object' || s === null) return null;
    const { hash, bits, hashes, data } = s as Partial<Record<keyof BloomSnapshot, unknown>>;
    if (hash !== BLOOM_HASH || typeof data !== 'string') return null;
    if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 64 || bits > MAX_BITS) return null;
    if (typeof hashes !== 'number' || !Number.isInteger(hashes) || hashes < 1 || hashes > 64) return null;
    const bytes = Buffer.from(data, 'base64');
    if (bytes.length !== Math.ceil(bits / 8)) return null;
    return new BitBloom(bits, hashes, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  }

  snapshot(): BloomSnapshot {
    return { hash: BLOOM_HASH, bits: this.bits, hashes: this.hashes, data: Buffer.from(this.array.buffer, this.array.byteOffset, this.array.length).toString('base64') };
  }

  add(key: string): void {
    this.probe(key, true);
  }

  has(key: string): boolean {
    return this.probe(key, false);
  }

  /** Bytes held by the bit array. */
  get byteLength(): number {
    return this.array.length;
  }

  /** Walks the key's k bit positions; sets them (add) or stops at the first clear one (has). */
  private probe(key: string, set: boolean): boolean {
    hashKey(key);
    const m = this.bits;
    let x = (laneA * TWO_21 + (laneC >>> 11)) % m;
    let y = (laneB * TWO_21 + (laneD >>> 11)) % m;
    let all = true;
    for (let i = 0; i < this.hashes; i++) {
      const byte = Math.floor(x / 8);
      const mask = 1 << (x - byte * 8);
      const v = this.array[byte] ?? 0;
      if ((v & mask) === 0) {
        if (!set) return false;
        all = false;
        this.array[byte] = v | mask;
      }
      // Enhanced double hashing (Dillinger & Manolios): both terms stay below m, sums below 2^53.
      x = (x + y) % m;
      y = (y + i + 1) % m;
    }
    return all;
  }
}
