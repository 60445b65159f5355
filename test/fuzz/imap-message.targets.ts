// Fuzz targets for the IMAP message model (plugins/imap/message): address lists and ENVELOPE, the
// streaming structure scanner behind BODY/BODYSTRUCTURE and the part index, BODY[section] parsing and
// serving, SEARCH matching, and the CRLF view. Serialized values must read back as one IMAP list with
// IMAP response syntax (literals, quoted strings, atoms, NIL and lists).
import { Readable } from 'node:stream';
import { parseAddressList } from '../../plugins/imap/message/address-list.ts';
import { buildEnvelope } from '../../plugins/imap/message/envelope.ts';
import { computeImapData } from '../../plugins/imap/message/compute.ts';
import { CrlfView, viewLength, viewWindow } from '../../plugins/imap/message/crlf.ts';
import { parseSection, sectionOf } from '../../plugins/imap/message/section.ts';
import { headerMatches, textMatches } from '../../plugins/imap/message/search.ts';
import type { ImapMessageData, PartIndex } from '../../plugins/imap/message/types.ts';
import { check, chunked, chunkingsFor, preview, type FuzzGroup } from './target.ts';
import { headerValueSeeds, messageSeeds, nastyStrings } from './seeds.ts';

type Value = string | Buffer | null | Value[];

/**
 * Reads one IMAP response value (RFC 3501 section 9: lists, NIL, atoms and numbers, quoted strings with
 * \\ and \" escapes, literals) from a serialized byte string; throws on anything else. Lists may
 * follow each other without a space (address lists, multipart bodies), other items need one.
 */
function readValue(serialized: string): Value {
  const s = Buffer.from(serialized, 'latin1');
  let pos = 0;
  const fail = (why: string): never => {
    throw new Error(`${why} at byte ${pos}`);
  };
  const stack: Value[][] = [];
  let result: Value | undefined;
  const emit = (v: Value): void => {
    const top = stack[stack.length - 1];
    if (top) top.push(v);
    else if (result === undefined) result = v;
    else fail('more than one value');
  };
  let needSep = false;
  while (pos < s.length) {
    const c = s[pos] as number;
    if (c === 0x20) {
      if (!needSep) fail('unexpected space');
      needSep = false;
      pos++;
      continue;
    }
    if (c === 0x29) {
      const done = stack.pop();
      if (!done) fail('unbalanced ")"');
      pos++;
      emit(done as Value[]);
      needSep = true;
      continue;
    }
    if (needSep && c !== 0x28) fail('missing space between items');
    needSep = true;
    if (c === 0x28) {
      stack.push([]);
      pos++;
      needSep = false;
    } else if (c === 0x22) {
      const bytes: number[] = [];
      for (pos++; ; pos++) {
        const q = s[pos];
        if (q === undefined) fail('unterminated quoted string');
        if (q === 0x22) break;
        if (q === 0x0d || q === 0x0a || q === 0) fail('CR, LF or NUL in a quoted string');
        if (q === 0x5c) {
          const e = s[++pos];
          if (e !== 0x22 && e !== 0x5c) fail('bad escape in a quoted string');
          bytes.push(e as number);
        } else bytes.push(q as number);
      }
      pos++;
      emit(Buffer.from(bytes));
    } else if (c === 0x7b) {
      const m = /^\{(\d{1,10})\}\r\n/.exec(s.subarray(pos, pos + 16).toString('latin1'));
      if (!m) fail('malformed literal');
      const n = Number((m as RegExpExecArray)[1]);
      pos += (m as RegExpExecArray)[0].length;
      if (pos + n > s.length) fail('literal runs past the end');
      emit(Buffer.from(s.subarray(pos, pos + n)));
      pos += n;
    } else {
      const start = pos;
      while (pos < s.length && s[pos] !== 0x20 && s[pos] !== 0x28 && s[pos] !== 0x29) {
        const a = s[pos] as number;
        if (a <= 0x20 || a >= 0x7f || a === 0x22 || a === 0x7b || a === 0x5c) fail('invalid atom character');
        pos++;
      }
      const atom = s.subarray(start, pos).toString('latin1');
      emit(atom === 'NIL' ? null : atom);
    }
  }
  if (stack.length > 0) fail('unclosed "("');
  if (result === undefined) fail('no value');
  return result as Value;
}

/** The serialized value parses as exactly one parenthesized list (of `items` elements when given). */
function oneList(serialized: string, what: string, items?: number): Value[] {
  let v: Value;
  try {
    v = readValue(serialized);
  } catch (err) {
    throw new Error(`${what} is not valid IMAP syntax (${(err as Error).message}): ${preview(serialized)}`);
  }
  check(Array.isArray(v), `${what} is one list`, serialized);
  if (items !== undefined) check(v.length === items, `${what} has ${items} elements`, serialized);
  return v;
}

