// computeImapData: one streaming pass over a raw message at archive time yields its ENVELOPE, BODY,
// BODYSTRUCTURE, header size, part index and size, stored with the message so FETCH never reparses.
// The scan reads the message's IMAP view (crlf.ts: bare LF as CRLF), so every offset, size and line
// count is the one served. Trusts nothing about the bytes (see structure.ts); hands on ImapMessageData
// (JSON-safe).
import { serializeBody, partIndex } from './bodystructure.ts';
import { crlfView } from './crlf.ts';
import { scanStructure } from './structure.ts';
import { MAX_STORED_HEADER, type ImapMessageData } from './types.ts';

const EMPTY_ENVELOPE = '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)';

/** Compute everything once, streaming the raw message (called from the plugin's `index` hook). */
export async function computeImapData(raw: AsyncIterable<Buffer | Uint8Array | string>): Promise<ImapMessageData> {
  const head: Buffer[] = [];
  let kept = 0;
  async function* keepHead(view: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of view) {
      if (kept <= MAX_STORED_HEADER) {
        const part = chunk.subarray(0, MAX_STORED_HEADER + 1 - kept);
        head.push(Buffer.from(part));
        kept += part.length;
      }
      yield chunk;
    }
  }
  const { root, size } = await scanStructure(keepHead(crlfView(raw)));
  const header = root.b <= MAX_STORED_HEADER && root.b <= kept ? { header: Buffer.concat(head).subarray(0, root.b).toString('latin1') } : {};
  return {
    ...header,
    envelope: root.envelope ?? EMPTY_ENVELOPE,
    body: serializeBody(root, false),
    bodystructure: serializeBody(root, true),
    parts: partIndex(root),
    headerSize: root.b,
    encoding: 'latin1',
    view: 'crlf',
    size,
  };
}
