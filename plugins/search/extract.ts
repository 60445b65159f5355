// The search plugin's analyzer (on demand, in the analysis workers under the archiving budget): the
// searchable text of one message, produced by the very functions IMAP SEARCH scans with (plugins/imap/
// message/search.ts), so an index built from it can rule a message out of an IMAP SEARCH without ever
// changing the answer, plus attachment names and types. Trusts nothing about the bytes; hands on
// ExtractedText (JSON-safe). Every column is bounded; a cut column marks the result incomplete.
import { Readable } from 'node:stream';
import libmime from 'libmime';
import type { AnalyzerInput } from '../../core/pipeline/analysis-types.ts';
import { computeImapData } from '../imap/message/index.ts';
import { collectSearchText, headerSearchValues } from '../imap/message/search.ts';
import { filterHeader, readRange } from '../imap/message/section.ts';
import { headerFieldsOf, MAX_HEADER_BYTES, scanStructure, type Entity } from '../imap/message/structure.ts';
import { crlfView } from '../imap/message/crlf.ts';
import { transferDecoder } from '../../core/mime/transfer-decoding.ts';
import { pdfText } from './pdf-text.ts';

/** Characters kept per text column (head, body); longer text is cut and the document marked incomplete. */
export const MAX_TEXT_CHARS = 4 * 1024 * 1024;
/** Characters kept for header values; attachment names, types and PDF text get MAX_ATTACHMENT_CHARS. */
const MAX_FIELD_CHARS = 256 * 1024;
const MAX_ATTACHMENT_CHARS = 2 * 1024 * 1024;
/** Header fields past this count are not listed one by one (the header is then incomplete for HEADER). */
const MAX_FIELD_NAMES = 500;
const MAX_ATTACHMENTS = 1000;

export interface ExtractedText {
  head: string;
  rawhdr: string;
  body: string;
  sender: string;
  rcpt_to: string;
  rcpt_cc: string;
  rcpt_bcc: string;
  subject: string;
  attachment: string;
  hasAttachment: boolean;
  complete: boolean;
  /** Attachments whose text could not be extracted ("name: reason"); the message is indexed all the same. */
  attachmentFailures: string[];
}

/** PDF attachments read per message at most. */
const MAX_PDFS = 10;

class Bounded {
  private readonly parts: string[] = [];
  private length = 0;
  cut = false;
  constructor(private readonly limit: number) {}
  add(s: string): void {
    if (s === '') return;
    if (this.length + s.length > this.limit) {
      this.cut = true;
      return;
    }
    this.parts.push(s);
    this.length += s.length + 1;
  }
  text(): string {
    return this.parts.join('\n');
  }
}

function decodeName(value: string): string {
  try {
    const d = libmime.decodeWords(value);
    return typeof d === 'string' ? d : value;
  } catch {
    return value;
  }
}

/** Attachment facts from the MIME tree: file names and types of parts that are not the message text, and the PDF parts. */
function attachments(root: Entity): { names: string[]; types: string[]; any: boolean; pdfs: Array<{ name: string; part: Entity }>; texts: Entity[] } {
  const names: string[] = [];
  const types: string[] = [];
  const pdfs: Array<{ name: string; part: Entity }> = [];
  const texts: Entity[] = [];
  let any = false;
  const walk = (e: Entity, depth: number): void => {
    if (depth > 64 || names.length + types.length > MAX_ATTACHMENTS) return;
    for (const c of e.children) walk(c, depth + 1);
    if (e.msg) walk(e.msg, depth + 1);
    if (e.kind !== 'leaf' || e === root) return;
    const m = e.mime;
    const param = (list: Array<[string, string]> | undefined, key: string): string | undefined => list?.find(([k]) => k.toLowerCase() === key)?.[1];
    const name = param(m.disposition?.params, 'filename') ?? param(m.params, 'name');
    const isAttachment = m.disposition?.value.toLowerCase() === 'attachment' || name !== undefined;
    if (!isAttachment) return;
    any = true;
    const decoded = name === undefined ? '' : decodeName(name);
    if (name !== undefined) names.push(decoded);
    const type = `${m.type}/${m.subtype}`.toLowerCase();
    types.push(type);
    if (type === 'application/pdf' || (/\.pdf$/i.test(decoded) && type === 'application/octet-stream')) pdfs.push({ name: decoded || type, part: e });
    else if (m.type.toLowerCase() === 'text') texts.push(e);
  };
  walk(root, 0);
  return { names, types, any, pdfs, texts };
}

