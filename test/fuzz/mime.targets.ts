// Fuzz targets for core/mime: address lists, header blocks with unfolding and encoded words, the
// multipart scanner, streaming transfer decoding, RFC 5322 dates and the canonical hash.
import { parseHeaderBlock, headerValues, summarize } from '../../core/mime/headers.ts';
import { extractAddresses } from '../../core/mime/addresses.ts';
import { parseDate, parseDateZone, stripComments } from '../../core/mime/date.ts';
import { MAX_PARTS, Problems, partBody, readNode, walkLeaves } from '../../core/mime/multipart.ts';
import { transferDecoder } from '../../core/mime/transfer-decoding.ts';
import { canonicalHash } from '../../core/mime/canonical-hash.ts';
import { safeStyleSheet } from '../../plugins/web/mail-css.ts';
import { sanitizeMailHtml } from '../../plugins/web/sanitize.ts';
import { check, chunked, chunkingsFor, preview, type FuzzGroup } from './target.ts';
import { headerBlockSeeds, headerValueSeeds, messageSeeds, nastyStrings } from './seeds.ts';

const ADDRESS_TOKENS = ['<', '>', '@', ',', ';', ':', '"', '\\"', '(', ')', '[', ']', '.', 'a@b', '<a@b>', '"x y"', '@r1,@r2:', 'group:', '=?utf-8?q?x?=', '\\'];
const HEADER_TOKENS = ['\r\n ', '\n\t', '\r\n\r\n', 'Subject: ', 'From: ', 'To: ', 'Date: ', 'Message-ID: <', 'Content-Type: ', ': ', '=?utf-8?B?', '=?iso-8859-1?Q?', '?=', '=?', '=?utf-8*en?q?', '=C3=A9', '=FF', '_', '\u0000', 'From '];
const MULTIPART_TOKENS = ['--', '--b', '--b--', '\r\n--b\r\n', '\n--b\n', 'boundary=b', 'boundary="', 'Content-Type: multipart/mixed; boundary=b\r\n', 'Content-Type: message/rfc822\r\n', 'Content-Type: multipart/digest; boundary=b\r\n', 'Content-Transfer-Encoding: base64\r\n', 'Content-Transfer-Encoding: quoted-printable\r\n', '\r\n\r\n', '=\r\n', '=3D'];
const DATE_TOKENS = ['Mon,', 'Feb', 'sept', 'GMT', 'UT', 'EST', 'Z', 'J', '+0000', '-1259', '+99:99', '23:59:60', '00:00', '.123', '29', '31', '1900', '99', '2024', '10000', '(', ')', '-', 'GMT+1', 'UTC-05', 'T', ','];

const asText = (input: Buffer): string[] => {
  const latin1 = input.toString('latin1');
  const utf8 = input.toString('utf8');
  return latin1 === utf8 ? [latin1] : [latin1, utf8];
};

const addressSeeds = (): Buffer[] => [
  ...headerValueSeeds(['from', 'to', 'cc', 'bcc', 'reply-to', 'sender', 'return-path', 'delivered-to', 'x-original-to', 'envelope-to']),
  ...nastyStrings(),
];

function checkSummary(block: ReturnType<typeof parseHeaderBlock>): void {
  const s = summarize(block);
  for (const key of ['from', 'to', 'cc', 'subject'] as const) {
    check(typeof s[key] === 'string', `summary ${key} is a string`);
    check([...s[key]].length <= 998, `summary ${key} is capped at 998 characters`, s[key].length);
    // eslint-disable-next-line no-control-regex
    check(!/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/.test(s[key]), `summary ${key} has no control characters`, s[key]);
  }
  check(s.date === null || !Number.isNaN(Date.parse(s.date)), 'summary date is null or an ISO date', s.date);
}

