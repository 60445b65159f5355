// At-rest encoding of blob chunks: the original mail bytes, stored as pieces of at most 1 MiB under
// `c\0<sha256>\0<n>` (KEYS.md). encodeChunk compresses a chunk with the configured codec, keeps the result
// only when it is smaller by at least minSaving() bytes (else stores the bytes raw), optionally seals it
// with a ChunkCipher, and puts a self-describing header in front. decodeChunk reads a chunk written by any
// version of encodeChunk: the header names the format version, codec and cipher, so the default codec, its
// level and the encryption setting can change at any time without rewriting old chunks (the level is not
// stored: no decoder needs it). Every chunk has a header; there is no headerless legacy data.
//
// Format version 1 (integers big-endian):
//   0   u8   magic 0xB5 (not ASCII, unlike the first byte of any mail message: header names are ASCII)
//   1   u8   format version, 1
//   2   u8   codec id: 0 none (raw), 1 deflate (bare RFC 1951 stream), 2 brotli. Ids are never reused.
//   3   u8   flags: bit 0 encrypted; bits 1–7 reserved and written 0. A reader rejects flags it does not
//            know rather than guess what a newer writer meant.
//   4   u32  raw (decoded) length
//   8   u32  CRC-32 of the raw bytes; 0 when encrypted (the AEAD tag gives integrity, and a plaintext
//            checksum would let anyone holding the store confirm a guessed message)
//   12  u8   cipher id 1–255, present only when encrypted
//   ..  payload: the codec's output, or cipher.seal(codec output, aad = all header bytes above)
// So a chunk is never larger than raw + 12 bytes (+ 1 + the cipher's overhead, 28 for AES-256-GCM).
//
// What it trusts: nothing in the stored bytes. Every header field is checked; decompression is bounded by
// the declared length (maxOutputLength: a corrupt or hostile payload cannot inflate without limit); the
// result must match the declared length and CRC-32, or pass the cipher's authentication. Any failure is a
// PosternError STORAGE_IO. The CRC catches accidental corruption, not a forger who can write the store:
// only encryption does that, and decodeChunk still reads unencrypted chunks when given a cipher (so turning
// encryption on needs no rewrite); a caller that must refuse plaintext checks inspectChunk().encrypted.
// It trusts the caller's options (validated, INVALID_INPUT) and a ChunkCipher implementation.
//
// What it hands on: decodeChunk returns exactly the bytes that were encoded; for a raw chunk it is a view
// into `stored` (no copy), so callers must not mutate either. Chunk size and splitting stay with the archive.
//
// Sync and async: encodeChunk compresses on the calling thread; encodeChunkAsync runs the same compression
// on the libuv thread pool and writes the same bytes. Async is not for throughput: measured on the corpus
// (one message per call, 2 cores), async with 1 call in flight ran at 0.5–0.8x the sync rate (q5: 20.6 vs
// 39.5 MB/s) and 4 in flight at 0.6–1.2x sync across two runs, i.e. no reliable gain. It is for the event
// loop: sync, a full 1 MiB text chunk blocks it for about 25 ms at q5 (8 ms at q4), a typical 5 KB message
// for about 0.13 ms, time the SMTP sessions on the same loop would wait. Decoding stays sync (brotli
// decodes at 200+ MB/s: ~5 ms per 1 MiB chunk, and reads are rare). packChunk runs only the codec step
// where the bytes already are on another thread (the analysis workers, for a message that fits one
// chunk), and encodeChunkPacked frames, checksums and seals that output on the archive's thread: the
// same stored bytes as encodeChunk, without compressing on the event loop.
//
// Why DEFAULT_BLOB_CODEC is brotli q5, minSize 256 (test/bench/codecs.ts on the SpamAssassin public
// corpus: 6,046 real messages, 32.5 MB, read as bytes; Node 20.20, best of 5 passes on a shared 2-core
// machine, so MB/s are rough and the ranking is what counts; stored/raw is codec output only, smaller is
// better):
//
//   codec          | corpus, 1 msg/chunk      | 1 MiB text chunks        | base64 attachment  | random 1 MiB
//                  | stored/raw  comp MB/s    | stored/raw  comp MB/s    | stored/raw  MB/s   | comp MB/s
//   deflate 1      |   0.413       95         |   0.289      157         |   0.759     59     |    59
//   deflate 6      |   0.394       64         |   0.254       77         |   0.759     56     |    57
//   gzip 6         |   0.398       71         |   0.254       77         |   0.759     56     |    57
//   brotli q1      |   0.431      142         |   0.253      353         |   0.757    344     |  3387
//   brotli q4      |   0.402       56         |   0.215      133         |       -      -     |     -
//   brotli q5      |   0.377       40         |   0.198       42         |   0.757    110     |   401
//   brotli q6      |   0.376       39         |   0.197       34         |   0.757     66     |   331
//   brotli q9      |   0.375      1.2         |   0.194       12         |       -      -     |     -
//   brotli q11     |   0.335      0.9         |       -        -         |       -      -     |     -
//   decompress: brotli q1–q6 200–670 MB/s, deflate 230–610 MB/s on text.
//
// q5 is the knee: 6–8% smaller than q4 and 4–22% smaller than deflate 6 on mail, while q6 gains under 1%
// and q9+ pay a fixed ~4 ms per call. Brotli also gives up on incompressible data (already-compressed
// attachments, random) at 400+ MB/s where deflate burns ~57 MB/s to produce nothing; base64 attachments
// shrink to ~0.76 with any codec. Archives are written once and kept for years, so ratio wins over speed;
// level 4 is the knob if intake becomes CPU-bound (old chunks still decode). minSize 256: on 128-byte
// slices of real mail only 9% of chunks saved 16 bytes (stored/raw 1.08 with the header), at 256 every one
// did (0.76); a brotli call costs ~20 µs however small its input.
//
// Encryption (optional): AES-256-GCM with a random 96-bit IV per chunk, so at most 2^32 chunks per key
// (NIST SP 800-38D); rotate by giving the new key a new cipher id and passing every live cipher to
// decodeChunk. Compression happens before encryption, so the stored size reveals the compressed size.
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import zlib from 'node:zlib';
import { PosternError, errorMessage } from '../errors.ts';

