// computeImapData: one streaming pass over a raw message at archive time yields its ENVELOPE, BODY,
// BODYSTRUCTURE, header size and part index, stored with the message so FETCH never reparses.
// Trusts nothing about the bytes (see structure.ts); hands on ImapMessageData (JSON-safe).
import { serializeBody, partIndex } from './bodystructure.ts';
import { scanStructure } from './structure.ts';
import type { ImapMessageData } from './types.ts';

const EMPTY_ENVELOPE = '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)';

/** Compute everything once, streaming the raw message (called from the plugin's `index` hook). */
export async function computeImapData(raw: AsyncIterable<Buffer>): Promise<ImapMessageData> {
  const { root } = await scanStructure(raw);
  return {
    envelope: root.envelope ?? EMPTY_ENVELOPE,
    body: serializeBody(root, false),
    bodystructure: serializeBody(root, true),
    parts: partIndex(root),
    headerSize: root.b,
    encoding: 'latin1',
  };
}