function checkParts(p: PartIndex, size: number, depth = 0): void {
  check(p.h <= p.b && p.b <= p.e && p.e <= size, 'part offsets are ordered and within the view', { h: p.h, b: p.b, e: p.e, size });
  check(depth <= 40, 'the part index is bounded in depth');
  for (const c of p.p ?? []) {
    check(c.h >= p.b && c.e <= p.e, 'a child lies within its parent body', { parent: [p.b, p.e], child: [c.h, c.e] });
    checkParts(c, size, depth + 1);
  }
  if (p.m) {
    check(p.m.h >= p.b && p.m.e <= p.e, 'an encapsulated message lies within its part');
    checkParts(p.m, size, depth + 1);
  }
}

async function compute(input: Buffer, size: number): Promise<ImapMessageData> {
  return computeImapData(Readable.from(chunked(input, size)));
}

const opener = (input: Buffer) => async (): Promise<Readable> => Readable.from(chunked(input, 1021));

async function drain(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts);
}

/** Splits "first line\n" from the rest: fuzzes a short argument and a message in one input. */
function splitFirstLine(input: Buffer): [string, Buffer] {
  const nl = input.indexOf(0x0a);
  if (nl < 0 || nl > 512) return ['', input];
  return [input.subarray(0, nl).toString('latin1').replace(/\r$/, ''), input.subarray(nl + 1)];
}

const SECTIONS = ['', 'HEADER', 'TEXT', '1', '1.MIME', '2', '1.2', '1.HEADER', '2.TEXT', 'HEADER.FIELDS (From To Subject)', 'HEADER.FIELDS.NOT (Received)', '1.HEADER.FIELDS ("X-A" B)', '3.1.2.MIME', '4294967295'];

const sectionSeeds = (): Buffer[] => {
  const messages = messageSeeds().filter((m) => m.length < 64 * 1024).slice(0, 80);
  return messages.map((m, i) => Buffer.concat([Buffer.from(`${SECTIONS[i % SECTIONS.length]}\r\n`, 'latin1'), m]));
};

const MESSAGE_TOKENS = ['\r\n', '\n', '\r', '\r\n\r\n', 'Content-Type: multipart/mixed; boundary=b\r\n', 'Content-Type: message/rfc822\r\n', 'Content-Type: text/plain; charset=utf-8\r\n', 'Content-Type: multipart/alternative; boundary="b"\r\n', '\r\n--b\r\n', '\r\n--b--\r\n', '--b\n', 'Content-Transfer-Encoding: base64\r\n', 'Content-Disposition: attachment; filename*0*=utf-8\'\'%e9; filename*1=x\r\n', 'Content-Language: en, de\r\n', 'From: "A" <a@b>\r\n', 'Subject: =?utf-8?q?x?=\r\n', ' ', '\t'];

