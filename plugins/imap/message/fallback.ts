// IMAP data for a message whose structure could not be computed within the archiving budget (or whose
// analyzer failed): the whole message as one text/plain body with an empty header and a NIL envelope,
// sizes and line counts of its CRLF view. Clients can still list, fetch and download it byte-exact;
// nothing about the bytes is parsed, only line breaks counted (linear, bounded by the message).
import { CrlfView } from './crlf.ts';
import type { ImapMessageData, PartIndex } from './types.ts';

export async function fallbackImapData(raw: AsyncIterable<Buffer>): Promise<ImapMessageData> {
  const view = new CrlfView();
  let size = 0;
  let lines = 0;
  for await (const chunk of raw) {
    const out = view.push(chunk);
    size += out.length;
    for (let pos = out.indexOf(10); pos >= 0; pos = out.indexOf(10, pos + 1)) lines++;
  }
  const parts: PartIndex = { h: 0, b: 0, e: size, t: 'text/plain' };
  const body = `("text" "plain" NIL NIL NIL "7bit" ${size} ${lines})`;
  return {
    envelope: '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)',
    body,
    bodystructure: `("text" "plain" NIL NIL NIL "7bit" ${size} ${lines} NIL NIL NIL NIL)`,
    parts,
    headerSize: 0,
    encoding: 'latin1',
    view: 'crlf',
    size,
  };
}
