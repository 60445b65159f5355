// What FETCH and SEARCH need of one archived message: its blob id and precomputed IMAP data (stored
// with the message at archive time; computed from the blob for messages archived before the plugin or
// with an earlier data format, then stored with the message and kept in the LRU), its size and top-level header in the IMAP view
// (bare LF read as CRLF, message/crlf.ts), and its original bytes as a stream. Recently used messages,
// sizes and headers are kept in bounded LRUs (by count and by bytes), so repeated FETCH/SEARCH read no storage.
import { Readable } from 'node:stream';
import { PosternError } from '../../core/errors.ts';
import type { ArchiveStore } from '../../core/storage/types.ts';
import { collectText, collectedMatches, computeImapData, headerSearchValues, imapDataOf, joinedValuesMatch, textMatches, viewWindow, type HeaderMode, type ImapMessageData } from './message/index.ts';
import { sentDay } from './encode.ts';
import { fallbackImapData } from './message/fallback.ts';
import { BufferStream } from './message/buffer-stream.ts';
import { filterHeader } from './message/section.ts';

class Lru<V> {
  private readonly map = new Map<string, { value: V; cost: number }>();
  private total = 0;
  constructor(private readonly maxEntries: number, private readonly maxCost: number) {}
  get(key: string): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }
  set(key: string, value: V, cost: number): void {
    if (this.maxEntries === 0 || cost > this.maxCost) return;
    const old = this.map.get(key);
    if (old) this.total -= old.cost;
    this.map.delete(key);
    this.map.set(key, { value, cost });
    this.total += cost;
    while (this.map.size > this.maxEntries || this.total > this.maxCost) {
      const [k, v] = this.map.entries().next().value as [string, { cost: number }];
      this.map.delete(k);
      this.total -= v.cost;
    }
  }
}

/** The lines of every occurrence of a header field (continuation lines included), then a blank line. */
export function extractField(header: Buffer, field: string): Buffer {
  return filterHeader(header, [field], false);
}

/** A message as the IMAP server uses it. */
export interface LoadedMessage {
  id: string;
  blobId: string;
  /** Bytes of the stored original (the IMAP view's size is data.size). */
  storedSize: number;
  data: ImapMessageData;
}

const CACHE_BYTES = 64 * 1024 * 1024;
const HEADER_CACHE_BYTES = 32 * 1024 * 1024;
/** Messages up to this size are kept whole in the byte cache (like a page cache over the blobs). */
const BLOB_CACHE_MAX_MESSAGE = 1024 * 1024;
/** View sizes remembered (RFC822.SIZE, SEARCH LARGER/SMALLER) without keeping the whole IMAP data. */
const SIZE_CACHE_ENTRIES = 200_000;
/**
 * Header values kept for SEARCH FROM/TO/SUBJECT/HEADER, per message and field, by bytes: enough for the
 * Subject of a few hundred thousand messages, so a repeated search of a large folder reads no storage.
 */
const SEARCH_VALUE_BYTES = 96 * 1024 * 1024;
const SEARCH_VALUE_ENTRIES = 2_000_000;
/** Decoded text kept for SEARCH BODY/TEXT (characters count two bytes). */
const TEXT_CACHE_BYTES = 32 * 1024 * 1024;
/** A message whose searchable text is longer is searched by streaming each time, not kept. */
const TEXT_CACHE_MAX_CHARS = 512 * 1024;

export class MessageStore {
  private readonly messages: Lru<LoadedMessage>;
  private readonly headers: Lru<Buffer>;
  private readonly blobs: Lru<Buffer>;
  private readonly fields: Lru<Buffer>;
  private readonly searchValues: Lru<string>;
  private readonly sizes: Lru<number>;
  private readonly texts: Lru<string>;
  private readonly sentDays: Lru<number>;