export const group: FuzzGroup = {
  group: 'imap-message',
  targets: [
    {
      name: 'imap.address-list',
      seeds: () => [
        ...headerValueSeeds(['from', 'to', 'cc', 'bcc', 'reply-to', 'sender']),
        ...nastyStrings(),
      ],
      dictionary: ['<', '>', '@', ',', ';', ':', '"', '\\', '(', ')', '[', ']', '<@a,@b:c@d>', 'group:', ':;', 'a@b', '"x y" <a@b>', '<a b@c>', '<:>', '(c)', '\r\n '],
      run(input) {
        const text = input.toString('latin1');
        const list = parseAddressList(text);
        check(list.length <= 1002, 'address output is bounded', list.length);
        let open = 0;
        for (const a of list) {
          if (a.host === null && a.mailbox !== null) open++;
          else if (a.host === null && a.mailbox === null) open--;
          check(open >= 0 && open <= 1, 'group markers are balanced and not nested', list.slice(0, 10));
        }
        check(open === 0, 'every group is closed');
        const envelope = buildEnvelope([
          { name: 'From', value: text }, { name: 'To', value: text }, { name: 'Subject', value: text }, { name: 'Message-ID', value: text },
        ]);
        oneList(envelope, 'ENVELOPE', 10);
      },
    },
    {
      name: 'imap.structure',
      seeds: messageSeeds,
      dictionary: MESSAGE_TOKENS,
      maxLength: 256 * 1024,
      async run(input) {
        const data = await compute(input, 0);
        check(data.size === viewLength(input), 'size is the CRLF view length', [data.size, viewLength(input)]);
        check(data.headerSize <= data.size, 'the header lies within the message');
        oneList(data.envelope, 'ENVELOPE', 10);
        oneList(data.body, 'BODY');
        oneList(data.bodystructure, 'BODYSTRUCTURE');
        checkParts(data.parts as PartIndex, data.size);
        const expected = JSON.stringify(data);
        for (const size of chunkingsFor(input.length)) {
          if (size === 0 || (size < 7 && input.length > 4096)) continue;
          const other = JSON.stringify(await compute(input, size));
          check(other === expected, `the scan in chunks of ${size} bytes gives the same result as in one piece`, { expected: expected.slice(0, 300), other: other.slice(0, 300) });
        }
      },
    },
    {
      name: 'imap.section',
      seeds: sectionSeeds,
      dictionary: [...SECTIONS.map((s) => `${s}\r\n`), 'HEADER.FIELDS (', 'HEADER.FIELDS.NOT (', ')', '"', '.', '0', '1.', 'MIME', 'TEXT', ...MESSAGE_TOKENS],
      maxLength: 128 * 1024,
      async run(input) {
        const [text, message] = splitFirstLine(input);
        const spec = parseSection(text);
        if (spec === null) return;
        check(spec.part.every((n) => Number.isInteger(n) && n >= 1), 'part numbers are positive integers', spec.part);
        const data = await compute(message, 0);
        for (const partial of [undefined, { start: 0, length: 7 }, { start: 3, length: 1e12 }, { start: 1e12, length: 5 }]) {
          const { size, stream } = await sectionOf(data, spec, opener(message), partial);
          const bytes = await drain(stream);
          check(bytes.length === size, 'a section streams exactly the size it announced', { size, got: bytes.length, spec, partial });
          check(size <= data.size + 4, 'a section is no larger than the message (plus the CRLFs HEADER.FIELDS adds)', { size, view: data.size });
        }
      },
    },
    {
      name: 'imap.search',
      seeds: sectionSeeds,
      dictionary: ['=?utf-8?q?', '?=', '=?iso-8859-1?b?', 'Content-Transfer-Encoding: quoted-printable\r\n', 'Content-Transfer-Encoding: base64\r\n', 'charset=utf-16', 'charset=bogus', '=C3=A9', '\u00e9', ...MESSAGE_TOKENS],
      maxLength: 128 * 1024,
      async run(input) {
        const [needle, message] = splitFirstLine(input);
        const header = message.subarray(0, Math.max(0, message.indexOf('\r\n\r\n') + 4) || message.length);
        for (const field of ['subject', 'from', 'to', 'x-none']) headerMatches(header, field, needle);
        check(headerMatches(Buffer.from('Subject: x\r\n\r\n'), 'subject', ''), 'an empty needle matches a present field');
        const data = await compute(message, 0);
        for (const where of ['BODY', 'TEXT'] as const) {
          const found = await textMatches(opener(message), data, where, needle);
          check(typeof found === 'boolean', 'a boolean');
          if (needle === '') check(found, 'an empty needle always matches');
        }
      },
    },
    {
      name: 'imap.crlf-view',
      seeds: () => messageSeeds().slice(0, 200).map((m) => m.subarray(0, 16 * 1024)),
      dictionary: ['\r', '\n', '\r\n', '\n\r', '\r\r\n'],
      maxLength: 64 * 1024,
      async run(input) {
        const whole = new CrlfView().push(input);
        check(whole.length === viewLength(input), 'viewLength is the view length');
        check(!/(^|[^\r])\n/.test(whole.toString('latin1')), 'the view has no bare LF');
        for (const size of chunkingsFor(input.length)) {
          const v = new CrlfView();
          const got = Buffer.concat(chunked(input, size).map((c) => Buffer.from(v.push(c))));
          check(got.equals(whole), `the view in chunks of ${size} bytes is the same`);
        }
        for (const [s, e] of [[0, whole.length], [1, 2], [Math.floor(whole.length / 3), Math.floor(whole.length / 2) + 1], [whole.length - 1, whole.length]] as const) {
          if (e <= s || s < 0 || e > whole.length) continue;
          const parts: Buffer[] = [];
          for await (const c of viewWindow(Readable.from(chunked(input, input.length > 4096 ? 1021 : 7)), s, e)) parts.push(Buffer.from(c));
          check(Buffer.concat(parts).equals(whole.subarray(s, e)), 'a window of the view is that slice of the view', [s, e]);
        }
      },
    },
  ],
};
