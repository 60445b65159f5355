// Seed material for the fuzz targets: the test fixtures (test/fixtures/), a deterministic sample of the
// SpamAssassin corpus (test/helpers/corpus.ts), header values taken from both, and hand-written nasty
// inputs (bare LF, 8-bit bytes, huge lines, deep nesting, unbalanced parens, quotes and brackets).
// Loaded lazily and cached per worker.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../helpers/corpus.ts';
import { parseHeaderBlock } from '../../core/mime/headers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function once<T>(make: () => T): () => T {
  let value: T | undefined;
  let done = false;
  return () => {
    if (!done) {
      value = make();
      done = true;
    }
    return value as T;
  };
}

function filesUnder(dir: string, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) filesUnder(p, out);
    else if (st.isFile() && st.size <= 4 * 1024 * 1024) out.push(p);
  }
  return out;
}

/** Every file under test/fixtures/<sub> (fuzz regressions excluded). */
export function fixtureFiles(sub: string): Buffer[] {
  return filesUnder(join(ROOT, 'test/fixtures', sub)).filter((p) => !p.includes('/fixtures/fuzz/')).map((p) => readFileSync(p));
}

/** Every 12th message of the SpamAssassin corpus (about 500), first 256 KiB of each. */
export const corpusSample = once((): Buffer[] => {
  let all: Buffer[];
  try {
    all = loadCorpus();
  } catch {
    return [];
  }
  return all.filter((_, i) => i % 12 === 0).map((m) => (m.length > 256 * 1024 ? m.subarray(0, 256 * 1024) : m));
});

/** Messages: mail-like fixtures, the corpus sample and the nasty messages below. */
export const messageSeeds = once((): Buffer[] => [
  ...fixtureFiles('journal').filter((b) => !b.subarray(0, 1).equals(Buffer.from('{'))),
  ...fixtureFiles('import/eml'),
  ...fixtureFiles('import/maildir'),
  ...corpusSample(),
  ...nastyMessages(),
]);

/** Values of header fields (all names) found in the seed messages, deduplicated. */
export function headerValueSeeds(names: string[] | null, max = 3000): Buffer[] {
  const wanted = names === null ? null : new Set(names.map((n) => n.toLowerCase()));
  const seen = new Set<string>();
  const out: Buffer[] = [];
  for (const m of messageSeeds()) {
    for (const f of parseHeaderBlock(m).fields) {
      if (wanted !== null && !wanted.has(f.name.toLowerCase())) continue;
      if (seen.has(f.value)) continue;
      seen.add(f.value);
      out.push(Buffer.from(f.value, 'utf8'));
      if (out.length >= max) return out;
    }
  }
  return out;
}

/** Header blocks (up to the blank line) of the seed messages. */
export function headerBlockSeeds(): Buffer[] {
  return messageSeeds().map((m) => {
    const h = parseHeaderBlock(m);
    return m.subarray(0, h.complete ? h.headerBytes : m.length);
  });
}

const nest = (open: string, close: string, depth: number, inner = 'x'): string => open.repeat(depth) + inner + close.repeat(depth);