  constructor(
    private readonly archive: ArchiveStore,
    cacheMessages: number,
    cacheBytes: number,
    private readonly onPersistError: (messageId: string, err: unknown) => void = () => undefined,
    /**
     * Computes IMAP data off the main thread under the archiving budget (the analysis workers); it
     * rejects for a message that exceeds it. Without it the data is computed here (tests).
     */
    private readonly compute: (bytes: Buffer) => Promise<unknown> = (bytes) => computeImapData(Readable.from([bytes])),
    private readonly onComputeError: (messageId: string, err: unknown) => void = () => undefined,
  ) {
    this.messages = new Lru(cacheMessages, CACHE_BYTES);
    this.headers = new Lru(cacheMessages, HEADER_CACHE_BYTES);
    this.blobs = new Lru(cacheMessages, cacheBytes);
    this.fields = new Lru(cacheMessages * 4, HEADER_CACHE_BYTES);
    this.searchValues = new Lru(cacheMessages === 0 ? 0 : SEARCH_VALUE_ENTRIES, SEARCH_VALUE_BYTES);
    const sizeEntries = cacheMessages === 0 ? 0 : SIZE_CACHE_ENTRIES;
    this.sizes = new Lru(sizeEntries, sizeEntries);
    this.texts = new Lru(cacheMessages * 2, TEXT_CACHE_BYTES);
    this.sentDays = new Lru(sizeEntries, sizeEntries);
  }

  /**
   * SEARCH BODY/TEXT on one message: the decoded text is kept (bounded by bytes) so a repeated search
   * of a mailbox decodes nothing again; a message with very long text is streamed each time.
   */
  async textMatches(message: LoadedMessage, where: 'BODY' | 'TEXT', needle: string): Promise<boolean> {
    const key = `${message.id}\u0000${where}`;
    const cached = this.texts.get(key);
    if (cached !== undefined) return collectedMatches(cached, needle);
    const text = await collectText(this.opener(message), message.data, where, TEXT_CACHE_MAX_CHARS);
    if (text === null) return textMatches(this.opener(message), message.data, where, needle);
    this.texts.set(key, text, 2 * text.length + 100);
    return collectedMatches(text, needle);
  }

  /** The day of the Date header in the sender's zone (SENTBEFORE/SENTON/SENTSINCE), kept per message. */
  async sentDay(message: LoadedMessage): Promise<number> {
    const cached = this.sentDays.get(message.id);
    if (cached !== undefined) return cached;
    const day = sentDay(await this.fieldLines(message, 'Date'));
    this.sentDays.set(message.id, day, 1);
    return day;
  }

  /** RFC822.SIZE of a message: the size of its IMAP view; null when the message does not exist. */
  async viewSize(id: string): Promise<number | null> {
    const cached = this.sizes.get(id);
    if (cached !== undefined) return cached;
    return (await this.load(id))?.data.size ?? null;
  }

  /**
   * Only the lines of one header field (with continuations) as a header block, so SEARCH FROM/SUBJECT/…
   * decodes a few bytes instead of the whole header again; kept per message and field.
   */
  async fieldLines(message: LoadedMessage, field: string): Promise<Buffer> {
    const key = `${message.id}\u0000${field.toLowerCase()}`;
    const cached = this.fields.get(key);
    if (cached) return cached;
    const lines = extractField(await this.header(message), field);
    this.fields.set(key, lines, lines.length + 100);
    return lines;
  }

  /**
   * SEARCH FROM/TO/SUBJECT/HEADER on one message: a case-insensitive substring of the field's values as
   * the key compares them (message/search.ts headerSearchValues in `mode`). The values are kept per
   * message, field and mode (joined, NUL-separated: IMAP strings cannot hold NUL), so a repeated search
   * of a folder neither loads the message nor decodes anything: `load` runs only on a miss.
   */
  async headerMatches(messageId: string, load: () => Promise<LoadedMessage | null>, field: string, needle: string, mode: HeaderMode): Promise<boolean> {
    const key = `${messageId}\u0000${field.toLowerCase()}\u0000${mode}`;
    let joined = this.searchValues.get(key);
    if (joined === undefined) {
      const message = await load();
      if (!message) return false;
      const values = headerSearchValues(await this.fieldLines(message, field), field, mode);
      joined = values.length === 0 ? '' : '\u0000' + values.join('\u0000');
      this.searchValues.set(key, joined, 2 * (joined.length + key.length) + 64);
    }
    return joinedValuesMatch(joined, needle);
  }