export const group: FuzzGroup = {
  group: 'mime',
  targets: [
    {
      // The web access's reduction of a mail's <style> sheets and HTML (plugins/web/mail-css.ts, sanitize.ts):
      // whatever the input, what is kept can neither load nor run anything.
      name: 'mime.mail-html-css',
      seeds: () => [
        '<style>p{color:red} @import url(http://x); .a{background:url(http://t/p.gif)}</style><p class="a">x</p>',
        '<html><head><style>@media screen{.x{color:blue}} td>b,h1{font-weight:bold}</style></head><body><img src="http://t/i.gif" alt="i"></body></html>',
        '<style>a\\3c{color:green}</style><style>/* c */ b{width:expression(alert(1))}</style><script>alert(1)</script>',
      ].map((t) => Buffer.from(t)),
      dictionary: ['<style>', '</style>', '{', '}', ';', '@import', '@media', 'url(', 'http://t/', 'expression(', '\\', '/*', '*/', '<', '>', 'class="', 'style="', ':', 'image-set(', '&#'],
      maxLength: 8192,
      run(input) {
        const text = input.toString('utf8');
        const css = safeStyleSheet(text);
        for (const rule of css.split('\n').filter((r) => r !== '')) {
          check(/^[^{}<\\]+\{[^{}<\\]*\}$/.test(rule), 'a kept rule is a plain selector and a declaration block', rule);
          check(!/url\s*\(|@import|expression\s*\(|image-set/i.test(rule), 'a kept rule loads and runs nothing', rule);
        }
        const r = sanitizeMailHtml(text, new Map());
        check(!/<(script|style|iframe|object|link|meta|base)\b/i.test(r.html), 'no active or styling element in the sanitised HTML', r.html);
        check(!/url\s*\(|@import/i.test(r.css) && !r.css.includes('<'), 'the kept sheets load nothing and hold no markup', r.css);
      },
    },
    {
      name: 'mime.addresses',
      seeds: addressSeeds,
      dictionary: ADDRESS_TOKENS,
      run(input) {
        for (const text of asText(input)) {
          const out = extractAddresses(text);
          check(new Set(out).size === out.length, 'no duplicate addresses', out);
          for (const a of out) {
            const at = a.lastIndexOf('@');
            check(at > 0 && at < a.length - 1, 'an address is local@domain', a);
            const domain = a.slice(at + 1);
            check(domain === domain.toLowerCase(), 'the domain is lower-cased', a);
            check(!/[\r\n]/.test(a), 'no line breaks in an address', a);
            const again = extractAddresses(a);
            check(again.length === 1 && again[0] === a, 'an extracted address reads back as itself', { a, again });
          }
        }
      },
    },
    {
      name: 'mime.headers',
      seeds: () => [...headerBlockSeeds(), ...messageSeeds().slice(0, 50)],
      dictionary: HEADER_TOKENS,
      maxLength: 256 * 1024,
      run(input) {
        for (const limit of [undefined, 64, 4096]) {
          const block = limit === undefined ? parseHeaderBlock(input) : parseHeaderBlock(input, limit);
          check(block.headerBytes >= 0 && block.headerBytes <= input.length, 'headerBytes lies within the input', block.headerBytes);
          check(block.fields.length <= 10_000, 'at most 10,000 fields');
          for (const f of block.fields) {
            check(f.name.length > 0 && !/[\s:]/.test(f.name), 'a field name has no whitespace or colon', f.name);
            check(!f.value.includes('\n'), 'an unfolded value has no LF', f.value);
          }
          if (block.complete && limit === undefined) {
            const rest = input.subarray(0, block.headerBytes);
            check(rest.subarray(-1)[0] === 0x0a, 'a complete block ends with its blank line', rest.subarray(-4));
          }
          checkSummary(block);
          headerValues(block, 'received');
        }
      },
    },
    {
      name: 'mime.encoded-words',
      seeds: () => [...headerValueSeeds(['subject', 'from', 'to']).filter((b) => b.includes('=?')), ...nastyStrings().filter((b) => b.length < 100)],
      dictionary: ['=?utf-8?B?', '=?UTF-8?Q?', '=?iso-8859-1?q?', '=?iso-2022-jp?B?', '=?gb2312?b?', '=?x-unknown?q?', '=?utf-8*de?q?', '?=', '=?', '?', '=', '=E9', '=C3', '=A9', '_', '\0', ' ', '\r\n ', 'w6k=', '====', '8J+YgA==', '=?utf-8?b?', '?==?'],
      run(input) {
        for (const text of asText(input)) {
          const header = Buffer.from(`Subject: ${text}\r\nFrom: ${text}\r\nTo: ${text}\r\nCc: ${text}\r\n\r\n`, 'utf8');
          checkSummary(parseHeaderBlock(header));
        }
      },
    },
    {
      name: 'mime.multipart',
      seeds: messageSeeds,
      dictionary: MULTIPART_TOKENS,
      maxLength: 512 * 1024,
      run(input) {
        const root = readNode(input, 0, input.length, 'text/plain');
        check(root.start <= root.bodyStart && root.bodyStart <= root.end, 'root offsets are ordered', root);
        const problems = new Problems();
        const budget = { parts: 0 };
        let leaves = 0;
        walkLeaves(root, 0, budget, problems, (leaf) => {
          leaves++;
          check(leaf.buf === input, 'a leaf points into the input');
          check(leaf.start >= 0 && leaf.start <= leaf.bodyStart && leaf.bodyStart <= leaf.end && leaf.end <= input.length, 'leaf offsets are ordered and within the input', [leaf.start, leaf.bodyStart, leaf.end]);
          const body = partBody(leaf, problems);
          check(body.length <= leaf.end - leaf.bodyStart, 'a decoded body is no longer than its encoded form', [body.length, leaf.end - leaf.bodyStart]);
          return true;
        });
        check(budget.parts <= MAX_PARTS, 'the part budget holds', budget.parts);
        check(leaves <= MAX_PARTS + 1, 'at most MAX_PARTS leaves', leaves);
        check(problems.list.length <= 101, 'problems are capped', problems.list.length);
      },
    },
    {
      name: 'mime.transfer-decoding',
      seeds: () => [
        ...messageSeeds().slice(0, 100).map((m) => m.subarray(0, 8192)),
        Buffer.from('QUJDREVGRw==\r\nSGVsbG8gd29ybGQ=\r\n'), Buffer.from('=E9t=E9 =\r\nsoft=3D=\nbare =ZZ ='), Buffer.from('a=\r'), Buffer.from('=\r\n'),
      ],
      dictionary: ['=', '=\r\n', '=\n', '=\r', '= \r\n', '=3D', '=3', '=G', '==', '====', 'QUJD', '-', '_', '+', '/', '\r\n'],
      run(input) {
        for (const encoding of ['base64', 'quoted-printable', '7bit', 'x-unknown', ' Base64 ']) {
          const whole = (() => {
            const d = transferDecoder(encoding);
            return Buffer.concat([d.write(input), d.end()]);
          })();
          for (const size of chunkingsFor(input.length)) {
            if (size === 0) continue;
            const d = transferDecoder(encoding);
            const parts = chunked(input, size).map((c) => d.write(c));
            const got = Buffer.concat([...parts, d.end()]);
            check(got.equals(whole), `${encoding} decoding in chunks of ${size} bytes gives the same bytes as in one piece`, { whole: preview(whole, 60), got: preview(got, 60) });
          }
          if (encoding.trim().toLowerCase() === 'base64') check(whole.length <= Math.ceil((input.length * 3) / 4) + 3, 'base64 output is at most 3/4 of the input');
          else check(whole.length <= input.length, `${encoding} output is no longer than its input`);
        }
      },
    },
    {
      name: 'mime.date',
      seeds: () => [...headerValueSeeds(['date', 'received', 'resent-date'], 2000).map((v) => {
        const s = v.toString('utf8');
        const semi = s.lastIndexOf(';');
        return Buffer.from(semi === -1 ? s : s.slice(semi + 1), 'utf8');
      }), ...nastyStrings().filter((b) => b.length < 200_000)],
      dictionary: DATE_TOKENS,
      run(input) {
        for (const text of asText(input)) {
          const iso = parseDate(text);
          const zoned = parseDateZone(text);
          if (iso !== null) {
            const ms = Date.parse(iso);
            check(Number.isFinite(ms) && new Date(ms).toISOString() === iso, 'parseDate gives a canonical ISO date', iso);
          }
          if (zoned !== null) {
            check(zoned.iso === iso, 'parseDateZone agrees with parseDate', { zoned, iso });
            check(Number.isInteger(zoned.offsetMinutes) && Math.abs(zoned.offsetMinutes) < 100 * 60, 'the zone offset is within ±99:59', zoned.offsetMinutes);
          }
          const stripped = stripComments(text);
          check(stripped.length <= text.length + 1 + text.split('(').length, 'stripComments does not grow the text beyond one space per comment', stripped.length);
        }
      },
    },
    {
      name: 'mime.canonical-hash',
      seeds: messageSeeds,
      dictionary: [...HEADER_TOKENS, 'Received: x\r\n', 'X-Spam-Score: 1\r\n', 'From mbox\r\n', ' \r\n', '\t\r\n'],
      maxLength: 256 * 1024,
      run(input) {
        const plain = canonicalHash(input);
        check(/^[0-9a-f]{64}$/.test(plain.hash), 'a hex SHA-256', plain.hash);
        const reused = canonicalHash(input, parseHeaderBlock(input));
        check(reused.hash === plain.hash, 'reusing the parsed header block gives the same hash');
        const unlimited = canonicalHash(input, parseHeaderBlock(input, Infinity));
        check(unlimited.hash === plain.hash, 'a header block parsed without limit gives the same hash');
        if (input.length <= 400 * 1024) {
          const parts: Buffer[] = [];
          let start = 0;
          for (let i = 0; i < input.length; i++) {
            if (input[i] === 0x0a && (i === 0 || input[i - 1] !== 0x0d)) {
              parts.push(input.subarray(start, i), Buffer.from('\r'));
              start = i;
            }
          }
          parts.push(input.subarray(start));
          const crlf = Buffer.concat(parts);
          check(canonicalHash(crlf).hash === plain.hash, 'bare LF and CRLF line ends hash the same');
        }
      },
    },
  ],
};
