// Fuzz targets for the IMAP server's command side: the streaming command reader (lines, {n} / {n+}
// literals, limits) fed in chunks of every size, and the command tokenizer with its typed argument
// helpers and sequence sets. Only ImapBad may come out of the parser; the reader never throws.
import { PassThrough } from 'node:stream';
import { CommandReader, type ReadResult } from '../../plugins/imap/reader.ts';
import { ImapBad, astring, isSequenceSet, parseCommand, parseSequenceSet, resolveSequence, resolveUids, type Token } from '../../plugins/imap/parser.ts';
import { check, chunked, chunkingsFor, preview, type FuzzGroup } from './target.ts';
import { nastyStrings } from './seeds.ts';

const COMMANDS = [
  'a1 LOGIN user pass', 'a2 LOGIN "us\\"er" {4}\r\npass', 'a3 SELECT INBOX', 'a4 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100> BODYSTRUCTURE)',
  'a5 UID FETCH 1,3:5,*:2 (UID RFC822.SIZE ENVELOPE)', 'a6 SEARCH CHARSET UTF-8 OR FROM "x" (SUBJECT {3+}\r\nabc SINCE 1-Jan-2024)', 'a7 LIST "" "*"',
  'a8 STATUS INBOX (MESSAGES UIDNEXT)', 'a9 APPEND INBOX (\\Seen) {5}\r\nhello', 'b1 ID ("name" "client" "version" NIL)', 'b2 IDLE', 'DONE', 'b3 LOGOUT',
  'b4 UID SEARCH 1:4294967295', 'b5 FETCH 4294967296 FLAGS', 'b6 AUTHENTICATE PLAIN', 'AGVtbWEAcGFzcw==', 'b7 NOOP', 'b8 EXAMINE "Sent Items"', 'b9 CAPABILITY',
];
const command = (c: string): Buffer => Buffer.from(`${c}\r\n`, 'latin1');

const TOKENS = ['(', ')', '[', ']', '<', '>', '{', '}', '{0}\r\n', '{5}\r\n', '{3+}\r\n', '{99999999999999999999}\r\n', '"', '\\', '\\"', '*', '%', ':', ',', ' ', '\r\n', '\n', 'NIL', 'BODY[', 'BODY.PEEK[', 'HEADER.FIELDS (', '1:*', '*:1', '0', '4294967295'];

const LIMITS = { maxLineBytes: 200, maxLiteralBytes: 300, maxCommandBytes: 600 };

async function readAll(input: Buffer, size: number): Promise<ReadResult[]> {
  const stream = new PassThrough();
  let continuations = 0;
  const reader = new CommandReader(LIMITS, {
    continuation: () => { continuations++; },
    refuseLiteral: (line) => (line.includes('REFUSE') ? { status: 'NO', text: 'refused' } : null),
  });
  reader.attach(stream);
  for (const c of chunked(input, size)) stream.write(c);
  stream.end();
  const out: ReadResult[] = [];
  for (;;) {
    const r = await reader.next(out.length % 5 === 4 ? 'line' : 'command');
    out.push(r);
    if (r.kind === 'end' || (r.kind === 'error' && r.fatal)) break;
    check(out.length <= input.length + 2, 'the reader hands out at most one result per input byte');
  }
  reader.detach();
  check(continuations <= out.length + input.length, 'continuations are bounded');
  return out;
}

const show = (rs: ReadResult[]): string => JSON.stringify(rs.map((r) => ('data' in r ? { ...r, data: r.data.toString('latin1') } : r)));

function checkTokens(tokens: Token[], depth = 0): void {
  check(depth <= 17, 'list nesting is bounded');
  for (const t of tokens) {
    if (t.t === 'list') checkTokens(t.v, depth + 1);
    else if (t.t === 'atom') check(t.v.length > 0 && !/[ \t\r\n()"{]/.test(t.v.replace(/\[[^\]]*\]/g, '')), 'an atom has no space, paren, quote or brace outside a section', t.v);
  }
}

export const group: FuzzGroup = {
  group: 'imap-protocol',
  targets: [
    {
      name: 'imap.reader',
      seeds: () => [Buffer.concat(COMMANDS.map(command)), ...COMMANDS.map(command), Buffer.from('a {400}\r\n'), Buffer.from(`a ${'x'.repeat(250)}\r\nb NOOP\r\n`), Buffer.from('a APPEND REFUSE {3}\r\nabc\r\n')],
      dictionary: TOKENS,
      maxLength: 16 * 1024,
      async run(input) {
        const expected = show(await readAll(input, 0));
        for (const size of chunkingsFor(input.length)) {
          if (size === 0) continue;
          const got = show(await readAll(input, size));
          check(got === expected, `reading in chunks of ${size} bytes gives the same commands as in one piece`, { expected: preview(expected, 300), got: preview(got, 300) });
        }
      },
    },
    {
      name: 'imap.parser',
      seeds: () => [...COMMANDS.map((c) => Buffer.from(c, 'latin1')), ...nastyStrings().filter((b) => b.length <= 200_000)],
      dictionary: TOKENS,
      run(input) {
        const parsed = parseCommand(input);
        check((parsed.command === null) !== (parsed.error === null), 'either a command or an error', parsed);
        if (!parsed.command) return;
        check(/^[A-Z][A-Z0-9.-]*$/.test(parsed.command.name), 'an upper-case command name', parsed.command.name);
        checkTokens(parsed.command.args);
        const uids = Uint32Array.from([1, 2, 5, 9, 100, 4294967295]);
        for (const arg of parsed.command.args) {
          try {
            astring(arg, 'argument');
          } catch (err) {
            check(err instanceof ImapBad, 'astring fails only with ImapBad', String(err));
          }
          if (arg.t !== 'atom' || !isSequenceSet(arg.v)) continue;
          try {
            const ranges = parseSequenceSet(arg.v);
            check(ranges.every(([a, b]) => a >= 0 && b >= 0 && a <= 0xffffffff && b <= 0xffffffff), 'sequence numbers are in range', ranges);
            const seq = resolveSequence(ranges, 50);
            check(seq.every((n, i) => n >= 1 && n <= 50 && (i === 0 || n > (seq[i - 1] as number))), 'resolved numbers are ascending and within the mailbox', seq);
            const byUid = resolveUids(ranges, uids, uids.length);
            check(byUid.every((n) => n >= 1 && n <= uids.length), 'UIDs resolve to sequence numbers', byUid);
            resolveSequence(ranges, 0);
          } catch (err) {
            check(err instanceof ImapBad, 'sequence sets fail only with ImapBad', String(err));
          }
        }
      },
    },
  ],
};