export type CodecName = 'none' | 'deflate' | 'brotli';

export interface BlobCodecOptions {
  /** Codec tried for chunks of at least `minSize` bytes; 'none' always stores raw. */
  codec: CodecName;
  /** deflate: 1–9; brotli: 0–11 (quality); ignored for 'none'. */
  level: number;
  /** Chunks shorter than this are stored raw without trying to compress them. */
  minSize: number;
}

export const DEFAULT_BLOB_CODEC: BlobCodecOptions = Object.freeze({ codec: 'brotli', level: 5, minSize: 256 });

/** Optional encryption layer applied to the (possibly compressed) payload. */
export interface ChunkCipher {
  /** 1–255, stored in every chunk it seals so decodeChunk can pick the right cipher or key (rotation). */
  readonly id: number;
  /** Encrypts and authenticates `plain` and `aad` (the chunk header, not stored inside the result). */
  seal(plain: Buffer, aad: Buffer): Buffer;
  /** Reverses seal; throws when `sealed` or `aad` was altered. */
  open(sealed: Buffer, aad: Buffer): Buffer;
}

/** What a stored chunk's header says, without decoding its payload. */
export interface ChunkInfo {
  version: number;
  codec: CodecName;
  encrypted: boolean;
  /** The cipher id when encrypted, else 0. */
  cipherId: number;
  rawLength: number;
  /** Bytes of header (including the cipher id byte when encrypted). */
  headerLength: number;
}

const MAGIC = 0xb5;
const FORMAT_VERSION = 1;
const BASE_HEADER = 12;
const FLAG_ENCRYPTED = 0x01;
const KNOWN_FLAGS = FLAG_ENCRYPTED;
const MAX_RAW = 0xffff_ffff;

/** Stored codec ids. Never renumber: they are on disk. New codecs get new ids. */
const CODEC_IDS = { none: 0, deflate: 1, brotli: 2 } as const satisfies Record<CodecName, number>;
const CODEC_BY_ID: readonly CodecName[] = ['none', 'deflate', 'brotli'];

/** Maximum header size: the base header plus the cipher id byte. */
export const CHUNK_HEADER_MAX = BASE_HEADER + 1;

const ioError = (message: string, cause?: unknown): PosternError =>
  new PosternError('STORAGE_IO', message, cause === undefined ? undefined : { cause });

// ---- CRC32 (zlib.crc32 exists from Node 20.15; the engines field allows 20.11) ----

