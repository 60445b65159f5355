// Fuzz targets for the SMTP code that is ours (smtp-server parses the client's commands): the DATA
// smuggling guard against a whole-buffer reference, dot-stuffing towards the upstream (chunked, against
// the POP3 helper, and back through the dot decoder), EHLO capability parsing and parameter forwarding,
// and the relay's reader of upstream replies (fed to a fake socket in chunks of every size).
import { EventEmitter } from 'node:events';
import { SmugglingGuard } from '../../core/intake/smuggling-guard.ts';
import { DotStuffer, UpstreamConnection, type UpstreamEndpoint, type UpstreamReply } from '../../core/smtp/relay-upstream.ts';
import { encodeXtext, mailParams, parseEhlo, rcptParams, reconcileFeatures } from '../../core/smtp/relay-capabilities.ts';
import { DotDecoder, dotStuff } from '../../core/pop3/dot-decoder.ts';
import { isPosternError } from '../../core/errors.ts';
import { check, chunked, chunkingsFor, preview, type FuzzGroup } from './target.ts';
import { messageSeeds } from './seeds.ts';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** The guard's verdicts computed on the whole buffer at once (the definition in smuggling-guard.ts). */
function reference(b: Buffer): { smuggling: boolean; bare: boolean } {
  let smuggling = false;
  let bare = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c === LF && b[i - 1] !== CR) bare = true;
    if (c === CR && b[i + 1] !== LF) bare = true;
    if (c === DOT && i >= 1 && (b[i - 1] === CR || b[i - 1] === LF) && (b[i + 1] === CR || b[i + 1] === LF)) {
      const crlfBefore = b[i - 1] === LF && b[i - 2] === CR;
      const crlfAfter = b[i + 1] === CR && b[i + 2] === LF;
      if (!crlfBefore || !crlfAfter) smuggling = true;
    }
  }
  return { smuggling, bare };
}

const SMUGGLING_TOKENS = ['\r\n.\r\n', '\n.\n', '\n.\r\n', '\r\n.\n', '\r.\r', '\r.\n', '.\r', '\r\n', '\n', '\r', '.', '..'];

class FakeSocket extends EventEmitter {
  destroyed = false;
  setTimeout(): this { return this; }
  setNoDelay(): this { return this; }
  write(): boolean { return true; }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      queueMicrotask(() => this.emit('close'));
    }
    return this;
  }
}

const ENDPOINT: UpstreamEndpoint = {
  host: '127.0.0.1', port: 25, implicitTls: false, tls: { rejectUnauthorized: true }, connectTimeoutMs: 1000, commandTimeoutMs: 1000, dataTimeoutMs: 1000, maxLineBytes: 512, maxReplyLines: 50,
};

async function replies(input: Buffer, size: number): Promise<string[]> {
  const socket = new FakeSocket();
  const Ctor = UpstreamConnection as unknown as new (s: FakeSocket, e: UpstreamEndpoint, secure: boolean) => UpstreamConnection;
  const conn = new Ctor(socket, ENDPOINT, false);
  for (const c of chunked(input, size)) socket.emit('data', c);
  socket.destroy();
  const out: string[] = [];
  for (let i = 0; i < 100; i++) {
    let r: UpstreamReply;
    try {
      r = await conn.read(1000);
    } catch (err) {
      check(isPosternError(err, 'UPSTREAM_FAILED'), 'reading replies fails only with UPSTREAM_FAILED', String(err));
      out.push(`failed: ${(err as Error).message}`);
      break;
    }
    check(r.code >= 200 && r.code <= 599 && r.lines.length >= 1, 'a reply has a 2xx-5xx code and lines', r);
    out.push(JSON.stringify(r));
  }
  return out;
}

const EHLO = ['250-mx.example.com Hello', '250-SIZE 10240000', '250-8BITMIME', '250-SMTPUTF8', '250-DSN', '250-PIPELINING', '250-STARTTLS', '250-AUTH PLAIN LOGIN CRAM-MD5', '250-CHUNKING', '250 ENHANCEDSTATUSCODES'];
const FEATURES = ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'DSN', 'STARTTLS', 'AUTH PLAIN LOGIN', 'SIZE 26214400', 'CHUNKING', 'REQUIRETLS'];
const ALLOWED = new Set(['PIPELINING', 'STARTTLS', 'ENHANCEDSTATUSCODES', '8BITMIME', 'SMTPUTF8', 'DSN', 'AUTH', 'SIZE']);

function decodeXtext(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '+') {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(s.charCodeAt(i));
  }
  return Buffer.from(out);
}

