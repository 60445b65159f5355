// Fuzz targets for the POP3 proxy's own protocol code: client command syntax (what passes is re-serialised
// and must parse again to the same command), the multi-line body framing with dot-unstuffing fed in
// chunks of every size, and line reading from a socket.
import { PassThrough } from 'node:stream';
import { decodePlainIdentity, parseCommand } from '../../core/pop3/commands.ts';
import { DotDecoder, dotStuff } from '../../core/pop3/dot-decoder.ts';
import { ReadError, SocketReader } from '../../core/pop3/socket-reader.ts';
import { check, chunked, chunkingsFor, preview, type FuzzGroup } from './target.ts';
import { messageSeeds, nastyStrings } from './seeds.ts';

const COMMANDS = ['CAPA', 'STLS', 'USER alice', 'PASS s3cr\xc3\xa9t', 'APOP alice 0123456789abcdef0123456789abcdef', 'AUTH PLAIN AGFsaWNlAHBhc3M=', 'AUTH PLAIN =', 'AUTH',
  'STAT', 'LIST', 'LIST 1', 'UIDL 3', 'TOP 1 10', 'RETR 1', 'DELE 999999999', 'RSET', 'NOOP', 'QUIT', 'retr 0', 'TOP 1', 'TOP 1 2 3'];

interface Decoded { raw: Buffer; data: Buffer; done: boolean; rest: Buffer }

function decode(input: Buffer, size: number): Decoded {
  const d = new DotDecoder();
  const raw: Buffer[] = [];
  const data: Buffer[] = [];
  const rest: Buffer[] = [];
  for (const c of chunked(input, size)) {
    const r = d.feed(c);
    raw.push(...r.raw);
    data.push(...r.data);
    rest.push(r.rest);
  }
  const out = { raw: Buffer.concat(raw), data: Buffer.concat(data), done: d.done, rest: Buffer.concat(rest) };
  check(d.rawBytes === out.raw.length && d.dataBytes === out.data.length, 'byte counters match what was handed out');
  return out;
}

async function readLines(input: Buffer, size: number, max: number): Promise<string[]> {
  const socket = new PassThrough();
  const reader = new SocketReader(socket, 4096);
  for (const c of chunked(input, size)) socket.write(c);
  socket.end();
  const out: string[] = [];
  for (;;) {
    try {
      out.push(JSON.stringify((await reader.readLine(max, 2000)).toString('latin1')));
    } catch (err) {
      check(err instanceof ReadError && err.reason !== 'timeout', 'readLine fails only as closed or too-long once the peer has ended', String(err));
      out.push(`error ${(err as ReadError).reason}`);
      break;
    }
  }
  reader.detach();
  return out;
}

export const group: FuzzGroup = {
  group: 'pop3',
  targets: [
    {
      name: 'pop3.commands',
      seeds: () => [...COMMANDS.map((c) => Buffer.from(c, 'latin1')), ...nastyStrings().filter((b) => b.length < 2000)],
      dictionary: ['USER ', 'PASS ', 'APOP ', 'AUTH ', 'TOP ', 'RETR ', ' ', '=', '0', '999999999', '1000000000', '\r', '\n', '\0', '\xff'],
      run(input) {
        const r = parseCommand(input);
        if ('error' in r) {
          check(r.error.startsWith('-ERR ') && !/[\r\n]/.test(r.error), 'an error is one -ERR line', r.error);
        } else {
          check(!/[\r\n\0]/.test(r.line), 'the upstream line has no CR, LF or NUL', r.line);
          const again = parseCommand(Buffer.from(r.line, 'latin1'));
          check(!('error' in again) && again.verb === r.verb && again.line === r.line && JSON.stringify(again.numbers) === JSON.stringify(r.numbers), 'the canonical line parses to the same command', { line: r.line, again });
          check(r.numbers.every((n) => Number.isSafeInteger(n) && n >= 0), 'numbers are non-negative integers', r.numbers);
        }
        const id = decodePlainIdentity(input.toString('latin1'));
        check(id === null || (id.length > 0 && id.length <= 255), 'a PLAIN identity is 1 to 255 characters', id);
      },
    },
    {
      name: 'pop3.dot-decoder',
      seeds: () => [...messageSeeds().slice(0, 150).map((m) => m.subarray(0, 32 * 1024)), Buffer.from('.\r\n'), Buffer.from('..\r\n.\r\n'), Buffer.from('a\n.\n'), Buffer.from('.\r'), Buffer.from('x\r\n.\r\nrest')],
      dictionary: ['.', '..', '.\r\n', '\r\n.\r\n', '\n.\n', '\r.\r', '.\r', '\r\n..', '\r\n', '\n'],
      maxLength: 64 * 1024,
      run(input) {
        // Any bytes: the same framing whatever the chunking.
        const whole = decode(input, 0);
        for (const size of chunkingsFor(input.length)) {
          const got = decode(input, size);
          check(got.done === whole.done && got.raw.equals(whole.raw) && got.data.equals(whole.data) && (!whole.done || got.rest.equals(whole.rest)),
            `decoding in chunks of ${size} bytes frames the body as in one piece`, { whole: preview(whole.data, 60), got: preview(got.data, 60) });
        }
        // The input as a message: stuffed and terminated, it decodes back to itself.
        const ends = input.length === 0 || input[input.length - 1] === 0x0a;
        const body = ends ? input : Buffer.concat([input, Buffer.from('\r\n')]);
        const stuffed = dotStuff(body);
        const framed = Buffer.concat([stuffed, Buffer.from('.\r\nNEXT')]);
        for (const size of [0, 1, 3, 1021]) {
          const r = decode(framed, size);
          check(r.done, 'the terminator is found', size);
          check(r.data.equals(body), 'dot-unstuffing restores the message', { size, body: preview(body, 60), data: preview(r.data, 60) });
          check(r.raw.equals(stuffed), 'the raw bytes are the stuffed body', size);
          check(r.rest.toString('latin1') === 'NEXT', 'what follows the terminator is handed back', preview(r.rest));
        }
      },
    },
    {
      name: 'pop3.socket-reader',
      seeds: () => [Buffer.from(COMMANDS.join('\r\n') + '\r\n', 'latin1'), ...messageSeeds().slice(0, 40).map((m) => m.subarray(0, 4096)), Buffer.from(`${'x'.repeat(100)}\r\n${'y'.repeat(101)}\n`)],
      dictionary: ['\r\n', '\n', '\r', 'x'.repeat(99), ' '],
      maxLength: 16 * 1024,
      async run(input) {
        const max = 100;
        const expected: string[] = [];
        let pos = 0;
        for (;;) {
          const nl = input.indexOf(0x0a, pos);
          if (nl < 0) {
            expected.push(input.length - pos > max + 1 ? 'error too-long' : 'error closed');
            break;
          }
          if (nl - pos > max + 1) {
            expected.push('error too-long');
            break;
          }
          const end = nl > pos && input[nl - 1] === 0x0d ? nl - 1 : nl;
          expected.push(JSON.stringify(input.subarray(pos, end).toString('latin1')));
          pos = nl + 1;
        }
        for (const size of chunkingsFor(input.length)) {
          const got = await readLines(input, size, max);
          check(JSON.stringify(got) === JSON.stringify(expected), `lines read in chunks of ${size} bytes are the input's lines`, { expected: expected.slice(-3), got: got.slice(-3) });
        }
      },
    },
  ],
};
