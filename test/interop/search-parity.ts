// SEARCH parity material for test/interop/imap-search-parity.test.ts: real-world messages nobody here
// wrote (a varied, seeded pick from the SpamAssassin corpus, plus the sample messages of Python's email
// test suite, Debian's libpython3.11-testsuite, when installed), their text decoded by Python's email
// package (decode-messages.py: a parser that is neither Postern nor Dovecot), a few hundred SEARCH
// queries generated from that text with a seeded PRNG (mid-word substrings, other case, non-ASCII
// needles; BODY, TEXT, SUBJECT, FROM, TO, CC, BCC, HEADER, SENT*, LARGER/SMALLER, NOT, OR), and the
// comparison of two servers' answers per message identity (SHA-256 of the served bytes), with every
// disagreement put in a class. The hand-made class probes are in search-probes.ts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { canonicalHash } from '../../core/mime/canonical-hash.ts';
import { loadCorpus } from '../helpers/corpus.ts';
import { prng } from '../helpers/prng.ts';
import { asSmtpMessage, ByteClient, headerOf, sha, type ImapTarget } from './imap-targets.ts';
import { runOk } from './harness.ts';

export const PYTHON_EMAIL_DATA = '/usr/lib/python3.11/test/test_email/data';

export interface Sample {
  /** Where it comes from: "spamassassin/<index in loadCorpus()>" or "python-email/<file>". */
  source: string;
  bytes: Buffer;
}

const latin = (b: Buffer): string => b.toString('latin1');
const topHeader = (m: Buffer): string => latin(headerOf(m));

