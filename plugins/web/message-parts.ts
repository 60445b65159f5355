// What the message page shows of a raw message: its header fields (decoded), the plain-text body, the
// HTML body (still unsanitised: sanitize.ts), and every other leaf part as an attachment (file name, type,
// decoded size, whether inline). Uses core's MIME walker (core/mime/multipart.ts: bounded parts and
// depth, problems collected, never thrown) and decodes text in its declared charset (WHATWG decoders;
// unknown charsets as windows-1252). Parts are numbered by their position in the walk, so the same bytes
// always give the same numbers (the attachment download route uses them). Trusts nothing in the bytes.
import libmime from 'libmime';
import { headerValues, parseHeaderBlock, type HeaderField } from '../../core/mime/headers.ts';
import { Problems, partBody, readNode, walkLeaves, type MimeNode } from '../../core/mime/multipart.ts';

export interface MessagePart {
  /** Position in the walk (0-based): the attachment's id in URLs. */
  index: number;
  type: string;
  /** Decoded file name ("" when the part has none). */
  filename: string;
  /** Content-ID without angle brackets, or null. */
  contentId: string | null;
  inline: boolean;
  /** Decoded size in bytes. */
  size: number;
}

export interface ParsedMessage {
  headers: Array<{ name: string; value: string }>;
  text: string | null;
  html: string | null;
  attachments: MessagePart[];
  problems: string[];
}

const MAX_TEXT_CHARS = 4 * 1024 * 1024;

function decodeWords(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

/** Text of a part in its charset (unknown ones as windows-1252). */
export function charsetText(bytes: Buffer, charset: string | undefined): string {
  const name = (charset ?? 'utf-8').trim().toLowerCase() || 'utf-8';
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(name === 'us-ascii' || name === 'ascii' ? 'utf-8' : name);
  } catch {
    decoder = new TextDecoder('windows-1252');
  }
  const text = decoder.decode(bytes.length > MAX_TEXT_CHARS ? bytes.subarray(0, MAX_TEXT_CHARS) : bytes);
  return text;
}

function disposition(node: MimeNode): { kind: string; filename: string } {
  const raw = headerValues(node.headers, 'content-disposition')[0];
  let kind = '';
  let filename = '';
  if (raw !== undefined) {
    try {
      const parsed = libmime.parseHeaderValue(raw.slice(0, 16 * 1024));
      kind = String(parsed.value ?? '').trim().toLowerCase();
      const f = parsed.params?.['filename'];
      if (typeof f === 'string') filename = f;
    } catch {
      // an unreadable disposition: treated as none
    }
  }
  if (filename === '' && typeof node.params['name'] === 'string') filename = node.params['name'];
  return { kind, filename: decodeWords(filename).replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 255) };
}

interface Leaf {
  node: MimeNode;
  index: number;
  kind: string;
  filename: string;
}

function leavesOf(raw: Buffer, problems: Problems): Leaf[] {
  const root = readNode(raw, 0, raw.length, 'text/plain');
  const leaves: Leaf[] = [];
  walkLeaves(root, 0, { parts: 0 }, problems, (node) => {
    const d = disposition(node);
    leaves.push({ node, index: leaves.length, kind: d.kind, filename: d.filename });
    return true;
  });
  return leaves;
}

/** A body candidate: text of the wanted type that is not an attachment. */
function isBody(leaf: Leaf, type: string): boolean {
  return leaf.node.type === type && leaf.kind !== 'attachment' && leaf.filename === '';
}

export function parseMessage(raw: Buffer): ParsedMessage {
  const problems = new Problems();
  const block = parseHeaderBlock(raw);
  const headers = block.fields.slice(0, 500).map((f: HeaderField) => ({ name: f.name, value: decodeWords(f.value.slice(0, 8192)) }));
  const leaves = leavesOf(raw, problems);
  const textLeaf = leaves.find((l) => isBody(l, 'text/plain'));
  const htmlLeaf = leaves.find((l) => isBody(l, 'text/html'));
  const text = textLeaf ? charsetText(partBody(textLeaf.node, problems), textLeaf.node.params['charset']) : null;
  const html = htmlLeaf ? charsetText(partBody(htmlLeaf.node, problems), htmlLeaf.node.params['charset']) : null;
  const attachments: MessagePart[] = [];
  for (const leaf of leaves) {
    if (leaf === textLeaf || leaf === htmlLeaf) continue;
    const body = partBody(leaf.node, problems);
    // An empty text part without a name (an empty message body) is no attachment.
    if (body.length === 0 && leaf.filename === '' && leaf.node.type.startsWith('text/')) continue;
    const cid = headerValues(leaf.node.headers, 'content-id')[0];
    attachments.push({
      index: leaf.index, type: leaf.node.type, filename: leaf.filename, size: body.length,
      contentId: cid ? cid.trim().replace(/^<|>$/g, '').slice(0, 998) : null, inline: leaf.kind === 'inline',
    });
  }
  return { headers, text, html, attachments, problems: problems.list };
}

/** One part's decoded bytes and what it is, or null when the message has no such part. */
export function partOf(raw: Buffer, index: number): { part: MessagePart; bytes: Buffer } | null {
  const problems = new Problems();
  const leaf = leavesOf(raw, problems)[index];
  if (!leaf) return null;
  const bytes = partBody(leaf.node, problems);
  const cid = headerValues(leaf.node.headers, 'content-id')[0];
  return {
    part: { index, type: leaf.node.type, filename: leaf.filename, size: bytes.length, contentId: cid ? cid.trim().replace(/^<|>$/g, '') : null, inline: leaf.kind === 'inline' },
    bytes,
  };
}

/** The inline images an HTML body may show (cid: references become data: URLs), at most `maxBytes` in all. */
export function inlineImages(raw: Buffer, maxBytes: number): Map<string, string> {
  const problems = new Problems();
  const out = new Map<string, string>();
  let total = 0;
  for (const leaf of leavesOf(raw, problems)) {
    if (!/^image\/(png|gif|jpeg|webp)$/.test(leaf.node.type)) continue;
    const cid = headerValues(leaf.node.headers, 'content-id')[0]?.trim().replace(/^<|>$/g, '');
    if (!cid) continue;
    const bytes = partBody(leaf.node, problems);
    total += bytes.length;
    if (total > maxBytes) break;
    out.set(cid.toLowerCase(), `data:${leaf.node.type};base64,${bytes.toString('base64')}`);
  }
  return out;
}
