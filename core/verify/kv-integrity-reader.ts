// Integrity scans of the embedded archive: every blob manifest (`b\0`), message (`m\0`) and entry (`e\0`)
// in key order, and single chunks (`c\0<sha>\0<n>`) decoded with the store's cipher. Read-only. Trusts
// nothing in the stored bytes: a value that does not parse (or lacks its fields) is yielded as a failed
// item naming its key, so verification reports it and goes on with the next one.
import type { KvEngine } from '../storage/kv.ts';
import { keys, prefixEnd } from '../storage/kv-keys.ts';
import { decodeChunk, type ChunkCipher } from '../storage/blob-codec.ts';
import type { ArchiveEntry, BlobInfo, IntegrityReader, MessageRecord, Scanned } from '../storage/types.ts';

const printable = (key: string): string => key.replace(/\u0000/g, '/');

function parsed<T>(key: string, value: Buffer, check: (v: Record<string, unknown>) => boolean): Scanned<T> {
  try {
    const v = JSON.parse(value.toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && check(v as Record<string, unknown>)) return { ok: true, value: v as T };
    return { ok: false, where: printable(key), error: 'the stored record lacks required fields' };
  } catch {
    return { ok: false, where: printable(key), error: 'the stored record is not valid JSON' };
  }
}

const isBlob = (v: Record<string, unknown>): boolean => [v.size, v.chunks, v.refs].every((n) => Number.isSafeInteger(n));
const isMessage = (v: Record<string, unknown>): boolean => typeof v.id === 'string' && typeof v.blobId === 'string';
const isEntry = (v: Record<string, unknown>): boolean => typeof v.user === 'string' && typeof v.folder === 'string' && typeof v.messageId === 'string' && Number.isSafeInteger(v.uid);

export class KvIntegrityReader implements IntegrityReader {
  constructor(private readonly kv: KvEngine, private readonly cipher: ChunkCipher | undefined) {}

  private async *scan<T>(prefix: string, check: (v: Record<string, unknown>) => boolean): AsyncIterable<[string, Scanned<T>]> {
    for await (const [k, v] of this.kv.entries({ gte: prefix, lt: prefixEnd(prefix) })) yield [k.slice(prefix.length), parsed<T>(k, v, check)];
  }

  async *blobs(): AsyncIterable<Scanned<BlobInfo>> {
    for await (const [sha256, s] of this.scan<Omit<BlobInfo, 'sha256'>>(keys.blobPrefix(), isBlob)) {
      yield s.ok ? { ok: true, value: { sha256, size: s.value.size, chunks: s.value.chunks, refs: s.value.refs } } : s;
    }
  }

  async blob(sha256: string): Promise<BlobInfo | null> {
    const key = keys.blob(sha256);
    const raw = await this.kv.get(key);
    if (!raw) return null;
    const s = parsed<Omit<BlobInfo, 'sha256'>>(key, raw, isBlob);
    return s.ok ? { sha256, size: s.value.size, chunks: s.value.chunks, refs: s.value.refs } : null;
  }

  async chunk(sha256: string, n: number): Promise<Buffer | null> {
    const raw = await this.kv.get(keys.chunk(sha256, n));
    return raw ? decodeChunk(raw, this.cipher) : null;
  }

  async *messages(): AsyncIterable<Scanned<MessageRecord>> {
    for await (const [, s] of this.scan<MessageRecord>(keys.messagePrefix(), isMessage)) yield s;
  }

  async *entries(): AsyncIterable<Scanned<ArchiveEntry>> {
    for await (const [, s] of this.scan<ArchiveEntry>(keys.entryAll(), isEntry)) yield s;
  }
}
