// Serializes a scanned Entity tree as IMAP BODY and BODYSTRUCTURE (RFC 3501 7.4.2, in the shape
// Dovecot answers: original case kept, "7bit" and charset us-ascii defaults) and as the compact part
// index sectionOf() resolves sections with. Trusts the scanner's tree. Hands on strings and PartIndex.
import type { Entity } from './structure.ts';
import type { MimeFields, Params } from './mime-fields.ts';
import type { PartIndex } from './types.ts';
import { istring, nlist, nstring } from './imap-string.ts';

function params(p: Params): string {
  return nlist(p.map(([k, v]) => `${istring(k)} ${istring(v)}`));
}

function extension(m: MimeFields): string {
  const disposition = m.disposition ? `(${istring(m.disposition.value)} ${params(m.disposition.params)})` : 'NIL';
  return `${disposition} ${nlist(m.language.map(istring))} ${nstring(m.location)}`;
}

const EMPTY_ENVELOPE = '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)';

/** BODY (ext = false) or BODYSTRUCTURE (ext = true) of one entity. */
export function serializeBody(e: Entity, ext: boolean): string {
  const m = e.mime;
  if (e.kind === 'multipart') {
    const kids = e.children.map((c) => serializeBody(c, ext)).join('');
    return `(${kids} ${istring(m.subtype)}${ext ? ` ${params(m.params)} ${extension(m)}` : ''})`;
  }
  const size = e.e - e.b;
  let out = `(${istring(m.type)} ${istring(m.subtype)} ${params(m.params)} ${nstring(m.id)} ${nstring(m.description)} ${istring(m.encoding ?? '7bit')} ${size}`;
  if (e.kind === 'message' && e.msg) {
    out += ` ${e.msg.envelope ?? EMPTY_ENVELOPE} ${serializeBody(e.msg, ext)} ${e.lines}`;
  } else if (m.type.toLowerCase() === 'text') {
    out += ` ${e.lines}`;
  }
  if (ext) out += ` ${nstring(m.md5)} ${extension(m)}`;
  return out + ')';
}

export function partIndex(e: Entity): PartIndex {
  const p: PartIndex = { h: e.h, b: e.b, e: e.e, t: `${e.mime.type}/${e.mime.subtype}`.toLowerCase() };
  const enc = e.mime.encoding?.toLowerCase();
  if (enc && enc !== '7bit') p.x = enc;
  if (e.mime.charset) p.c = e.mime.charset.toLowerCase();
  if (e.kind === 'multipart') p.p = e.children.map(partIndex);
  if (e.kind === 'message' && e.msg) p.m = partIndex(e.msg);
  return p;
}
