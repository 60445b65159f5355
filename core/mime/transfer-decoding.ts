// Incremental Content-Transfer-Encoding decoders (base64, quoted-printable, identity) that accept a body
// in arbitrary chunks and keep only a few bytes of carry between them.
// Trusts nothing: invalid characters and truncated escapes are passed through or dropped, never thrown.
// Hands on decoded Buffers to whoever reads a body's content (search, indexing).

export interface ChunkDecoder {
  write(chunk: Buffer): Buffer;
  end(): Buffer;
}

/** RFC 2045 6.8: the base64 alphabet; every other character is ignored. */
const B64_STRICT = new Int16Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => { B64_STRICT[c.charCodeAt(0)] = i; });
/** The alphabet with base64url's "-" and "_" read as "+" and "/" (seen in the wild). */
const B64 = Int16Array.from(B64_STRICT);
B64['-'.charCodeAt(0)] = 62;
B64['_'.charCodeAt(0)] = 63;

class Base64Decoder implements ChunkDecoder {
  private carry: number[] = [];
  constructor(private readonly map: Int16Array) {}
  write(chunk: Buffer): Buffer {
    const out = Buffer.allocUnsafe(Math.floor(((chunk.length + this.carry.length) * 3) / 4) + 3);
    let n = 0;
    const q = this.carry;
    for (let i = 0; i < chunk.length; i++) {
      const v = this.map[chunk[i] as number] as number;
      if (v < 0) continue;
      q.push(v);
      if (q.length === 4) {
        const [a, b, c, d] = q as [number, number, number, number];
        out[n++] = (a << 2) | (b >> 4);
        out[n++] = ((b & 15) << 4) | (c >> 2);
        out[n++] = ((c & 3) << 6) | d;
        q.length = 0;
      }
    }
    return out.subarray(0, n);
  }
  end(): Buffer {
    const q = this.carry;
    const out: number[] = [];
    if (q.length >= 2) out.push(((q[0] as number) << 2) | ((q[1] as number) >> 4));
    if (q.length === 3) out.push((((q[1] as number) & 15) << 4) | ((q[2] as number) >> 2));
    this.carry = [];
    return Buffer.from(out);
  }
}

const hex = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1);

class QuotedPrintableDecoder implements ChunkDecoder {
  private carry = Buffer.alloc(0);
  write(chunk: Buffer): Buffer {
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const out = Buffer.allocUnsafe(buf.length);
    let n = 0;
    let i = 0;
    for (; i < buf.length; i++) {
      const c = buf[i] as number;
      if (c !== 0x3d) { out[n++] = c; continue; }
      // "=" needs up to two more bytes: keep it for the next chunk when they have not arrived.
      if (i + 2 >= buf.length && !(buf[i + 1] === 0x0a)) {
        if (i + 1 < buf.length && buf[i + 1] !== 0x0d && hex(buf[i + 1] as number) < 0) { out[n++] = c; continue; }
        break;
      }
      const a = buf[i + 1] as number;
      const b = buf[i + 2] as number;
      if (a === 0x0a) { i += 1; continue; } // soft break, bare LF
      if (a === 0x0d && b === 0x0a) { i += 2; continue; } // soft break
      const h = hex(a);
      const l = hex(b);
      if (h >= 0 && l >= 0) { out[n++] = (h << 4) | l; i += 2; continue; }
      out[n++] = c; // not an escape: keep the "=" literally
    }
    this.carry = Buffer.from(buf.subarray(i));
    return out.subarray(0, n);
  }
  end(): Buffer {
    const rest = this.carry;
    this.carry = Buffer.alloc(0);
    // A trailing "=" (soft break at the very end) produces nothing; anything else stays as it was.
    return rest.length > 0 && rest[0] === 0x3d && rest.length === 1 ? Buffer.alloc(0) : rest;
  }
}

class IdentityDecoder implements ChunkDecoder {
  write(chunk: Buffer): Buffer { return chunk; }
  end(): Buffer { return Buffer.alloc(0); }
}

export interface TransferDecoderOptions {
  /** Read base64url's "-" and "_" in base64 (default); false ignores them as RFC 2045 6.8 says (IMAP SEARCH does). */
  base64url?: boolean;
}

/** A decoder for a Content-Transfer-Encoding value (case-insensitive); unknown ones pass bytes through. */
export function transferDecoder(encoding: string | null | undefined, options: TransferDecoderOptions = {}): ChunkDecoder {
  switch ((encoding ?? '').trim().toLowerCase()) {
    case 'base64': return new Base64Decoder(options.base64url === false ? B64_STRICT : B64);
    case 'quoted-printable': return new QuotedPrintableDecoder();
    default: return new IdentityDecoder();
  }
}