export const group: FuzzGroup = {
  group: 'smtp',
  targets: [
    {
      name: 'smtp.smuggling-guard',
      seeds: () => [...messageSeeds().slice(0, 150).map((m) => m.subarray(0, 16 * 1024)), ...SMUGGLING_TOKENS.map((t) => Buffer.from(`a${t}b`, 'latin1'))],
      dictionary: SMUGGLING_TOKENS,
      maxLength: 64 * 1024,
      run(input) {
        const want = reference(input);
        for (const size of chunkingsFor(input.length)) {
          const g = new SmugglingGuard();
          for (const c of chunked(input, size)) g.scan(c);
          g.end();
          check(g.smuggling === want.smuggling, `smuggling verdict in chunks of ${size} bytes matches the whole-buffer reference`, { want, got: g.smuggling });
          check(g.bareLineEnding === want.bare, `bare line ending verdict in chunks of ${size} bytes matches the reference`, { want, got: g.bareLineEnding });
        }
      },
    },
    {
      name: 'smtp.dot-stuffer',
      seeds: () => [...messageSeeds().slice(0, 150).map((m) => m.subarray(0, 16 * 1024)), Buffer.from('.'), Buffer.from('\n.'), Buffer.from('.\r\n.\r\n')],
      dictionary: ['.', '\r\n.', '\n.', '\r\n', '\n', '\r', '..'],
      maxLength: 64 * 1024,
      run(input) {
        const expected = dotStuff(input);
        for (const size of chunkingsFor(input.length)) {
          const s = new DotStuffer();
          const out = Buffer.concat(chunked(input, size).map((c) => s.stuff(c)));
          check(out.equals(expected), `stuffing in chunks of ${size} bytes matches dotStuff of the whole`, { expected: preview(expected, 60), out: preview(out, 60) });
          const framed = Buffer.concat([out, s.terminator()]);
          const d = new DotDecoder();
          const r = d.feed(framed);
          check(r.done && r.rest.length === 0, 'the terminator ends the data exactly', preview(framed.subarray(-8)));
          const data = Buffer.concat(r.data);
          const body = input.length === 0 || input[input.length - 1] === LF ? input : Buffer.concat([input, Buffer.from('\r\n')]);
          check(data.equals(body), 'the receiver unstuffs exactly the message (plus a CRLF when it had none at the end)', { body: preview(body, 60), data: preview(data, 60) });
        }
      },
    },
    {
      name: 'smtp.ehlo',
      seeds: () => [Buffer.from(EHLO.map((l) => l.slice(4)).join('\r\n')), Buffer.from('x\r\nSIZE\r\nSIZE -1\r\nSIZE 1e400\r\nAUTH\r\nAUTH =\r\n')],
      dictionary: ['\r\n', 'SIZE ', 'AUTH ', 'PLAIN', 'LOGIN', '8BITMIME', 'DSN', 'SMTPUTF8', 'ENVID=', 'RET=', 'NOTIFY=', 'ORCPT=rfc822;', 'BODY=', '=', ' ', '\t', '9007199254740993', '-0', '+', '\xff'],
      run(input) {
        const lines = input.toString('latin1').split(/\r?\n/);
        const caps = parseEhlo(lines);
        check(caps.size === null || (Number.isSafeInteger(caps.size) && caps.size >= 0), 'SIZE is a safe non-negative integer', caps.size);
        check(caps.auth.every((m) => /^[A-Z0-9_-]{1,20}$/.test(m)) && new Set(caps.auth).size === caps.auth.length, 'AUTH mechanisms are distinct SASL names', caps.auth);
        for (const authMode of ['passthrough', 'local', 'none'] as const) {
          const out = reconcileFeatures([...FEATURES, ...lines.slice(0, 20)], caps, { maxMessageSize: 1_000_000, authMode });
          for (const f of out) {
            const k = (f.split(/\s+/)[0] ?? '').toUpperCase();
            check(ALLOWED.has(k), 'only features both ends can carry are advertised', f);
            if (k === 'SIZE') check(/^SIZE \d+$/.test(f) && Number(f.slice(5)) <= 1_000_000, 'SIZE is at most our own limit', f);
          }
        }
        const args: Record<string, string | boolean> = {};
        for (const word of lines.join(' ').split(' ').slice(0, 50)) {
          const eq = word.indexOf('=');
          if (eq > 0) args[word.slice(0, eq)] = word.slice(eq + 1);
          else if (word !== '') args[word] = true;
        }
        for (const p of [mailParams(args, caps), rcptParams(args, caps)]) {
          for (const item of p.text === '' ? [] : p.text.split(' ')) {
            const [key = '', ...rest] = item.split('=');
            check(['SIZE', 'BODY', 'SMTPUTF8', 'RET', 'ENVID', 'NOTIFY', 'ORCPT'].includes(key), 'only known parameters are forwarded', item);
            if (key === 'ENVID' || key === 'ORCPT') check(/^[\x21-\x7e]*$/.test(rest.join('=')), 'xtext values are printable ASCII', item);
          }
        }
        for (const value of [input.toString('utf8'), input.toString('latin1')]) {
          const x = encodeXtext(value);
          check(/^[\x21-\x2a\x2c-\x3c\x3e-\x7e]*$|^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/.test(x), 'xtext is printable with +XX escapes', x);
          check(decodeXtext(x).equals(Buffer.from(value, 'utf8')), 'xtext decodes to the value\'s UTF-8 bytes', value);
        }
      },
    },
    {
      name: 'smtp.upstream-replies',
      seeds: () => [Buffer.from(`${EHLO.join('\r\n')}\r\n`), Buffer.from('220 ready\r\n250 ok\r\n354 go\r\n250-a\n250 b\n'), Buffer.from('220-x\r\n250 y\r\n'), Buffer.from(`${'250-x\r\n'.repeat(60)}250 y\r\n`)],
      dictionary: ['\r\n', '\n', '250 ', '250-', '220 ', '354 ', '421 ', '550-', '199 ', '600 ', '2500', '\r', ' '],
      maxLength: 16 * 1024,
      async run(input) {
        const expected = JSON.stringify(await replies(input, 0));
        for (const size of chunkingsFor(input.length)) {
          const got = JSON.stringify(await replies(input, size));
          check(got === expected, `replies read in chunks of ${size} bytes are the same as in one piece`, { expected: preview(expected, 200), got: preview(got, 200) });
        }
      },
    },
  ],
};
