// At-rest encoding of blob chunks (PROVISIONAL HEADER, rewritten after measurement)
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

function compress(codec: Exclude<CodecName, 'none'>, raw: Buffer, level: number): Buffer {
  if (codec === 'deflate') return zlib.deflateRawSync(raw, { level });
  return zlib.brotliCompressSync(raw, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: level,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
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

export function encodeChunk(raw: Buffer, options: BlobCodecOptions = DEFAULT_BLOB_CODEC, cipher?: ChunkCipher): Buffer {
  validateOptions(options);
  if (raw.length > MAX_RAW) throw new PosternError('INVALID_INPUT', `Blob chunk of ${raw.length} bytes is too large to encode`);
  if (cipher) validateCipherId(cipher.id);

  let codec: CodecName = 'none';
  let payload = raw;
  if (options.codec !== 'none' && raw.length >= options.minSize && raw.length > 0) {
    const packed = compress(options.codec, raw, options.level);
    if (packed.length <= raw.length - minSaving(raw.length)) {
      codec = options.codec;
      payload = packed;
    }
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