let crcTable: Uint32Array | null = null;
/** Portable CRC-32 (IEEE, same as zlib.crc32); exported for tests. */
export function crc32Portable(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const table = crcTable;
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = (table[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
const crc32: (data: Buffer) => number = typeof zlib.crc32 === 'function' ? (d) => zlib.crc32(d) : crc32Portable;

// ---- codecs ----

function brotliOptions(raw: Buffer, level: number): zlib.BrotliOptions {
  return { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length } };
}

function compress(codec: Exclude<CodecName, 'none'>, raw: Buffer, level: number): Buffer {
  if (codec === 'deflate') return zlib.deflateRawSync(raw, { level });
  return zlib.brotliCompressSync(raw, brotliOptions(raw, level));
}

/** The same compression on the libuv thread pool, off the event loop. */
function compressAsync(codec: Exclude<CodecName, 'none'>, raw: Buffer, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, out: Buffer): void => (err ? reject(err) : resolve(out));
    if (codec === 'deflate') zlib.deflateRaw(raw, { level }, done);
    else zlib.brotliCompress(raw, brotliOptions(raw, level), done);
  });
}

function decompress(codec: Exclude<CodecName, 'none'>, payload: Buffer, rawLength: number): Buffer {
  // maxOutputLength bounds the work a corrupt (or hostile) payload can cause to the declared size.
  const maxOutputLength = Math.max(1, rawLength);
  if (codec === 'deflate') return zlib.inflateRawSync(payload, { maxOutputLength });
  return zlib.brotliDecompressSync(payload, { maxOutputLength });
}

function validateOptions(o: BlobCodecOptions): void {
  if (!Object.hasOwn(CODEC_IDS, o.codec)) throw new PosternError('INVALID_INPUT', `Blob codec "${String(o.codec)}" is unknown`);
  const [lo, hi] = o.codec === 'brotli' ? [0, 11] : o.codec === 'deflate' ? [1, 9] : [-Infinity, Infinity];
  if (o.codec !== 'none' && !(Number.isInteger(o.level) && o.level >= lo && o.level <= hi)) {
    throw new PosternError('INVALID_INPUT', `Blob codec "${o.codec}" level must be an integer ${lo}–${hi}, got "${o.level}"`);
  }
  if (!(Number.isInteger(o.minSize) && o.minSize >= 0)) {
    throw new PosternError('INVALID_INPUT', `Blob codec minSize must be a non-negative integer, got "${o.minSize}"`);
  }
}

/** Compressed output is kept only when it saves at least this much (else the chunk is stored raw). */
export function minSaving(rawLength: number): number {
  return Math.max(16, Math.ceil(rawLength / 32));
}

// ---- encode / decode ----

/**
 * Encodes one chunk: header + payload. Stores the bytes raw ('none') when the chunk is shorter than
 * `options.minSize`, empty, or when compression does not save at least minSaving() bytes. With a cipher,
 * the payload is sealed with the header as associated data and the encrypted flag is set.
 */
export function encodeChunk(raw: Buffer, options: BlobCodecOptions = DEFAULT_BLOB_CODEC, cipher?: ChunkCipher): Buffer {
  const packed = worthCompressing(raw, options, cipher) ? compress(options.codec as Exclude<CodecName, 'none'>, raw, options.level) : null;
  return frame(raw, packed, options, cipher);
}

/**
 * encodeChunk with the compression run on the libuv thread pool: the same bytes, but the event loop
 * stays free for protocol work (the archive's intake path is event-loop bound; a 20 KB message at q5
 * costs ~0.5 ms of compression that a second core can take).
 */
export async function encodeChunkAsync(raw: Buffer, options: BlobCodecOptions = DEFAULT_BLOB_CODEC, cipher?: ChunkCipher): Promise<Buffer> {
  const packed = worthCompressing(raw, options, cipher) ? await compressAsync(options.codec as Exclude<CodecName, 'none'>, raw, options.level) : null;
  return frame(raw, packed, options, cipher);
}

/**
 * A chunk's compression done ahead of its encoding, on another thread (an analysis worker): the codec
 * output for the whole chunk, or null when the codec does not apply (too short, 'none'). Only the codec
 * step: the frame, CRC and encryption stay with encodeChunkPacked on the archive's side.
 */
export interface PackedChunk {
  codec: CodecName;
  level: number;
  minSize: number;
  bytes: Uint8Array | null;
}

/** Compresses one whole chunk as encodeChunk would (for encodeChunkPacked). */
export function packChunk(raw: Buffer, options: BlobCodecOptions = DEFAULT_BLOB_CODEC): PackedChunk {
  const packed = worthCompressing(raw, options, undefined) ? compress(options.codec as Exclude<CodecName, 'none'>, raw, options.level) : null;
  return { codec: options.codec, level: options.level, minSize: options.minSize, bytes: packed };
}

