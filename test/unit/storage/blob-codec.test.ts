import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import {
  DEFAULT_BLOB_CODEC, aes256gcmCipher, crc32Portable, decodeChunk, encodeChunk, encodeChunkPacked, inspectChunk, minSaving, packChunk,
  type BlobCodecOptions, type ChunkCipher,
} from '../../../core/storage/blob-codec.ts';
import { isPosternError } from '../../../core/errors.ts';
import { loadCorpus } from '../../helpers/corpus.ts';

const HEADER = 12;
const GCM_OVERHEAD = 1 + 12 + 16; // cipher id byte + IV + tag
const MIB = 1024 * 1024;
const BROTLI: BlobCodecOptions = { codec: 'brotli', level: 5, minSize: 0 };
const DEFLATE: BlobCodecOptions = { codec: 'deflate', level: 6, minSize: 0 };
const NONE: BlobCodecOptions = { codec: 'none', level: 0, minSize: 0 };


function loadFixtures(): Buffer[] {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/journal');
  return readdirSync(dir).filter((n) => n.endsWith('.eml')).sort().map((n) => readFileSync(join(dir, n)));
}

function assertStorageIo(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isPosternError(err, 'STORAGE_IO'), `expected PosternError STORAGE_IO, got ${String(err)}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

function assertInvalidInput(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => isPosternError(err, 'INVALID_INPUT'));
}

function flipped(buf: Buffer, index: number, mask = 0x01): Buffer {
  const copy = Buffer.from(buf);
  copy[index] = (copy[index] as number) ^ mask;
  return copy;
}

const compressible = (n: number): Buffer =>
  Buffer.from('Received: from mx.example.org by postern; journal report follows\r\n'.repeat(Math.ceil(n / 66))).subarray(0, n);

const corpus = loadCorpus();

describe('blob codec: round trips on real mail', () => {
  it('loads the whole SpamAssassin corpus', () => {
    assert.ok(corpus.length >= 6000, `corpus has ${corpus.length} messages`);
  });

  it('round-trips every corpus message byte for byte with the default codec, and compresses the corpus', () => {
    let raw = 0;
    let stored = 0;
    let packed = 0;
    for (const [i, msg] of corpus.entries()) {
      const enc = encodeChunk(msg);
      assert.ok(enc.length <= msg.length + HEADER, `message ${i} grew by more than the header`);
      const dec = decodeChunk(enc);
      if (!dec.equals(msg)) assert.fail(`message ${i} (${msg.length} bytes) did not round-trip`);
      raw += msg.length;
      stored += enc.length;
      if (inspectChunk(enc).codec !== 'none') packed++;
    }
    assert.ok(stored < raw * 0.5, `stored ${stored} of ${raw} raw bytes`);
    assert.ok(packed > corpus.length * 0.99, `${packed} of ${corpus.length} messages compressed`);
  });

  it('round-trips every corpus message with deflate', () => {
    for (const [i, msg] of corpus.entries()) {
      const enc = encodeChunk(msg, DEFLATE);
      assert.equal(inspectChunk(enc).codec, 'deflate', `message ${i} is deflated`);
      if (!decodeChunk(enc).equals(msg)) assert.fail(`message ${i} did not round-trip with deflate`);
    }
  });

  it('round-trips the journal fixtures with every codec', () => {
    const fixtures = loadFixtures();
    assert.ok(fixtures.length > 10);
    for (const opts of [DEFAULT_BLOB_CODEC, BROTLI, DEFLATE, NONE]) {
      for (const msg of fixtures) assert.deepEqual(decodeChunk(encodeChunk(msg, opts)), msg);
    }
  });

  it('round-trips full 1 MiB chunks cut from the corpus', () => {
    const all = Buffer.concat(corpus);
    assert.ok(all.length >= 2 * MIB);
    for (const chunk of [all.subarray(0, MIB), all.subarray(MIB, 2 * MIB)]) {
      const enc = encodeChunk(chunk);
      assert.equal(inspectChunk(enc).codec, DEFAULT_BLOB_CODEC.codec);
      assert.ok(enc.length < chunk.length / 2);
      assert.ok(decodeChunk(enc).equals(chunk));
    }
  });
});

describe('blob codec: size rules', () => {
  it('stores an empty chunk as a bare header, with any codec and with a cipher', () => {
    for (const opts of [DEFAULT_BLOB_CODEC, BROTLI, DEFLATE, NONE]) {
      const enc = encodeChunk(Buffer.alloc(0), opts);
      assert.equal(enc.length, HEADER);
      assert.equal(inspectChunk(enc).codec, 'none');
      assert.equal(inspectChunk(enc).rawLength, 0);
      assert.equal(decodeChunk(enc).length, 0);
    }
    const cipher = aes256gcmCipher(randomBytes(32));
    assert.equal(decodeChunk(encodeChunk(Buffer.alloc(0), BROTLI, cipher), cipher).length, 0);
  });

  it('stores a 1 MiB random chunk raw: exactly raw + header, never larger', () => {
    const raw = randomBytes(MIB);
    for (const opts of [DEFAULT_BLOB_CODEC, BROTLI, DEFLATE]) {
      const enc = encodeChunk(raw, opts);
      assert.equal(inspectChunk(enc).codec, 'none');
      assert.equal(enc.length, raw.length + HEADER);
      assert.ok(decodeChunk(enc).equals(raw));
    }
    const cipher = aes256gcmCipher(randomBytes(32));
    const sealed = encodeChunk(raw, DEFAULT_BLOB_CODEC, cipher);
    assert.equal(sealed.length, raw.length + HEADER + GCM_OVERHEAD);
    assert.ok(decodeChunk(sealed, cipher).equals(raw));
  });

  it('stores an already-gzipped payload raw', () => {
    const gz = zlib.gzipSync(Buffer.concat(corpus.slice(0, 60)));
    assert.ok(gz.length > 30_000);
    const enc = encodeChunk(gz);
    assert.equal(inspectChunk(enc).codec, 'none');
    assert.equal(enc.length, gz.length + HEADER);
    assert.ok(decodeChunk(enc).equals(gz));
  });

  it('stores a tiny chunk raw below minSize, and compresses the same bytes when minSize allows', () => {
    const tiny = Buffer.from('Hi\r\n');
    const enc = encodeChunk(tiny);
    assert.equal(inspectChunk(enc).codec, 'none');
    assert.equal(enc.length, tiny.length + HEADER);
    assert.deepEqual(decodeChunk(enc), tiny);

    const text = compressible(DEFAULT_BLOB_CODEC.minSize);
    assert.equal(inspectChunk(encodeChunk(text)).codec, DEFAULT_BLOB_CODEC.codec, 'at minSize it compresses');
    const below = text.subarray(0, DEFAULT_BLOB_CODEC.minSize - 1);
    assert.equal(inspectChunk(encodeChunk(below)).codec, 'none', 'below minSize it is raw');
    assert.equal(inspectChunk(encodeChunk(below, { ...DEFAULT_BLOB_CODEC, minSize: 0 })).codec, DEFAULT_BLOB_CODEC.codec);
  });

  it('keeps compressed output only when it saves at least minSaving bytes', () => {
    // Random bytes with a short compressible run: compression saves a little, less than the threshold.
    const raw = Buffer.concat([randomBytes(10_000), Buffer.alloc(100)]);
    const packed = zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI.level } });
    assert.ok(packed.length < raw.length, 'brotli alone would save some bytes');
    assert.ok(raw.length - packed.length < minSaving(raw.length));
    const enc = encodeChunk(raw, BROTLI);
    assert.equal(inspectChunk(enc).codec, 'none');
    assert.ok(decodeChunk(enc).equals(raw));
  });

  it('never grows any chunk by more than the header, over many sizes and contents', () => {
    for (let n = 0; n <= 3000; n += 37) {
      for (const raw of [randomBytes(n), compressible(n), zlib.deflateRawSync(randomBytes(n)).subarray(0, n)]) {
        const enc = encodeChunk(raw, BROTLI);
        assert.ok(enc.length <= raw.length + HEADER, `${n} bytes grew to ${enc.length}`);
        assert.ok(decodeChunk(enc).equals(raw));
      }
    }
  });

  it('rejects invalid options with INVALID_INPUT', () => {
    const raw = compressible(1000);
    assertInvalidInput(() => encodeChunk(raw, { codec: 'brotli', level: 12, minSize: 0 }));
    assertInvalidInput(() => encodeChunk(raw, { codec: 'brotli', level: 4.5, minSize: 0 }));
    assertInvalidInput(() => encodeChunk(raw, { codec: 'deflate', level: 0, minSize: 0 }));
    assertInvalidInput(() => encodeChunk(raw, { codec: 'deflate', level: 10, minSize: 0 }));
    assertInvalidInput(() => encodeChunk(raw, { codec: 'zstd' as BlobCodecOptions['codec'], level: 3, minSize: 0 }));
    assertInvalidInput(() => encodeChunk(raw, { codec: 'brotli', level: 5, minSize: -1 }));
    assert.ok(decodeChunk(encodeChunk(raw, { codec: 'brotli', level: 0, minSize: 0 })).equals(raw));
    assert.ok(decodeChunk(encodeChunk(raw, { codec: 'deflate', level: 9, minSize: 0 })).equals(raw));
  });
});

describe('blob codec: format', () => {
  // Chunks written by format version 1 must decode forever: these bytes are frozen.
  const goldenText = Buffer.from('Subject: golden\r\n\r\n' + 'postern keeps every mail. '.repeat(12));
  const golden = {
    brotli: 'b50102000000014b248858091b4a010004fe6d47fa80763ed101adee435d0daa60030ed8036cb00527d57babb0eec66f53fd3936551f33579d82910be1b1ec1ccba8',
    deflate: 'b50101000000014b248858090b2e4dca4a4d2eb15248cfcf4949cde3e5e2e52ac82f2e492dca53c84e4d2d2856482d4b2daa54c84dccccd1531895c1270300',
  };

  it('decodes frozen version-1 chunks', () => {
    assert.deepEqual(decodeChunk(Buffer.from(golden.brotli, 'hex')), goldenText);
    assert.deepEqual(decodeChunk(Buffer.from(golden.deflate, 'hex')), goldenText);
    assert.deepEqual(decodeChunk(Buffer.from('b5010000000000046d99c83248690d0a', 'hex')), Buffer.from('Hi\r\n'));
  });

  it('writes the documented header: magic, version, codec id, flags, length, CRC32', () => {
    const enc = encodeChunk(Buffer.from('Hi\r\n'), NONE);
    assert.equal(enc.toString('hex'), 'b5010000000000046d99c83248690d0a');
    const info = inspectChunk(Buffer.from(golden.brotli, 'hex'));
    assert.deepEqual(info, { version: 1, codec: 'brotli', encrypted: false, cipherId: 0, rawLength: goldenText.length, headerLength: HEADER });
    assert.equal(inspectChunk(encodeChunk(goldenText, DEFLATE)).codec, 'deflate');
  });

  it('computes the same CRC-32 portably as zlib', () => {
    assert.equal(crc32Portable(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32Portable(Buffer.alloc(0)), 0);
    assert.equal(crc32Portable(Buffer.from('The quick brown fox jumps over the lazy dog')), 0x414fa339);
    // zlib.crc32 exists from Node 20.15 (engines allows 20.11): compare where it is there.
    if (typeof zlib.crc32 !== 'function') return;
    for (const n of [1, 7, 255, 4096, 65_537]) {
      const b = randomBytes(n);
      assert.equal(crc32Portable(b), zlib.crc32(b));
    }
  });
});

describe('blob codec: corruption is a STORAGE_IO error', () => {
  const text = compressible(4000);
  const chunks = { brotli: encodeChunk(text, BROTLI), deflate: encodeChunk(text, DEFLATE), none: encodeChunk(text, NONE) };

  it('rejects a bad magic byte, an unknown version, codec id or flag, and a short header', () => {
    const c = chunks.brotli;
    assertStorageIo(() => decodeChunk(flipped(c, 0, 0xff)), /magic/);
    assertStorageIo(() => decodeChunk(Buffer.from(c).fill(2, 1, 2)), /version "2"/);
    assertStorageIo(() => decodeChunk(Buffer.from(c).fill(0, 1, 2)), /version "0"/);
    assertStorageIo(() => decodeChunk(Buffer.from(c).fill(9, 2, 3)), /unknown codec id "9"/);
    assertStorageIo(() => decodeChunk(Buffer.from(c).fill(0x80, 3, 4)), /unknown flags/);
    assertStorageIo(() => decodeChunk(Buffer.from(c).fill(0x02, 3, 4)), /unknown flags/);
    assertStorageIo(() => decodeChunk(c.subarray(0, 5)), /truncated/);
    assertStorageIo(() => decodeChunk(Buffer.alloc(0)), /truncated/);
    assertStorageIo(() => inspectChunk(c.subarray(0, HEADER - 1)), /truncated/);
  });

  it('rejects truncated payloads and trailing bytes', () => {
    for (const [name, c] of Object.entries(chunks)) {
      assertStorageIo(() => decodeChunk(c.subarray(0, c.length - 1)), undefined);
      assertStorageIo(() => decodeChunk(c.subarray(0, HEADER + 2)), undefined);
      assertStorageIo(() => decodeChunk(c.subarray(0, HEADER)), undefined);
      if (name === 'none') assertStorageIo(() => decodeChunk(Buffer.concat([c, Buffer.from('x')])), /decoded to/);
    }
  });

  it('never returns wrong bytes for a chunk with a flipped bit anywhere', () => {
    // A flip may land in bits a decoder ignores (deflate's final padding bits): then the bytes come back
    // intact. Anything else must be a STORAGE_IO error, never different content.
    for (const [name, c] of Object.entries(chunks)) {
      const step = name === 'none' ? 13 : 1;
      let errors = 0;
      let tries = 0;
      for (let i = 0; i < c.length; i += step) {
        for (const mask of [0x01, 0x80]) {
          tries++;
          let out: Buffer;
          try {
            out = decodeChunk(flipped(c, i, mask));
          } catch (err) {
            assert.ok(isPosternError(err, 'STORAGE_IO'), `${name} byte ${i}: ${String(err)}`);
            errors++;
            continue;
          }
          assert.ok(out.equals(text), `${name} chunk with byte ${i} flipped (mask ${mask}) decoded to different bytes`);
        }
      }
      assert.ok(errors >= tries - 2, `${name}: only ${errors} of ${tries} flips were detected`);
    }
  });

  it('catches a changed length, CRC or codec id in the header', () => {
    const c = chunks.brotli;
    assertStorageIo(() => decodeChunk(flipped(c, 7)), /corrupt/);
    assertStorageIo(() => decodeChunk(flipped(c, 11)), /CRC32/);
    assertStorageIo(() => decodeChunk(Buffer.from(c).fill(0, 2, 3)), /decoded to/);
    assertStorageIo(() => decodeChunk(Buffer.from(c).fill(1, 2, 3)), /corrupt/);
  });

  it('stops a payload that inflates past its declared length', () => {
    const bomb = zlib.brotliCompressSync(Buffer.alloc(4 * MIB));
    const header = Buffer.from([0xb5, 1, 2, 0, 0, 0, 0, 10, 0, 0, 0, 0]);
    assertStorageIo(() => decodeChunk(Buffer.concat([header, bomb])), /does not decode/);
    const deflateBomb = zlib.deflateRawSync(Buffer.alloc(4 * MIB));
    header[2] = 1;
    assertStorageIo(() => decodeChunk(Buffer.concat([header, deflateBomb])), /does not decode/);
  });
});

describe('blob codec: AES-256-GCM cipher', () => {
  const key = randomBytes(32);
  const cipher = aes256gcmCipher(key);
  const text = compressible(5000);

  it('round-trips corpus messages encrypted, with the flag and cipher id in the header', () => {
    const sample = corpus.filter((_, i) => i % 20 === 0);
    assert.ok(sample.length > 250);
    for (const msg of sample) {
      const enc = encodeChunk(msg, DEFAULT_BLOB_CODEC, cipher);
      const info = inspectChunk(enc);
      assert.equal(info.encrypted, true);
      assert.equal(info.cipherId, 1);
      assert.equal(info.headerLength, HEADER + 1);
      assert.equal(enc.readUInt32BE(8), 0, 'no plaintext CRC on an encrypted chunk');
      assert.ok(decodeChunk(enc, cipher).equals(msg));
    }
  });

  it('hides the plaintext and uses a fresh IV per chunk', () => {
    const secret = Buffer.from('the quarterly numbers are confidential');
    const a = encodeChunk(secret, NONE, cipher);
    const b = encodeChunk(secret, NONE, cipher);
    assert.equal(a.indexOf(secret.subarray(0, 12)), -1);
    assert.ok(!a.equals(b));
    assert.deepEqual(decodeChunk(a, cipher), secret);
    assert.deepEqual(decodeChunk(b, cipher), secret);
  });

  it('detects tampering with any byte of an encrypted chunk, header included', () => {
    for (const opts of [BROTLI, NONE]) {
      const enc = encodeChunk(text, opts, cipher);
      for (let i = 0; i < enc.length; i += opts === NONE ? 7 : 1) {
        try {
          decodeChunk(flipped(enc, i), cipher);
        } catch (err) {
          assert.ok(isPosternError(err, 'STORAGE_IO'), `byte ${i}: ${String(err)}`);
          continue;
        }
        assert.fail(`encrypted ${opts.codec} chunk with byte ${i} flipped decoded without error`);
      }
    }
  });

  it('fails authentication with the wrong key and on a truncated seal', () => {
    const enc = encodeChunk(text, BROTLI, cipher);
    assertStorageIo(() => decodeChunk(enc, aes256gcmCipher(randomBytes(32))), /authentication/);
    assertStorageIo(() => decodeChunk(enc.subarray(0, enc.length - 1), cipher), /authentication/);
    assertStorageIo(() => decodeChunk(enc.subarray(0, HEADER + 1 + 20), cipher), /truncated/);
    assertStorageIo(() => decodeChunk(enc.subarray(0, HEADER), cipher), /truncated/);
  });

  it('needs a cipher with the chunk\'s id; picks it from a list (key rotation)', () => {
    const old = aes256gcmCipher(randomBytes(32), 1);
    const current = aes256gcmCipher(randomBytes(32), 2);
    const encOld = encodeChunk(text, BROTLI, old);
    const encNew = encodeChunk(text, BROTLI, current);
    assert.equal(inspectChunk(encNew).cipherId, 2);
    assertStorageIo(() => decodeChunk(encOld), /cipher id "1"/);
    assertStorageIo(() => decodeChunk(encOld, current), /cipher id "1"/);
    assert.ok(decodeChunk(encOld, [current, old]).equals(text));
    assert.ok(decodeChunk(encNew, [current, old]).equals(text));
    assertStorageIo(() => decodeChunk(Buffer.from(encNew).fill(0, HEADER, HEADER + 1), [current]), /cipher id "0"/);
  });

  it('still reads unencrypted chunks when given a cipher (encryption turned on later)', () => {
    const plain = encodeChunk(text, BROTLI);
    assert.equal(inspectChunk(plain).encrypted, false);
    assert.ok(decodeChunk(plain, cipher).equals(text));
  });

  it('wraps a custom cipher\'s failure in STORAGE_IO', () => {
    const broken: ChunkCipher = {
      id: 7,
      seal: (plain) => Buffer.from(plain),
      open: () => { throw new Error('hardware module unavailable'); },
    };
    const enc = encodeChunk(text, BROTLI, broken);
    assertStorageIo(() => decodeChunk(enc, broken), /hardware module unavailable/);
  });

  it('rejects a bad key length or cipher id with INVALID_INPUT', () => {
    assertInvalidInput(() => aes256gcmCipher(randomBytes(16)));
    assertInvalidInput(() => aes256gcmCipher(randomBytes(32), 0));
    assertInvalidInput(() => aes256gcmCipher(randomBytes(32), 256));
    assertInvalidInput(() => encodeChunk(text, BROTLI, { id: 0, seal: (p) => p, open: (s) => s }));
  });

  it('is not affected by later changes to the caller\'s key buffer', () => {
    const k = randomBytes(32);
    const c = aes256gcmCipher(k);
    const enc = encodeChunk(text, BROTLI, c);
    k.fill(0);
    assert.ok(decodeChunk(enc, c).equals(text));
  });
});

it('encodeChunkAsync writes exactly what encodeChunk writes, and decodes back', async () => {
  const { encodeChunk: enc, encodeChunkAsync, decodeChunk: dec } = await import('../../../core/storage/blob-codec.ts');
  const text = Buffer.from('Subject: async\r\n\r\n' + 'line of mail text\r\n'.repeat(500));
  for (const options of [{ codec: 'brotli', level: 5, minSize: 256 }, { codec: 'deflate', level: 6, minSize: 256 }, { codec: 'none', level: 0, minSize: 0 }] as const) {
    const a = await encodeChunkAsync(text, options);
    assert.ok(a.equals(enc(text, options)), options.codec);
    assert.ok(dec(a).equals(text));
  }
});

describe('blob codec: compression done ahead (packChunk, then encodeChunkPacked)', () => {
  const sample = corpus.filter((_, i) => i % 25 === 0);

  it('stores the same bytes as encodeChunk for every codec, on corpus mail and on edge sizes', () => {
    assert.ok(sample.length > 200);
    const inputs = [...sample, Buffer.alloc(0), compressible(10), compressible(300), randomBytes(4096)];
    for (const opts of [DEFAULT_BLOB_CODEC, BROTLI, DEFLATE, NONE]) {
      for (const msg of inputs) {
        const packed = packChunk(msg, opts);
        // What crosses from a worker thread is a plain Uint8Array, not a Buffer.
        const carried = { ...packed, bytes: packed.bytes === null ? null : new Uint8Array(packed.bytes) };
        assert.ok(encodeChunkPacked(msg, carried, opts).equals(encodeChunk(msg, opts)), `${opts.codec} ${msg.length} bytes`);
      }
    }
  });

  it('seals packed bytes with the cipher like encodeChunk does', () => {
    const cipher = aes256gcmCipher(randomBytes(32));
    for (const msg of sample.slice(0, 40)) {
      const enc = encodeChunkPacked(msg, packChunk(msg), DEFAULT_BLOB_CODEC, cipher);
      const info = inspectChunk(enc);
      assert.equal(info.encrypted, true);
      assert.equal(info.codec, inspectChunk(encodeChunk(msg)).codec);
      assert.ok(decodeChunk(enc, cipher).equals(msg));
    }
  });

  it('compresses again when the bytes were packed with other settings than the archive uses now', () => {
    const msg = compressible(20000);
    const stale = packChunk(msg, { codec: 'deflate', level: 1, minSize: 0 });
    for (const now of [DEFAULT_BLOB_CODEC, { ...DEFAULT_BLOB_CODEC, level: 4 }, { ...DEFAULT_BLOB_CODEC, minSize: 1 }, NONE]) {
      const packedNow = packChunk(msg, now);
      const mismatch = stale.codec !== now.codec || stale.level !== now.level || stale.minSize !== now.minSize;
      assert.ok(mismatch);
      const enc = encodeChunkPacked(msg, stale, now);
      assert.equal(inspectChunk(enc).codec, inspectChunk(encodeChunk(msg, now)).codec);
      assert.ok(enc.equals(encodeChunkPacked(msg, packedNow, now)));
      assert.ok(decodeChunk(enc).equals(msg));
    }
  });
});
