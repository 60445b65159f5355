// mbox reader (mboxrd and mboxo): streams a file, splits it on "From " lines at the start of the
// file or after a blank line, removes the separator's blank line and the From quoting, and yields
// each message's bytes as they were before the mailbox writer touched them (CRLF or LF kept as
// found). A From_ line ending in the mark of core/export/mbox-writer.ts (the message's bytes did not end
// with a newline) also drops the newline that writer added, so Postern's own exports read back byte
// for byte. Trusts nothing in the file: lines and messages are bounded, garbage becomes a failure.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { hasNoFinalNewlineMark } from '../export/mbox-writer.ts';

export type MboxFormat = 'mboxrd' | 'mboxo';

export type MboxItem =
  | { ok: true; index: number; offset: number; bytes: Buffer }
  | { ok: false; index: number; offset: number; reason: string };

export interface MboxOptions {
  format?: MboxFormat;
  /** Messages larger than this are reported as failed (and skipped). */
  maxBytes?: number;
}

const FROM = Buffer.from('From ');
const MAX_LINE_CHECK = 64 * 1024;

function isBlank(line: Buffer): boolean {
  return (line.length === 1 && line[0] === 0x0a) || (line.length === 2 && line[0] === 0x0d && line[1] === 0x0a);
}

/** A ">From " (mboxo) or ">+From " (mboxrd) line with one level of quoting removed, else null. */
function unquote(line: Buffer, format: MboxFormat): Buffer | null {
  if (line[0] !== 0x3e) return null;
  let i = 0;
  while (i < line.length && line[i] === 0x3e) i++;
  if (format === 'mboxo' && i !== 1) return null;
  if (line.length - i < 5 || !line.subarray(i, i + 5).equals(FROM)) return null;
  return line.subarray(1);
}

/** Split a byte stream into lines, each with its line ending; a line longer than the bound is cut. */
async function* lines(stream: AsyncIterable<Buffer>, maxLine: number): AsyncGenerator<{ line: Buffer; continued: boolean }> {
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let continued = false;
  for await (const chunk of stream) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl + 1);
      const line = pendingLen ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      pendingLen = 0;
      yield { line, continued };
      continued = false;
      start = nl + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingLen += chunk.length - start;
      if (pendingLen > maxLine) {
        yield { line: Buffer.concat(pending), continued };
        continued = true;
        pending = [];
        pendingLen = 0;
      }
    }
  }
  if (pendingLen) yield { line: Buffer.concat(pending), continued };
}

export async function* readMbox(source: string | Readable, options: MboxOptions = {}): AsyncGenerator<MboxItem> {
  const format = options.format ?? 'mboxrd';
  const maxBytes = options.maxBytes ?? 100 * 1024 * 1024;
  const stream = typeof source === 'string' ? createReadStream(source, { highWaterMark: 256 * 1024 }) : source;
  let index = 0;
  let offset = 0;
  /** State of the current message: its start offset, parts, size; null before the first From line. */
  let cur: { offset: number; parts: Buffer[]; size: number; tooBig: boolean; noFinalNewline: boolean } | null = null;
  let prevBlank = true;
  let garbage: { offset: number; size: number } | null = null;
  let endsWithNewline = true;

  const finish = (): MboxItem | null => {
    if (!cur) return null;
    const c = cur;
    cur = null;
    const i = index++;
    if (c.tooBig) return { ok: false, index: i, offset: c.offset, reason: `Message is larger than ${maxBytes} bytes` };
    // The blank line before the next From line belongs to the mbox, not to the message.
    const last = c.parts[c.parts.length - 1];
    if (last && isBlank(last)) {
      c.parts.pop();
      c.size -= last.length;
    }
    // Written by Postern's exporter for bytes without a final newline: the newline before the separator is the writer's.
    const end = c.parts[c.parts.length - 1];
    if (c.noFinalNewline && end && end[end.length - 1] === 0x0a) {
      c.parts[c.parts.length - 1] = end.subarray(0, end.length - 1);
      c.size -= 1;
    }
    if (c.size === 0) return { ok: false, index: i, offset: c.offset, reason: 'Message is empty' };
    return { ok: true, index: i, offset: c.offset, bytes: Buffer.concat(c.parts, c.size) };
  };

  for await (const { line, continued } of lines(stream as AsyncIterable<Buffer>, MAX_LINE_CHECK)) {
    const lineOffset = offset;
    offset += line.length;
    endsWithNewline = line[line.length - 1] === 0x0a;
    if (!continued && prevBlank && line.length >= 5 && line.subarray(0, 5).equals(FROM)) {
      if (garbage) {
        yield { ok: false, index: index++, offset: garbage.offset, reason: `${garbage.size} bytes before the first "From " line are not an mbox message` };
        garbage = null;
      }
      const done = finish();
      if (done) yield done;
      cur = { offset: lineOffset, parts: [], size: 0, tooBig: false, noFinalNewline: hasNoFinalNewlineMark(line) };
      prevBlank = false;
      continue;
    }
    prevBlank = !continued && isBlank(line);
    if (!cur) {
      garbage ??= { offset: lineOffset, size: 0 };
      garbage.size += line.length;
      continue;
    }
    if (cur.tooBig) continue;
    const content = (!continued && unquote(line, format)) || line;
    cur.size += content.length;
    if (cur.size > maxBytes) {
      cur.tooBig = true;
      cur.parts = [];
      continue;
    }
    cur.parts.push(content);
  }
  if (garbage) yield { ok: false, index: index++, offset: garbage.offset, reason: `${garbage.size} bytes before the first "From " line are not an mbox message` };
  if (cur && !endsWithNewline) {
    const c = cur as { offset: number };
    cur = null;
    yield { ok: false, index: index++, offset: c.offset, reason: 'The file ends in the middle of a line: the last message is truncated' };
    return;
  }
  const done = finish();
  if (done) yield done;
}