/**
 * encodeChunk of `raw` using compression already done by packChunk on the same bytes: the same stored
 * bytes (but a fresh IV when encrypted). Packed with other codec settings than `options` (the
 * configuration changed between the two), it compresses here instead.
 */
export function encodeChunkPacked(raw: Buffer, packed: PackedChunk, options: BlobCodecOptions = DEFAULT_BLOB_CODEC, cipher?: ChunkCipher): Buffer {
  if (packed.codec !== options.codec || packed.level !== options.level || packed.minSize !== options.minSize) return encodeChunk(raw, options, cipher);
  worthCompressing(raw, options, cipher);
  const bytes = packed.bytes === null ? null : Buffer.from(packed.bytes.buffer, packed.bytes.byteOffset, packed.bytes.byteLength);
  return frame(raw, bytes, options, cipher);
}

function worthCompressing(raw: Buffer, options: BlobCodecOptions, cipher: ChunkCipher | undefined): boolean {
  validateOptions(options);
  if (raw.length > MAX_RAW) throw new PosternError('INVALID_INPUT', `Blob chunk of ${raw.length} bytes is too large to encode`);
  if (cipher) validateCipherId(cipher.id);
  return options.codec !== 'none' && raw.length >= options.minSize && raw.length > 0;
}

/** Header + payload: the compressed bytes when they save enough, else the raw bytes; sealed with a cipher. */
function frame(raw: Buffer, packed: Buffer | null, options: BlobCodecOptions, cipher: ChunkCipher | undefined): Buffer {
  let codec: CodecName = 'none';
  let payload = raw;
  if (packed && packed.length <= raw.length - minSaving(raw.length)) {
    codec = options.codec;
    payload = packed;
  }

  const header = Buffer.alloc(cipher ? BASE_HEADER + 1 : BASE_HEADER);
  header[0] = MAGIC;
  header[1] = FORMAT_VERSION;
  header[2] = CODEC_IDS[codec];
  header[3] = cipher ? FLAG_ENCRYPTED : 0;
  header.writeUInt32BE(raw.length, 4);
  // An encrypted chunk's integrity comes from the AEAD tag; a plaintext CRC would only leak a fingerprint.
  header.writeUInt32BE(cipher ? 0 : crc32(raw), 8);
  if (!cipher) return Buffer.concat([header, payload], header.length + payload.length);
  header[BASE_HEADER] = cipher.id;
  const sealed = cipher.seal(payload, header);
  return Buffer.concat([header, sealed], header.length + sealed.length);
}

/** Reads and checks a stored chunk's header without decoding the payload; STORAGE_IO when it is bad. */
export function inspectChunk(stored: Buffer): ChunkInfo {
  if (stored.length < BASE_HEADER) throw ioError(`Blob chunk is truncated: ${stored.length} bytes, the header alone needs ${BASE_HEADER}`);
  if (stored[0] !== MAGIC) throw ioError(`Blob chunk has bad magic byte "0x${hex(stored[0])}" (expected "0x${hex(MAGIC)}")`);
  const version = stored[1] as number;
  if (version !== FORMAT_VERSION) throw ioError(`Blob chunk format version "${version}" is not supported (this build reads version ${FORMAT_VERSION})`);
  const codecId = stored[2] as number;
  const codec = CODEC_BY_ID[codecId];
  if (codec === undefined) throw ioError(`Blob chunk uses unknown codec id "${codecId}"`);
  const flags = stored[3] as number;
  if (flags & ~KNOWN_FLAGS) throw ioError(`Blob chunk has unknown flags "0x${hex(flags)}"`);
  const encrypted = (flags & FLAG_ENCRYPTED) !== 0;
  if (encrypted && stored.length < BASE_HEADER + 1) throw ioError('Blob chunk is truncated: encrypted but has no cipher id');
  const cipherId = encrypted ? stored[BASE_HEADER] as number : 0;
  if (encrypted && cipherId === 0) throw ioError('Blob chunk is encrypted with cipher id "0", which is never assigned');
  return { version, codec, encrypted, cipherId, rawLength: stored.readUInt32BE(4), headerLength: encrypted ? BASE_HEADER + 1 : BASE_HEADER };
}