function charsetText(bytes: Buffer, charset: string | null): string {
  try {
    return new TextDecoder(charset ?? 'utf-8').decode(bytes);
  } catch {
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

/** The decoded bytes of one part (its body in the IMAP view, transfer encoding undone). */
async function partBytes(open: () => Promise<Readable>, part: Entity): Promise<Buffer> {
  const raw = await readRange(open, part.b, part.e);
  const decoder = transferDecoder(part.mime.encoding);
  return Buffer.concat([decoder.write(raw), decoder.end()]);
}

/** The analyzer's export: see the module header. */
export async function extract(input: AnalyzerInput): Promise<ExtractedText> {
  const bytes = await readAll(input.open());
  const open = (): Promise<Readable> => Promise.resolve(Readable.from([bytes]));
  const data = await computeImapData(Readable.from([bytes]));
  const { root } = await scanStructure(crlfView(Readable.from([bytes])));
  let complete = true;

  const text = await collectSearchText(open, data, MAX_TEXT_CHARS);
  if (text.truncated) complete = false;

  const header = data.header !== undefined ? Buffer.from(data.header, 'latin1') : await readRange(open, 0, data.headerSize);
  if (header.length >= MAX_HEADER_BYTES / 2) complete = false;
  // Per field exactly what SEARCH FROM/TO/… compares (decoded and raw values of the field's lines).
  const values = (field: string): string => {
    const b = new Bounded(MAX_FIELD_CHARS);
    for (const v of headerSearchValues(filterHeader(header, [field], false), field)) b.add(v);
    if (b.cut) complete = false;
    return b.text();
  };
  // SEARCH HEADER <any field>: served from head (decoded "Name: value" lines) plus rawhdr, every value
  // of any field that head does not already contain.
  const raw = new Bounded(MAX_FIELD_CHARS);
  const names = [...new Set(headerFieldsOf(header.subarray(0, MAX_HEADER_BYTES)).map((f) => f.name.toLowerCase()))];
  if (names.length > MAX_FIELD_NAMES) complete = false;
  for (const name of names.slice(0, MAX_FIELD_NAMES)) {
    for (const v of headerSearchValues(filterHeader(header, [name], false), name)) if (!text.head.includes(v)) raw.add(v);
  }
  if (raw.cut) complete = false;

  const found = attachments(root);
  const attach = new Bounded(MAX_ATTACHMENT_CHARS);
  for (const n of found.names) attach.add(n.normalize('NFC').toLowerCase());
  for (const t of new Set(found.types)) attach.add(t);
  // Text-like attachments: their text is also the body's (as SEARCH BODY reads it); here it makes
  // `attachment:` find words inside them.
  for (const part of found.texts.slice(0, MAX_PDFS)) {
    if (part.e - part.b > MAX_ATTACHMENT_CHARS) continue;
    attach.add(charsetText(await partBytes(open, part), part.mime.charset).normalize('NFC').toLowerCase());
  }
  const attachmentFailures: string[] = [];
  for (const { name, part } of found.pdfs.slice(0, MAX_PDFS)) {
    try {
      attach.add((await pdfText(await partBytes(open, part))).normalize('NFC').toLowerCase());
    } catch (err) {
      attachmentFailures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300));
    }
  }

  return {
    head: text.head,
    rawhdr: raw.text(),
    body: text.body,
    sender: values('From'),
    rcpt_to: values('To'),
    rcpt_cc: values('Cc'),
    rcpt_bcc: values('Bcc'),
    subject: values('Subject'),
    attachment: attach.text(),
    hasAttachment: found.any,
    complete,
    attachmentFailures,
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | Uint8Array>) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}