  /** The sent day if it is known without loading the message. */
  cachedSentDay(messageId: string): number | undefined {
    return this.sentDays.get(messageId);
  }

  /** The message with its IMAP data, or null when it does not exist. */
  async load(id: string): Promise<LoadedMessage | null> {
    const cached = this.messages.get(id);
    if (cached) return cached;
    const record = await this.archive.getMessage(id);
    if (!record) return null;
    let data = imapDataOf(record.attributes);
    if (!data) {
      // Archived before the plugin stored its data, in an older format, or raw-only after its analysis
      // failed: compute it once (in the analysis workers, under the budget) and store it with the
      // message, so neither a cache miss nor a restart scans the blob again. A message that still
      // cannot be analysed is served as one text/plain part (not stored: a later upgrade may do better).
      const bytes = await this.readWhole(record.id, record.blobId, record.size);
      try {
        data = imapDataOf({ imap: await this.compute(bytes) });
        if (!data) throw new PosternError('INVALID_INPUT', 'The computed IMAP data is not valid');
        this.archive.setMessageAttribute(record.id, 'imap', data).catch((err: unknown) => this.onPersistError(record.id, err));
      } catch (err) {
        this.onComputeError(record.id, err);
        data = await fallbackImapData(Readable.from([bytes]));
      }
    }
    const loaded: LoadedMessage = { id: record.id, blobId: record.blobId, storedSize: record.size, data };
    this.sizes.set(id, data.size, 1);
    const cost = data.envelope.length + data.body.length + data.bodystructure.length + (data.header?.length ?? 0) + JSON.stringify(data.parts).length + 200;
    this.messages.set(id, loaded, cost);
    return loaded;
  }

  private async readWhole(id: string, blobId: string, size: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let total = 0;
    for await (const chunk of (await this.openBlob(id, blobId)) as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > size) throw new PosternError('STORAGE_IO', `Message "${id}" is larger than its recorded size`);
      parts.push(chunk);
    }
    return Buffer.concat(parts, total);
  }

  private async openBlob(id: string, blobId: string): Promise<Readable> {
    const blob = await this.archive.openBlob(blobId);
    if (!blob) throw new PosternError('STORAGE_IO', `Message "${id}" has no blob "${blobId}"`);
    return blob;
  }

  /** The original bytes: from the byte cache, or read whole into it when small enough, else streamed. */
  opener(message: LoadedMessage): () => Promise<Readable> {
    return async () => {
      const cached = this.blobs.get(message.blobId);
      if (cached) return new BufferStream(cached);
      const blob = await this.openBlob(message.id, message.blobId);
      if (message.storedSize > BLOB_CACHE_MAX_MESSAGE) return blob;
      const parts: Buffer[] = [];
      let size = 0;
      for await (const chunk of blob as AsyncIterable<Buffer>) {
        parts.push(chunk);
        size += chunk.length;
        if (size > BLOB_CACHE_MAX_MESSAGE) throw new PosternError('STORAGE_IO', `Message "${message.id}" is larger than its recorded size`);
      }
      const whole = Buffer.concat(parts, size);
      this.blobs.set(message.blobId, whole, whole.length + 100);
      return new BufferStream(whole);
    };
  }

  /** The top-level header (with the blank line) as the IMAP view reads it: its first `headerSize` bytes. */
  async header(message: LoadedMessage): Promise<Buffer> {
    const cached = this.headers.get(message.id);
    if (cached) return cached;
    // Stored with the IMAP data at archive time: no blob read.
    if (message.data.header !== undefined) return Buffer.from(message.data.header, 'latin1');
    const parts: Buffer[] = [];
    for await (const chunk of viewWindow(await this.opener(message)(), 0, message.data.headerSize)) parts.push(chunk);
    const header = Buffer.concat(parts);
    this.headers.set(message.id, header, header.length + 100);
    return header;
  }
}