/**
 * Decodes a chunk written by any version of encodeChunk and returns its original bytes. Encrypted chunks
 * need the cipher whose id the header names (pass a list during key rotation). Throws PosternError
 * STORAGE_IO on a bad header, unknown version, codec or flag, a missing cipher, failed authentication,
 * or a payload that does not decode to the declared length and CRC-32.
 */
export function decodeChunk(stored: Buffer, ciphers?: ChunkCipher | readonly ChunkCipher[]): Buffer {
  const info = inspectChunk(stored);
  const header = stored.subarray(0, info.headerLength);
  let payload = stored.subarray(info.headerLength);

  if (info.encrypted) {
    const list: readonly ChunkCipher[] = ciphers === undefined ? [] : Array.isArray(ciphers) ? ciphers : [ciphers as ChunkCipher];
    const cipher = list.find((c) => c.id === info.cipherId);
    if (!cipher) throw ioError(`Blob chunk is encrypted with cipher id "${info.cipherId}", but no such cipher was given`);
    try {
      payload = cipher.open(payload, header);
    } catch (err) {
      if (err instanceof PosternError && err.code === 'STORAGE_IO') throw err;
      throw ioError(`Blob chunk failed to decrypt with cipher id "${info.cipherId}": ${errorMessage(err)}`, err);
    }
  }

  let raw: Buffer;
  if (info.codec === 'none') {
    raw = payload;
  } else {
    try {
      raw = decompress(info.codec, payload, info.rawLength);
    } catch (err) {
      throw ioError(`Blob chunk is corrupt: its ${info.codec} payload does not decode (${errorMessage(err)})`, err);
    }
  }
  if (raw.length !== info.rawLength) {
    throw ioError(`Blob chunk is corrupt: decoded to ${raw.length} bytes, its header says ${info.rawLength}`);
  }
  if (!info.encrypted) {
    const expected = stored.readUInt32BE(8);
    const actual = crc32(raw);
    if (actual !== expected) throw ioError(`Blob chunk is corrupt: CRC32 "${hex32(actual)}" does not match its header's "${hex32(expected)}"`);
  }
  return raw;
}

function validateCipherId(id: number): void {
  if (!(Number.isInteger(id) && id >= 1 && id <= 255)) throw new PosternError('INVALID_INPUT', `Chunk cipher id must be an integer 1–255, got "${id}"`);
}

const hex = (n: number | undefined): string => (n ?? 0).toString(16).padStart(2, '0');
const hex32 = (n: number): string => n.toString(16).padStart(8, '0');

// ---- AES-256-GCM ----

const GCM_IV = 12;
const GCM_TAG = 16;

/**
 * AES-256-GCM ChunkCipher: sealed = IV (12 random bytes) ‖ ciphertext ‖ tag (16 bytes), with the chunk
 * header as associated data. `key` must be 32 bytes (copied); `id` (default 1) goes into every chunk.
 */
export function aes256gcmCipher(key: Buffer, id = 1): ChunkCipher {
  if (key.length !== 32) throw new PosternError('INVALID_INPUT', `AES-256-GCM key must be 32 bytes, got ${key.length}`);
  validateCipherId(id);
  const secret: KeyObject = createSecretKey(Buffer.from(key));
  return {
    id,
    seal(plain: Buffer, aad: Buffer): Buffer {
      const iv = randomBytes(GCM_IV);
      const c = createCipheriv('aes-256-gcm', secret, iv, { authTagLength: GCM_TAG });
      c.setAAD(aad);
      const head = c.update(plain);
      const tail = c.final();
      return Buffer.concat([iv, head, tail, c.getAuthTag()]);
    },
    open(sealed: Buffer, aad: Buffer): Buffer {
      if (sealed.length < GCM_IV + GCM_TAG) {
        throw ioError(`Blob chunk is truncated: ${sealed.length} sealed bytes, AES-256-GCM needs at least ${GCM_IV + GCM_TAG}`);
      }
      const d = createDecipheriv('aes-256-gcm', secret, sealed.subarray(0, GCM_IV), { authTagLength: GCM_TAG });
      d.setAuthTag(sealed.subarray(sealed.length - GCM_TAG));
      d.setAAD(aad);
      const body = d.update(sealed.subarray(GCM_IV, sealed.length - GCM_TAG));
      try {
        return Buffer.concat([body, d.final()]);
      } catch (err) {
        throw ioError(`Blob chunk failed AES-256-GCM authentication (cipher id "${id}"): wrong key or altered data`, err);
      }
    },
  };
}