/** What makes a message interesting for SEARCH: the tags a pick is balanced over. */
export function featuresOf(m: Buffer): string[] {
  const head = topHeader(m);
  const all = latin(m);
  const tags: string[] = [];
  if (/^content-type:\s*multipart\//im.test(head)) tags.push('multipart');
  if (/^content-type:\s*message\/(rfc822|partial|external-body)/im.test(all.slice(head.length)) || /^content-type:\s*message\//im.test(head)) tags.push('message-part');
  const charsets = [...all.matchAll(/charset\s*=\s*"?([A-Za-z0-9_.:-]+)/gi)].map((x) => (x[1] as string).toLowerCase());
  if (charsets.some((c) => !/^(us-ascii|utf-?8)$/.test(c))) tags.push('charset');
  if (/=\?[^?\s]+\?[bq]\?/i.test(head)) tags.push('encoded-word');
  if (/[\x80-\xff]/.test(head)) tags.push('8bit-header');
  if (/^content-transfer-encoding:\s*(base64|quoted-printable)/im.test(all)) tags.push('encoded-body');
  const date = /^date:[ \t]*(.*)$/im.exec(head)?.[1] ?? '';
  if (date !== '' && !/^(\w{3}, )?\d{1,2} \w{3} \d{4} \d\d:\d\d(:\d\d)? [+-]\d{4}\s*$/.test(date.trim())) tags.push('odd-date');
  if (/^(from|to|cc):.*\(/im.test(head)) tags.push('address-comment');
  if (/filename|name=/i.test(all.slice(head.length))) tags.push('attachment-name');
  return tags;
}

/** The sample messages of Python's email tests (Debian libpython3.11-testsuite), CRLF, if installed. */
export function pythonEmailSamples(dir = PYTHON_EMAIL_DATA): Sample[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => /^msg_\d+[a-z]?\.txt$/.test(n)).sort()
    .map((n) => ({ source: `python-email/${n}`, bytes: asSmtpMessage(readFileSync(join(dir, n))) }));
}

/**
 * `n` varied SpamAssassin corpus messages (at most `maxBytes` each): for every feature tag in turn a
 * message carrying it, drawn with the seeded PRNG, until `n` are chosen; copies that Postern would
 * merge (same canonical hash) are left out.
 */
export function corpusPick(n: number, seed: number, maxBytes = 120_000): Sample[] {
  const rnd = prng(seed);
  const files = loadCorpus();
  const pool: Array<{ bytes: Buffer; tags: string[]; source: string }> = [];
  files.forEach((raw, i) => {
    const bytes = asSmtpMessage(raw);
    if (bytes.length <= maxBytes) pool.push({ bytes, tags: featuresOf(bytes), source: `spamassassin/${i}` });
  });
  /** Canonical hashes of the messages taken: a copy Postern would merge with one of them is passed over. */
  const seen = new Set<string>();
  const TAGS = ['multipart', 'charset', 'encoded-word', 'message-part', '8bit-header', 'odd-date', 'address-comment', 'attachment-name', 'encoded-body', ''];
  const out: Sample[] = [];
  const taken = new Set<number>();
  for (let round = 0; out.length < n && round < n * 4; round++) {
    const tag = TAGS[round % TAGS.length] as string;
    const candidates = pool.map((p, i) => i).filter((i) => !taken.has(i) && (tag === '' || (pool[i] as { tags: string[] }).tags.includes(tag)));
    if (candidates.length === 0) continue;
    const i = candidates[Math.floor(rnd() * candidates.length)] as number;
    taken.add(i);
    const p = pool[i] as { bytes: Buffer; source: string };
    const key = canonicalHash(p.bytes).hash;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ source: p.source, bytes: p.bytes });
  }
  return out;
}

/** Drops samples that Postern would store as one message (same canonical hash) or that are byte-equal. */
export function distinct(samples: Sample[]): Sample[] {
  const seen = new Set<string>();
  return samples.filter((s) => {
    const keys = [sha(s.bytes), canonicalHash(s.bytes).hash];
    if (keys.some((k) => seen.has(k))) return false;
    keys.forEach((k) => seen.add(k));
    return true;
  });
}

export interface Decoded {
  headers: Array<[string, string]>;
  texts: string[];
  part_headers: Array<[string, string]>;
  inner_headers: Array<[string, string]>;
  date: [number, number, number] | null;
}

/** Every message decoded by Python's email package (decode-messages.py), in order. */
export async function decodeWithPython(messages: Buffer[]): Promise<Decoded[]> {
  const script = new URL('./decode-messages.py', import.meta.url).pathname;
  const input = JSON.stringify(messages.map((m) => m.toString('base64')));
  const r = await runOk(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', [script], { input, timeoutMs: 120_000 });
  return JSON.parse(r.stdout.toString('utf8')) as Decoded[];
}

/** One argument of a SEARCH command: an atom as written, or a string (quoted or a literal). */
export type Arg = { atom: string } | { str: string };

export interface Query {
  /** The key shape ("BODY", "NOT FROM", "OR SUBJECT TEXT", "SENTON", …): what disagreements are grouped by. */
  kind: string;
  args: Arg[];
  /** Index of the message the needles were drawn from (-1: none). */
  from: number;
}

/** The command text after "SEARCH ", strings as LITERAL+ when they need it, for a UTF-8 socket. */
export function searchCommand(args: Arg[]): Buffer {
  const parts: Buffer[] = [Buffer.from('SEARCH CHARSET UTF-8')];
  for (const a of args) {
    if ('atom' in a) parts.push(Buffer.from(` ${a.atom}`));
    else if (/^[\x20-\x7e]*$/.test(a.str) && !/["\\]/.test(a.str)) parts.push(Buffer.from(` "${a.str}"`));
    else {
      const b = Buffer.from(a.str, 'utf8');
      parts.push(Buffer.from(` {${b.length}+}\r\n`), b);
    }
  }
  return Buffer.concat(parts);
}

export function describeQuery(q: Query): string {
  return q.args.map((a) => ('atom' in a ? a.atom : JSON.stringify(a.str))).join(' ');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const WORD = /[\p{L}\p{N}][\p{L}\p{N}'’-]*[\p{L}\p{N}]/gu;

/** The query generator: needles drawn from the decoded text of the messages, with a seeded PRNG. */
export function generateQueries(messages: Buffer[], decoded: Decoded[], count: number, seed: number): Query[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const chance = (p: number): boolean => rnd() < p;
  const recase = (s: string): string => {
    const r = rnd();
    if (r < 0.3) return s;
    if (r < 0.55) return s.toUpperCase();
    if (r < 0.8) return s.toLowerCase();
    return [...s].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join('');
  };
  /** A mid-word substring (3–10 characters) of a word in `text`, preferring non-ASCII words sometimes; null when none. */
  const needle = (text: string): string | null => {
    const words = [...text.slice(0, 200_000).matchAll(WORD)].map((m) => m[0]).filter((w) => [...w].length >= 4 && [...w].length <= 40);
    if (words.length === 0) return null;
    const nonAscii = words.filter((w) => /[^\x00-\x7f]/.test(w));
    const word = [...(nonAscii.length > 0 && chance(0.5) ? pick(nonAscii) : pick(words))];
    if (chance(0.15)) return recase(word.join(''));
    const len = Math.min(word.length, 3 + Math.floor(rnd() * 8));
    let start = Math.floor(rnd() * (word.length - len + 1));
    const firstNonAscii = word.findIndex((c) => /[^\x00-\x7f]/.test(c));
    if (firstNonAscii >= 0 && (firstNonAscii < start || firstNonAscii >= start + len)) start = Math.max(0, Math.min(firstNonAscii - 1, word.length - len));
    return recase(word.slice(start, start + len).join(''));
  };
  const headerText = (d: Decoded, name: string): string => d.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v).join('\n');
  const withField = (name: string): number[] => decoded.map((d, i) => (headerText(d, name) !== '' ? i : -1)).filter((i) => i >= 0);

  type Simple = { kind: string; args: Arg[]; from: number } | null;
  const headerKey = (key: string, field: string): Simple => {
    const candidates = withField(field);
    if (candidates.length === 0) return null;
    const i = pick(candidates);
    const n = needle(headerText(decoded[i] as Decoded, field));
    return n === null ? null : { kind: key, args: [{ atom: key }, { str: n }], from: i };
  };
  const textKey = (key: 'BODY' | 'TEXT'): Simple => {
    const i = Math.floor(rnd() * decoded.length);
    const d = decoded[i] as Decoded;
    const sources = [...d.texts.filter((t) => t.trim() !== '')];
    const extra = key === 'TEXT' ? [d.headers, d.part_headers, d.inner_headers] : [d.inner_headers];
    for (const list of extra) if (list.length > 0 && chance(0.35)) sources.push(list.map(([, v]) => v).join('\n'));
    if (sources.length === 0) return null;
    const n = needle(pick(sources));
    return n === null ? null : { kind: key, args: [{ atom: key }, { str: n }], from: i };
  };
  const HEADER_FIELDS = ['Message-ID', 'X-Mailer', 'Reply-To', 'Content-Type', 'Received', 'List-Id', 'X-Spam-Status', 'In-Reply-To', 'Sender', 'MIME-Version', 'Return-Path', 'Organization'];
  const simple = (): Simple => {
    const r = rnd();
    if (r < 0.22) return textKey('BODY');
    if (r < 0.36) return textKey('TEXT');
    if (r < 0.48) return headerKey('SUBJECT', 'Subject');
    if (r < 0.58) return headerKey('FROM', 'From');
    if (r < 0.65) return headerKey('TO', 'To');
    if (r < 0.70) return headerKey('CC', 'Cc');
    if (r < 0.72) return headerKey('BCC', 'Bcc');
    if (r < 0.80) {
      const field = pick(HEADER_FIELDS);
      const k = headerKey('HEADER', field);
      return k && { kind: `HEADER ${field}`, args: [{ atom: 'HEADER' }, { atom: field }, ...k.args.slice(1)], from: k.from };
    }
    if (r < 0.92) {
      const dated = decoded.map((d, i) => (d.date ? i : -1)).filter((i) => i >= 0);
      if (dated.length === 0) return null;
      const i = pick(dated);
      const [y, m, day] = (decoded[i] as Decoded).date as [number, number, number];
      const t = new Date(Date.UTC(y, m - 1, day + Math.floor(rnd() * 3) - 1));
      const key = pick(['SENTON', 'SENTBEFORE', 'SENTSINCE']);
      return { kind: key, args: [{ atom: key }, { atom: `${t.getUTCDate()}-${MONTHS[t.getUTCMonth()]}-${t.getUTCFullYear()}` }], from: i };
    }
    const i = Math.floor(rnd() * messages.length);
    const size = (messages[i] as Buffer).length + Math.floor(rnd() * 3) - 1;
    const key = chance(0.5) ? 'LARGER' : 'SMALLER';
    return { kind: key, args: [{ atom: key }, { atom: String(size) }], from: i };
  };
  const make = (): Simple => {
    const r = rnd();
    if (r < 0.8) return simple();
    if (r < 0.88) {
      const a = simple();
      return a && { kind: `NOT ${a.kind}`, args: [{ atom: 'NOT' }, ...a.args], from: a.from };
    }
    const a = simple();
    const b = simple();
    if (!a || !b) return null;
    if (r < 0.96) return { kind: `OR ${a.kind} ${b.kind}`, args: [{ atom: 'OR' }, ...a.args, ...b.args], from: a.from };
    return { kind: `${a.kind} + ${b.kind}`, args: [...a.args, ...b.args], from: a.from };
  };
  const out: Query[] = [];
  const seen = new Set<string>();
  for (let tries = 0; out.length < count && tries < count * 20; tries++) {
    const q = make();
    if (!q) continue;
    const text = describeQuery(q);
    if (seen.has(text)) continue;
    seen.add(text);
    out.push(q);
  }
  return out;
}

/** What one server answered: per query the sorted identities of the messages found, or its refusal. */
export type Answers = Array<string[] | { refused: string }>;

/** Logs in to `t`, maps sequence numbers of `mailbox` to message identities (SHA-256 of BODY[]) and runs every query there. */
export async function runQueries(t: ImapTarget, queries: Query[], expected: number, mailbox = 'INBOX'): Promise<Answers> {
  const c = await ByteClient.open(t.tlsPort, t.ca);
  try {
    await c.ok(`LOGIN ${t.user} "${t.password}"`);
    const exists = /\* (\d+) EXISTS/.exec(await c.ok(`EXAMINE ${mailbox}`))?.[1];
    if (Number(exists) !== expected) throw new Error(`${t.name} holds ${exists} messages in ${mailbox}, ${expected} expected`);
    // One FETCH for all: each answer is "* n FETCH (BODY[] {size}" + the literal + ")".
    const all = await c.ok(`FETCH 1:${expected} (BODY.PEEK[])`);
    const bySeq = new Map<number, string>();
    const head = /\* (\d+) FETCH \(BODY\[\] \{(\d+)\}\r\n/g;
    for (let m = head.exec(all); m; m = head.exec(all)) {
      const start = m.index + m[0].length;
      bySeq.set(Number(m[1]), sha(Buffer.from(all.slice(start, start + Number(m[2])), 'latin1')));
      head.lastIndex = start + Number(m[2]);
    }
    if (bySeq.size !== expected) throw new Error(`${t.name}: FETCH 1:${expected} gave ${bySeq.size} messages`);
    const out: Answers = [];
    for (const q of queries) {
      const r = await c.cmd(searchCommand(q.args));
      if (!r.status.startsWith('OK')) {
        out.push({ refused: r.status });
        continue;
      }
      const line = /^\* SEARCH([ \d]*)\r\n/m.exec(r.data)?.[1] ?? '';
      out.push(line.trim().split(/\s+/).filter(Boolean).map((n) => bySeq.get(Number(n)) ?? `?${n}`).sort());
    }
    return out;
  } finally {
    c.close();
  }
}

export interface Disagreement {
  query: Query;
  /** Messages only Postern found, and only Dovecot found (identities). */
  posternOnly: string[];
  dovecotOnly: string[];
  refused?: string;
}

export interface Comparison {
  total: number;
  agreeing: number;
  percent: number;
  disagreements: Disagreement[];
}

export function compareAnswers(queries: Query[], postern: Answers, dovecot: Answers): Comparison {
  const disagreements: Disagreement[] = [];
  queries.forEach((query, i) => {
    const p = postern[i];
    const d = dovecot[i];
    if (p === undefined || d === undefined) throw new Error(`no answer to query ${i}`);
    if (!Array.isArray(p) || !Array.isArray(d)) {
      const same = !Array.isArray(p) && !Array.isArray(d) && p.refused.split(' ')[0] === d.refused.split(' ')[0];
      if (!same) disagreements.push({ query, posternOnly: [], dovecotOnly: [], refused: `postern ${Array.isArray(p) ? 'OK' : p.refused} / dovecot ${Array.isArray(d) ? 'OK' : d.refused}` });
      return;
    }
    const ps = new Set(p);
    const ds = new Set(d);
    const posternOnly = p.filter((x) => !ds.has(x));
    const dovecotOnly = d.filter((x) => !ps.has(x));
    if (posternOnly.length > 0 || dovecotOnly.length > 0) disagreements.push({ query, posternOnly, dovecotOnly });
  });
  const agreeing = queries.length - disagreements.length;
  return { total: queries.length, agreeing, percent: (100 * agreeing) / Math.max(1, queries.length), disagreements };
}

/** The charset names glibc's iconv knows (what Dovecot can decode), from `iconv -l`; null when iconv is missing. */
export async function glibcCharsets(): Promise<Set<string> | null> {
  try {
    const r = await runOk('iconv', ['-l']);
    return new Set(r.stdout.toString('latin1').split(/[\s,]+/).map((n) => n.replace(/\/+$/, '').toUpperCase()).filter(Boolean));
  } catch {
    return null;
  }
}

/** Why Dovecot's answer is not followed, per class (see the probes for each). */
export const DOVECOT_WRONG: Record<string, string> = {
  'invalid Content-Type': 'RFC 2045 5.2: a syntactically invalid Content-Type is text/plain; Dovecot never searches such a body',
  'charset glibc lacks': 'an IANA-registered charset name glibc iconv does not know (ks_c_5601-1987, unicode-1-1-utf-7): Dovecot reads the text as UTF-8',
  'junk after an address': 'Dovecot stops reading an address list at junk after an address and drops every later recipient (ENVELOPE and TO alike)',
  'date before 1970': 'Dovecot keeps the sent date as an unsigned 32-bit number, so a date before 1970 wraps past 2100',
};

export interface DisagreementClass {
  name: string;
  dovecotWrong: string | null;
  queries: string[];
}

/**
 * Puts every disagreement in a class: the first differing message's feature that explains it (a
 * Dovecot-wrong class from DOVECOT_WRONG), else "<key> <who matched>" (unexplained).
 */
export function classify(comparison: Comparison, bySha: Map<string, Buffer>, glibc: Set<string> | null): DisagreementClass[] {
  const classes = new Map<string, DisagreementClass>();
  for (const d of comparison.disagreements) {
    const keys = new Set(d.query.args.filter((x): x is { atom: string } => 'atom' in x).map((x) => x.atom.toUpperCase()));
    const text = keys.has('BODY') || keys.has('TEXT');
    const address = ['FROM', 'TO', 'CC', 'BCC'].some((k) => keys.has(k));
    const sent = ['SENTON', 'SENTBEFORE', 'SENTSINCE'].some((k) => keys.has(k));
    const side = d.refused ? 'refused' : d.posternOnly.length > 0 ? 'only Postern matched' : 'only Dovecot matched';
    let name = `${d.query.kind}: ${side}`;
    for (const id of [...d.posternOnly, ...d.dovecotOnly]) {
      const m = bySha.get(id);
      if (!m) continue;
      const all = latin(m);
      const head = topHeader(m);
      const charsets = [...all.matchAll(/charset\s*=\s*"?([A-Za-z0-9_.:-]+)/gi)].map((x) => (x[1] as string).toUpperCase());
      if (text && /^content-type:[ \t]*[^\s;/]+[ \t]*(;|\r?\n)/im.test(all)) name = 'invalid Content-Type';
      else if (text && glibc !== null && charsets.some((c) => !glibc.has(c) && !/^(DEFAULT|DEFAULT_CHARSET|X-UNKNOWN|3D)/.test(c) && isKnownCharset(c))) name = 'charset glibc lacks';
      else if (address && /^(from|to|cc|bcc):(.*\r?\n[ \t])*.*>[ \t]*[^\s,;(]/im.test(head)) name = 'junk after an address';
      else if (sent && /^date:.*\b(1[0-8]\d\d|19[0-6]\d)\b/im.test(head)) name = 'date before 1970';
      else continue;
      break;
    }
    const c = classes.get(name) ?? { name, dovecotWrong: DOVECOT_WRONG[name] ?? null, queries: [] };
    c.queries.push(describeQuery(d.query));
    classes.set(name, c);
  }
  return [...classes.values()].sort((x, y) => y.queries.length - x.queries.length);
}

/** Whether Postern can decode a charset name at all (iconv-lite or a WHATWG decoder). */
function isKnownCharset(name: string): boolean {
  try {
    new TextDecoder(name);
    return true;
  } catch {
    return iconv.encodingExists(name);
  }
}