/** Hand-written hostile strings for single-line parsers (addresses, dates, commands). */
export function nastyStrings(): Buffer[] {
  const s = [
    '', ' ', ')', '(', '((', '))', ')(', '"', '""', '"\\', '\\', '<', '>', '<>', '<<>>', '[', ']', '@', '@@', ',,,', ';', ':', ':;',
    'a@b', '<a@b>', '"a"@b', 'a@[1.2.3.4]', 'a@[', 'a@]', '@a,@b:c@d', '<@a,@b:c@d>', 'Group: a@b, c@d;', 'Undisclosed recipients:;',
    'Cc: )', ')a@b', 'a@b)', '(a@b', '"a@b', 'a"@b', '\\"a@b', 'a\\@b', '=?utf-8?q?=C3=A9?= <a@b>', '=?utf-8?b?w6k=?=', '=?x?q?', '=??=',
    'a@b\r\n c@d', 'a@b\nc@d', 'a\x00@b', '\xff\xfe@\x80', 'é@é', 'Mon, 1 Jan 2024 00:00:00 +0000', '1 Jan 2024 00:00 GMT',
    'Thu, 31 Dec 9999 23:59:60 -1259', '29 Feb 2023 12:00 +0000', '(comment) 1 Jan 2024 00:00 (x)', '01-Jan-2024 00:00:00 +0100',
    nest('(', ')', 10_000), nest('<', '>', 10_000), nest('[', ']', 10_000), nest('"', '"', 10_000), '('.repeat(100_000), ')'.repeat(100_000),
    '"'.repeat(100_001), '\\'.repeat(100_001), '<'.repeat(50_000), '@'.repeat(50_000), ','.repeat(100_000), ':'.repeat(50_000),
    'a'.repeat(1_000_000), 'a@b,'.repeat(20_000), '<a@b>'.repeat(20_000), 'g:'.repeat(20_000), '(x'.repeat(30_000), '=?utf-8?q?a?='.repeat(20_000),
  ];
  return s.map((x) => Buffer.from(x, 'latin1'));
}

function multipartNest(depth: number, bare: boolean): string {
  const nl = bare ? '\n' : '\r\n';
  let body = `Content-Type: text/plain${nl}${nl}leaf${nl}`;
  for (let d = depth; d > 0; d--) {
    const b = `b${d}`;
    body = `Content-Type: multipart/mixed; boundary="${b}"${nl}${nl}--${b}${nl}${body}--${b}--${nl}`;
  }
  return `From: a@b${nl}Subject: nest${nl}MIME-Version: 1.0${nl}${body}`;
}

function rfc822Nest(depth: number): string {
  let m = 'Subject: inner\r\n\r\nbody\r\n';
  for (let d = 0; d < depth; d++) m = `Subject: level ${d}\r\nContent-Type: message/rfc822\r\n\r\n${m}`;
  return m;
}

/** Hand-written hostile messages. */
export function nastyMessages(): Buffer[] {
  const s = [
    'From: a@b\nTo: c@d\nSubject: bare LF\n\nbody\n.\n..\n',
    'From: a@b\r\nSubject: no blank line',
    'Subject: \xe9\xff\x80 8-bit\r\nFrom: \xc3\xa9 <a@b>\r\n\r\n\xff\xfe\x00body',
    `Subject: ${'x'.repeat(1_100_000)}\r\n\r\nbody`,
    `X-Long: ${'a '.repeat(300_000)}\r\n\r\n${'b'.repeat(500_000)}`,
    `${' folded\r\n'.repeat(50_000)}Subject: x\r\n\r\n`,
    multipartNest(40, false),
    multipartNest(100, true),
    rfc822Nest(60),
    'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\nx\r\n----\r\n',
    'Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n--b--\r\n',
    `Content-Type: multipart/mixed; boundary=b\r\n\r\n${'--b\r\n\r\n'.repeat(5000)}--b--\r\n`,
    'Content-Type: multipart/mixed; boundary="a"\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary="a"\r\n\r\n--a\r\n\r\nx\r\n--a--\r\n--a--\r\n',
    'Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n=====\r\n!!!!\r\nQUJD\r\nQ',
    'Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=\r\n=4=\n=ZZ=3D=\r=',
    'Content-Type: multipart/mixed; boundary*0="a"; boundary*1="b"\r\n\r\n--ab\r\n\r\nx\r\n--ab--\r\n',
    'Content-Type: text/plain; charset*=utf-8\'\'%ff%fe; name*0*=x; name*1=y; name*1000000=z\r\n\r\nx',
    `Content-Type: text/plain; ${'a=b; '.repeat(20_000)}\r\n\r\nx`,
    '\r\n\r\n\r\n',
    '\n',
    '',
    ':\r\n : \r\n\r\n',
    '\x00\x00\x00\r\n\r\n',
    'From x\r\nX: y\r\n\r\n',
  ];
  return s.map((x) => Buffer.from(x, 'latin1'));
}
