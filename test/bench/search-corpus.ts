// The deterministic mail generator of `npm run bench:search` (test/bench/search.ts): message i of a
// corpus depends only on the seed, the corpus shape and i (each message has its own seeded PRNG), so
// the same bytes can be written to mbox files for Postern and regenerated later as Maildir files for
// Dovecot without keeping them in memory.
//
// What the messages look like (chosen to resemble a company's archive, not to be easy to search):
//  - Owners: USERS users at northwind.example (first.last@…); one of them (the "big user") has exactly
//    BIG messages in Inbox plus BIG/10 in Sent; the rest of the N messages are spread over the others
//    with log-normal weights (some users get much more mail than others), all in Inbox.
//  - Correspondents: the 100 colleagues and 3,000 outside people at 400 domains, picked with a Zipf
//    law (a few frequent partners, a long tail); 8 % of display names carry accents (RFC 2047
//    encoded words). 10 % of received mail comes from mailing lists (List-Id).
//  - Headers: 2–4 Received lines, Return-Path, From, To (1–3), Cc (30 %: 1–4), Subject (words of a
//    subject vocabulary with a Zipf law, 6 % recurring subjects such as "Quarterly budget review",
//    Re:/Fwd:/AW: prefixes), Date spread over 2016–2025 (increasing with i, jittered), Message-ID,
//    In-Reply-To/References on replies, X-Mailer or User-Agent, MIME-Version.
//  - Body: greeting, paragraphs of sentences drawn with a Zipf law over ~600 English words and 20,000
//    made-up words (the long tail), a signature, and on replies the quoted previous text. Length
//    log-normal (median ~300 words). 85 % us-ascii 7bit, 10 % UTF-8 quoted-printable with accented
//    words, 5 % UTF-8 base64. 55 % are multipart/alternative with an HTML version (quoted-printable).
//  - Attachments (20 % of messages, 1–2 each): 60 % small PDFs (a minimal valid PDF with a text
//    object: 2–40 KB), 40 % binary (JPEG/PNG/ZIP/octet-stream, 2–80 KB of seeded random bytes); 5 % of
//    messages with attachments get a large one (300 KB – 3 MB). Sizes land mostly at 2–30 KB per
//    message, with a tail up to a few MB.
//  - Planted needles with known counts (never produced by the vocabularies): "zephyr" in 1 % of
//    subjects, "quokka" in 1 % of plain-text bodies (and their HTML twins), "xylophonic" in 1 of 5,000
//    bodies (the rare word), "pdfmarkerword" only inside 1 of 10 PDFs' text.
import { createCipheriv } from 'node:crypto';
import { prng } from '../helpers/prng.ts';

export const DOMAIN = 'northwind.example';
export const NEEDLES = { subject: 'zephyr', body: 'quokka', rare: 'xylophonic', pdf: 'pdfmarkerword' } as const;

const FIRST = ('james mary robert patricia john jennifer michael linda david elizabeth william barbara richard susan joseph jessica thomas sarah ' +
  'charles karen christopher lisa daniel nancy matthew betty anthony margaret mark sandra donald ashley steven kimberly paul emily andrew donna ' +
  'joshua michelle kenneth carol kevin amanda brian dorothy george melissa timothy deborah ronald stephanie edward rebecca jason sharon jeffrey ' +
  'laura ryan cynthia jacob kathleen gary amy nicholas angela eric shirley jonathan anna stephen brenda larry pamela justin emma scott nicole ' +
  'brandon helen benjamin samantha samuel katherine gregory christine alexander debra frank rachel patrick carolyn raymond janet jack catherine ' +
  'dennis maria jerry heather tyler diane aaron ruth jose julie adam olivia nathan joyce henry virginia douglas victoria zachary kelly peter lauren ' +
  'kyle christina ethan joan walter evelyn noah judith jeremy megan christian andrea keith cheryl roger hannah terry jacqueline gerald martha ' +
  'harold gloria sean teresa austin ann carl sara arthur madison lawrence frances dylan kathryn jesse janice jordan jean bryan abigail billy alice ' +
  'joe judy bruce sophia gabriel grace logan denise albert amber willie doris alan marilyn juan danielle wayne beverly elijah isabella randy theresa ' +
  'roy diana vincent natalie ralph brittany eugene charlotte russell marie bobby kayla mason alexis philip lori louis ngozi haruto mei lars ingrid ' +
  'pierre amelie giulia matteo sofia lukas priya arjun yusuf fatima chen wei olga dmitri').split(' ');
const LAST = ('smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez gonzalez wilson anderson thomas taylor ' +
  'moore jackson martin lee perez thompson white harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen ' +
  'hill flores green adams nelson baker hall rivera campbell mitchell carter roberts gomez phillips evans turner diaz parker cruz edwards collins ' +
  'reyes stewart morris morales murphy cook rogers gutierrez ortiz morgan cooper peterson bailey reed kelly howard ramos kim cox ward richardson ' +
  'watson brooks chavez wood james bennett gray mendoza ruiz hughes price alvarez castillo sanders patel myers long ross foster jimenez powell ' +
  'jenkins perry russell sullivan bell coleman butler henderson barnes gonzales fisher vasquez simmons romero jordan patterson alexander hamilton ' +
  'graham reynolds griffin wallace west cole hayes bryant herrera gibson ellis tran medina aguilar stevens murray ford castro marshall owens harrison ' +
  'fernandez mcdonald woods washington kennedy wells vargas henry chen freeman webb tucker guzman burns crawford olson simpson porter hunter gordon ' +
  'mendez silva shaw snyder mason dixon munoz hunt hicks holmes palmer wagner black robertson boyd rose stone salazar fox warren mills meyer rice ' +
  'schmidt garza daniels ferguson nichols stephens soto weaver ryan gardner payne grant dunn kelley spencer hawkins arnold pierce hansen peters ' +
  'okonkwo tanaka lindqvist dubois rossi bianchi muller kowalski novak haddad nakamura johansson').split(' ');
const ACCENTED: Array<[string, string]> = [['Jürgen', 'Müller'], ['José', 'Peña'], ['Zoë', 'Lefèvre'], ['Søren', 'Kierkegård'], ['Agnès', 'Dupré'], ['Łukasz', 'Wójcik'], ['Ines', 'Gonçalves'], ['Björn', 'Ångström'], ['Renée', 'Bélanger'], ['Çağrı', 'Öztürk']];
const TLDS = ['com', 'net', 'org', 'de', 'fr', 'co.uk', 'io', 'nl', 'it', 'es'];
const COMPANY_PARTS = ('acme globex initech umbrella stark wayne wonka tyrell cyberdyne soylent hooli vandelay pied piper dunder mifflin ' +
  'prestige oscorp massive dynamic aperture blue sun gringotts monarch nakatomi virtucon weyland yutani kramerica bluth oceanic ' +
  'rekall sirius zorg spectre cobra duff lacuna gekko cheers krusty monsters paper street northbridge harbor summit granite ' +
  'redwood silverline brightpath clearwater ironbridge keystone lakeshore meridian pinnacle riverstone stonegate').split(' ');

const STOP = ('the to and of a in for is on that we you it with be as this will are at have please can our by from not or if your all an would ' +
  'let me know i us they has was but so do there any about more them also just which should could been their when what some one out up').split(' ');
const BUSINESS = ('meeting project report budget invoice contract schedule review update customer quarter market supplier payment shipment ' +
  'travel office policy request approval training release server network backup storage license renewal planning forecast agenda summary ' +
  'proposal feedback team deadline week monday friday call client order price team sales revenue cost delivery product service account ' +
  'document draft version change issue status support manager director board presentation analysis data results numbers target plan ' +
  'strategy meeting next time attached find thanks regards note discuss follow share confirm available tomorrow today office review ' +
  'questions details information process system access login password upgrade migration rollout pilot vendor partner legal compliance audit ' +
  'finance accounting payroll expense reimbursement receipt purchase procurement inventory warehouse logistics freight carrier customs ' +
  'quote estimate discount terms conditions agreement signature renewal termination notice invoice overdue reminder balance credit debit ' +
  'transfer bank wire statement reconciliation ledger forecast variance headcount hiring candidate interview offer onboarding benefits ' +
  'holiday vacation leave sick conference workshop webinar seminar offsite dinner lunch coffee flight hotel booking itinerary visa ' +
  'marketing campaign launch brand website newsletter social media press release event sponsor booth banner brochure design mockup ' +
  'prototype specification requirements architecture database deployment incident outage maintenance window ticket escalation priority ' +
  'customer satisfaction survey complaint refund return warranty repair replacement quality inspection certificate standard regulation ' +
  'security firewall certificate encryption vulnerability patch laptop printer phone desk building parking facilities cleaning catering ' +
  'shareholder dividend earnings guidance investor analyst valuation acquisition merger integration synergy restructuring efficiency').split(' ');
const SUBJECT_WORDS = ('update meeting report budget invoice contract review schedule request approval project proposal agenda minutes ' +
  'quarterly annual monthly weekly follow-up question urgent reminder notes draft final revised signed order shipment delivery payment ' +
  'renewal offer quote training workshop conference travel plans team lunch call today tomorrow deadline status results numbers forecast ' +
  'audit compliance policy access account login issue incident outage maintenance release launch campaign newsletter candidate interview ' +
  'expense claim receipt vendor supplier customer feedback survey complaint refund').split(' ');
const RECURRING = ['Quarterly budget review', 'Weekly status report', 'Invoice overdue reminder', 'Team lunch on Friday', 'Board meeting agenda',
  'Your expense claim was approved', 'Contract renewal for next year', 'Server maintenance window tonight', 'Minutes of the project meeting',
  'Updated travel itinerary', 'Signed purchase order attached', 'New hire onboarding checklist', 'Annual compliance training due',
  'Customer satisfaction survey results', 'Q3 sales forecast', 'Office closed for the holiday'];
const ACCENT_WORDS = ['café', 'résumé', 'naïve', 'Grüße', 'Straße', 'São Paulo', 'Zürich', 'Málaga', 'crème brûlée', 'smörgåsbord', 'façade', 'déjà vu', 'Köln', 'Łódź'];
const MAILERS = ['X-Mailer: Microsoft Outlook 16.0', 'X-Mailer: Apple Mail (2.3654.120.0.1.13)', 'User-Agent: Mozilla Thunderbird 115.6.0',
  'X-Mailer: iPhone Mail (21B101)', 'User-Agent: Roundcube Webmail/1.6.5', 'X-Mailer: Microsoft Outlook 14.0', ''];
const LIST_NAMES = ['announce', 'engineering', 'sales-team', 'all-staff', 'it-notices', 'finance-updates', 'security-alerts', 'hr-news'];

/** Zipf sampler over `size` ranks with exponent s: a 2^20-slot lookup table, O(1) per draw. */
function zipfTable(size: number, s: number): Uint32Array {
  const slots = 1 << 20;
  const w = new Float64Array(size);
  let total = 0;
  for (let r = 0; r < size; r++) total += (w[r] = 1 / Math.pow(r + 1, s));
  const table = new Uint32Array(slots);
  let acc = 0;
  let r = 0;
  for (let k = 0; k < slots; k++) {
    const target = ((k + 0.5) / slots) * total;
    while (r < size - 1 && acc + w[r]! < target) acc += w[r++]!;
    table[k] = r;
  }
  return table;
}

function pseudoWords(count: number, r: () => number, banned: string[]): string[] {
  const on = ['b', 'br', 'c', 'cl', 'd', 'dr', 'f', 'fl', 'g', 'gr', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'pl', 'r', 's', 'st', 't', 'tr', 'v', 'w', 'z', 'sh', 'ch', 'th'];
  const nu = ['a', 'e', 'i', 'o', 'u', 'a', 'e', 'i', 'o', 'ea', 'ou', 'y'];
  const co = ['', '', '', 'n', 'r', 'l', 's', 'm', 'nt', 'st', 'x', 'nd'];
  const seen = new Set<string>([...STOP, ...BUSINESS]);
  const out: string[] = [];
  while (out.length < count) {
    const syl = r() < 0.7 ? 2 : 3;
    let w = '';
    for (let i = 0; i < syl; i++) w += on[Math.floor(r() * on.length)]! + nu[Math.floor(r() * nu.length)]! + co[Math.floor(r() * co.length)]!;
    if (w.length < 4 || seen.has(w) || banned.some((b) => w.includes(b) || b.includes(w))) continue;
    seen.add(w);
    out.push(w);
  }
  return out;
}

export interface Person {
  name: string;
  address: string;
  /** Display name needs an RFC 2047 encoded word. */
  accented: boolean;
}

export interface CorpusShape {
  n: number;
  big: number;
  users: number;
  seed: number;
}

export interface Owner {
  user: string;
  folder: 'Inbox' | 'Sent';
}

export interface Generated {
  bytes: Buffer;
  owner: Owner;
  /** Searchable text: header bytes + decoded plain-text body + PDF text (what an index has to hold). */
  textBytes: number;
  date: Date;
  hasAttachment: boolean;
  hasPdf: boolean;
  /** Planted needles in this message. */
  planted: { subject: boolean; body: boolean; rare: boolean; pdf: boolean };
  /** Lower-cased From header as written (for expected SEARCH FROM counts). */
  from: string;
  /** Lower-cased decoded Subject. */
  subject: string;
}

const NEEDLE_LIST = Object.values(NEEDLES);

export class Corpus {
  readonly users: Person[];
  readonly userNames: string[];
  readonly outside: Person[];
  readonly bigUser: string;
  readonly sentOfBig: number;
  private readonly owners: Uint8Array;
  private readonly words: string[];
  private readonly wordTable: Uint32Array;
  private readonly subjectTable: Uint32Array;
  private readonly personTable: Uint32Array;
  private readonly lists: string[];

  constructor(readonly shape: CorpusShape) {
    const { n, big, users } = shape;
    if (users < 2 || users > 250) throw new Error('users must be 2..250');
    const sentOfBig = Math.floor(big / 10);
    if (big + sentOfBig > n) throw new Error(`the big user's ${big} + ${sentOfBig} messages do not fit in ${n}`);
    this.sentOfBig = sentOfBig;
    const r = prng(shape.seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const names = new Set<string>();
    this.users = [];
    while (this.users.length < users) {
      const f = pick(FIRST);
      const l = pick(LAST);
      const local = `${f}.${l}`;
      if (names.has(local)) continue;
      names.add(local);
      this.users.push({ name: `${cap(f)} ${cap(l)}`, address: `${local}@${DOMAIN}`, accented: false });
    }
    this.userNames = this.users.map((u) => u.address.split('@')[0]!);
    this.bigUser = this.userNames[0]!;
    const domains = Array.from({ length: 400 }, (_, i) => `${pick(COMPANY_PARTS)}${i % 3 === 0 ? '-' + pick(COMPANY_PARTS) : ''}${i}.${pick(TLDS)}`);
    this.outside = [];
    for (let i = 0; i < 3000; i++) {
      const accented = r() < 0.08;
      const [f, l] = accented ? pick(ACCENTED) : [cap(pick(FIRST)), cap(pick(LAST))];
      const local = r() < 0.7 ? `${ascii(f).toLowerCase()}.${ascii(l).toLowerCase()}` : `${ascii(f)[0]!.toLowerCase()}${ascii(l).toLowerCase()}${i % 7 === 0 ? i % 100 : ''}`;
      this.outside.push({ name: `${f} ${l}`, address: `${local}@${domains[Math.floor(Math.pow(r(), 2) * domains.length)]}`, accented });
    }
    this.lists = LIST_NAMES.map((l, i) => `${l}@${domains[i * 7]}`);
    this.words = [...STOP, ...BUSINESS, ...pseudoWords(20_000, r, NEEDLE_LIST)];
    this.wordTable = zipfTable(this.words.length, 1.15);
    this.subjectTable = zipfTable(SUBJECT_WORDS.length, 0.9);
    this.personTable = zipfTable(this.outside.length, 0.8);

    // Owner of every message: code 0 = big user's Inbox, 1 = big user's Sent, 2+u = user u's Inbox;
    // shuffled, so every archive spans the whole date range.
    this.owners = new Uint8Array(n);
    const weights = Array.from({ length: users - 1 }, () => Math.exp(r() * 2.5));
    const wsum = weights.reduce((a, b) => a + b, 0);
    let k = 0;
    for (; k < big; k++) this.owners[k] = 0;
    for (; k < big + sentOfBig; k++) this.owners[k] = 1;
    const rest = n - big - sentOfBig;
    let acc = 0;
    for (let u = 0; u < users - 1; u++) {
      acc += weights[u]!;
      const end = big + sentOfBig + (u === users - 2 ? rest : Math.round((acc / wsum) * rest));
      for (; k < end; k++) this.owners[k] = 2 + u + 1;
    }
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      const t = this.owners[i]!;
      this.owners[i] = this.owners[j]!;
      this.owners[j] = t;
    }
  }

  ownerOf(i: number): Owner {
    const code = this.owners[i]!;
    if (code === 0) return { user: this.bigUser, folder: 'Inbox' };
    if (code === 1) return { user: this.bigUser, folder: 'Sent' };
    return { user: this.userNames[code - 2]!, folder: 'Inbox' };
  }

  /** Counts per (user, folder), in user order. */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (let i = 0; i < this.shape.n; i++) {
      const o = this.ownerOf(i);
      const key = `${o.user}/${o.folder}`;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
    return out;
  }

  person(address: string): Person | undefined {
    return this.users.find((u) => u.address === address) ?? this.outside.find((p) => p.address === address);
  }

  /** The outside correspondent at Zipf rank `rank` (0 = the most frequent). */
  frequentOutside(rank: number): Person {
    return this.outside[rank]!;
  }

  message(i: number): Generated {
    return generateMessage(this, i);
  }

  // Internals shared with generateMessage.
  word(r: () => number): string {
    return this.words[this.wordTable[Math.floor(r() * 1048576)]!]!;
  }
  subjectWord(r: () => number): string {
    return SUBJECT_WORDS[this.subjectTable[Math.floor(r() * 1048576)]!]!;
  }
  outsider(r: () => number): Person {
    return this.outside[this.personTable[Math.floor(r() * 1048576)]!]!;
  }
  colleague(r: () => number, not: string): Person {
    for (;;) {
      const u = this.users[Math.floor(r() * this.users.length)]!;
      if (u.address !== not) return u;
    }
  }
  list(r: () => number): string {
    return this.lists[Math.floor(r() * this.lists.length)]!;
  }
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function ascii(s: string): string {
  return s.normalize('NFD').replace(/[^\x20-\x7e]/g, '').replace(/ł/gi, 'l') || 'x';
}

function hash32(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 13;
  h = Math.imul(h, 0x27d4eb2f);
  return (h ^ (h >>> 16)) >>> 0;
}

/** RFC 2047 Q encoding of a display name when it is not ASCII. */
function encodeName(p: Person): string {
  if (!p.accented) return `"${p.name}"`;
  const q = [...Buffer.from(p.name, 'utf8')].map((b) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ? String.fromCharCode(b) : b === 0x20 ? '_' : `=${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  return `=?UTF-8?Q?${q}?=`;
}

function mailbox(p: Person): string {
  return `${encodeName(p)} <${p.address}>`;
}

/** Quoted-printable (RFC 2045) of UTF-8 text with LF line ends, soft breaks at 76. */
function qp(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    let cur = '';
    const bytes = Buffer.from(line, 'utf8');
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      const last = i === bytes.length - 1;
      const enc = b === 0x3d || b > 0x7e || (b < 0x20 && b !== 0x09) || (last && (b === 0x20 || b === 0x09)) ? `=${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
      if (cur.length + enc.length > 75) {
        out.push(cur + '=');
        cur = '';
      }
      cur += enc;
    }
    out.push(cur);
  }
  return out.join('\n');
}

function base64Lines(b: Buffer): string {
  return b.toString('base64').replace(/.{76}(?=.)/g, '$&\n');
}

/** Deterministic pseudo-random bytes (AES-CTR keystream keyed from the message's PRNG): fast for megabytes. */
function randomBytes(r: () => number, size: number): Buffer {
  const key = Buffer.alloc(16);
  const iv = Buffer.alloc(16);
  for (let i = 0; i < 16; i += 4) {
    key.writeUInt32LE(Math.floor(r() * 4294967296), i);
    iv.writeUInt32LE(Math.floor(r() * 4294967296), i);
  }
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(size));
}

/** A minimal valid PDF 1.4: Helvetica text, 60 lines per page (as many pages as needed), a correct xref table. */
export function minimalPdf(lines: string[], title: string): Buffer {
  const esc = (s: string): string => s.replace(/[\\()]/g, (c) => `\\${c}`).replace(/[^\x20-\x7e]/g, '?');
  const perPage = 60;
  const pages: string[][] = [];
  for (let i = 0; i < Math.max(1, lines.length); i += perPage) pages.push(lines.slice(i, i + perPage));
  // 1 catalog, 2 page tree, 3 font, 4 info, then per page: the page and its content stream.
  const objects: string[] = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${pages.map((_, k) => `${5 + 2 * k} 0 R`).join(' ')}] /Count ${pages.length} >>`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
    `<< /Title (${esc(title)}) /Producer (postern bench:search) >>`,
  ];
  for (const [k, page] of pages.entries()) {
    const content = `BT\n/F1 10 Tf\n12 TL\n50 760 Td\n${page.map((l) => `(${esc(l)}) Tj T*`).join('\n')}\nET\n`;
    objects.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${6 + 2 * k} 0 R /Resources << /Font << /F1 3 0 R >> >> >>`);
    objects.push(`<< /Length ${Buffer.byteLength(content, 'latin1')} >>\nstream\n${content}endstream`);
  }
  let body = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  objects.forEach((o, k) => {
    offsets.push(Buffer.byteLength(body, 'latin1'));
    body += `${k + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = Buffer.byteLength(body, 'latin1');
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R /Info 4 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

function wrap(text: string, width = 72): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line.length + w.length + 1 > width && line !== '') {
      out.push(line);
      line = w;
    } else line = line === '' ? w : `${line} ${w}`;
  }
  if (line !== '') out.push(line);
  return out;
}

function logNormal(r: () => number, median: number, sigma: number): number {
  const u = Math.max(1e-12, r());
  const v = r();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return median * Math.exp(sigma * z);
}

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const START = Date.UTC(2016, 0, 1);
const SPAN = Date.UTC(2026, 0, 1) - START;

/** RFC 5322 date with a zone offset. */
function rfcDate(d: Date, offsetMin: number): string {
  const local = new Date(d.getTime() + offsetMin * 60_000);
  const p2 = (x: number): string => String(x).padStart(2, '0');
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return `${DAY_NAMES[local.getUTCDay()]}, ${local.getUTCDate()} ${MONTHS[local.getUTCMonth()]} ${local.getUTCFullYear()} ${p2(local.getUTCHours())}:${p2(local.getUTCMinutes())}:${p2(local.getUTCSeconds())} ${sign}${p2(Math.floor(a / 60))}${p2(a % 60)}`;
}

/** The mbox From_ line date (asctime form, UTC). */
export function asctime(d: Date): string {
  const p2 = (x: number): string => String(x).padStart(2, '0');
  return `${DAY_NAMES[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

function generateMessage(c: Corpus, i: number): Generated {
  const r = prng(hash32(c.shape.seed, i));
  const owner = c.ownerOf(i);
  const ownerPerson = c.users[c.userNames.indexOf(owner.user)]!;
  const chance = (p: number): boolean => r() < p;
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const date = new Date(START + Math.floor(((i + r()) / c.shape.n) * SPAN));
  const offset = [0, 60, 120, -300, -240, -420, 330, 540][int(0, 7)]!;

  // Participants.
  let from: Person;
  const to: Person[] = [];
  const cc: Person[] = [];
  let list: string | null = null;
  if (owner.folder === 'Sent') {
    from = ownerPerson;
    for (let k = int(1, 3); k > 0; k--) to.push(chance(0.6) ? c.outsider(r) : c.colleague(r, ownerPerson.address));
  } else {
    from = chance(0.6) ? c.outsider(r) : c.colleague(r, ownerPerson.address);
    if (chance(0.1)) list = c.list(r);
    to.push(ownerPerson);
    for (let k = int(0, 2); k > 0; k--) to.push(chance(0.5) ? c.outsider(r) : c.colleague(r, ownerPerson.address));
    if (r() < 0.35 && to.length > 1) to.reverse();
  }
  if (chance(0.3)) for (let k = int(1, 4); k > 0; k--) cc.push(chance(0.5) ? c.outsider(r) : c.colleague(r, from.address));

  // Subject.
  const planted = { subject: chance(0.01), body: chance(0.01), rare: chance(0.0002), pdf: false };
  let subject: string;
  if (chance(0.06)) subject = RECURRING[int(0, RECURRING.length - 1)]!;
  else {
    const words = Array.from({ length: int(2, 8) }, () => c.subjectWord(r));
    subject = cap(words.join(' '));
  }
  if (planted.subject) {
    const w = subject.split(' ');
    w.splice(int(0, w.length), 0, NEEDLES.subject);
    subject = w.join(' ');
  }
  const reply = chance(0.35);
  const fwd = !reply && chance(0.08);
  if (reply) subject = `${chance(0.8) ? 'Re' : chance(0.5) ? 'RE' : 'AW'}: ${subject}`;
  if (fwd) subject = `${chance(0.7) ? 'Fwd' : 'FW'}: ${subject}`;
  const utf8 = chance(0.15);
  const accentedSubject = utf8 && chance(0.3);
  if (accentedSubject) subject += ` ${ACCENT_WORDS[int(0, ACCENT_WORDS.length - 1)]}`;

  // Body text.
  const sentence = (): string => {
    const n = int(5, 22);
    const w: string[] = [];
    for (let k = 0; k < n; k++) w.push(c.word(r));
    if (utf8 && chance(0.15)) w.splice(int(0, w.length), 0, ACCENT_WORDS[int(0, ACCENT_WORDS.length - 1)]!);
    return cap(w.join(' ')) + (chance(0.1) ? '?' : '.');
  };
  const targetWords = Math.min(6000, Math.max(15, Math.round(logNormal(r, 260, 0.9))));
  const paragraphs: string[] = [];
  let words = 0;
  while (words < targetWords) {
    const p: string[] = [];
    for (let k = int(1, 6); k > 0; k--) {
      const s = sentence();
      words += s.split(' ').length;
      p.push(s);
    }
    paragraphs.push(p.join(' '));
  }
  if (planted.body) {
    const k = int(0, paragraphs.length - 1);
    paragraphs[k] = `${paragraphs[k]} The ${NEEDLES.body} figures are in.`;
  }
  if (planted.rare) paragraphs.push(`Note the ${NEEDLES.rare} case.`);
  const firstName = (p: Person): string => p.name.split(' ')[0]!;
  const greeting = `${['Hi', 'Hello', 'Dear', 'Good morning'][int(0, 3)]} ${firstName(to[0]!)},`;
  const signature = [`${['Best regards', 'Thanks', 'Kind regards', 'Cheers', 'Best'][int(0, 4)]},`, from.name,
    ...(from.address.endsWith(DOMAIN) ? [`${['Senior Analyst', 'Account Manager', 'Head of Operations', 'Engineer', 'Controller', 'Paralegal'][int(0, 5)]} | Northwind Traders`, `+1 555 ${int(100, 999)} ${int(1000, 9999)}`] : [])];
  const plainLines: string[] = [greeting, ''];
  for (const p of paragraphs) plainLines.push(...wrap(p), '');
  plainLines.push('--', ...signature);
  if (reply || fwd) {
    const prev = to[0]!;
    plainLines.push('', fwd ? '---------- Forwarded message ---------' : `On ${rfcDate(new Date(date.getTime() - int(600, 400_000) * 1000), offset)}, ${prev.name} <${prev.address}> wrote:`);
    const quoted: string[] = [];
    for (let k = int(1, 4); k > 0; k--) quoted.push(...wrap(Array.from({ length: int(1, 4) }, sentence).join(' ')), '');
    plainLines.push(...quoted.map((l) => (fwd ? l : l === '' ? '>' : `> ${l}`)));
  }
  // A sentence may start with "From": mboxEntry() quotes such lines (mboxrd), and the import takes the quote off.
  const plain = plainLines.join('\n') + '\n';

  const html = chance(0.55) ? htmlOf(paragraphs, greeting, signature, r) : null;

  // Attachments.
  const attachments: Array<{ type: string; name: string; data: Buffer }> = [];
  let hasPdf = false;
  let pdfText = 0;
  if (chance(0.2)) {
    for (let k = chance(0.8) ? 1 : 2; k > 0; k--) {
      if (chance(0.6)) {
        const lines: string[] = [];
        const target = Math.round(Math.min(40_000, Math.max(2_000, logNormal(r, 7_000, 0.8))));
        let len = 0;
        while (len < target) {
          const l = sentence().slice(0, 90);
          lines.push(l);
          len += l.length + 12;
        }
        if (chance(0.1)) {
          planted.pdf = true;
          lines.splice(int(0, lines.length), 0, `Reference ${NEEDLES.pdf} ${int(1000, 9999)}`);
        }
        pdfText += lines.join('\n').length;
        const name = [`report-${date.getUTCFullYear()}-Q${Math.floor(date.getUTCMonth() / 3) + 1}.pdf`, `invoice_${int(10000, 99999)}.pdf`, `scan_${String(int(1, 9999)).padStart(4, '0')}.pdf`, 'contract-signed.pdf', 'minutes.pdf'][int(0, 4)]!;
        attachments.push({ type: 'application/pdf', name, data: minimalPdf(lines, subject) });
        hasPdf = true;
      } else {
        const kind = int(0, 3);
        const size = Math.round(Math.min(80_000, Math.max(2_000, logNormal(r, 12_000, 0.9))));
        const data = randomBytes(r, size);
        if (kind === 0) data.set([0xff, 0xd8, 0xff, 0xe0], 0);
        if (kind === 1) data.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 0);
        if (kind === 2) data.set([0x50, 0x4b, 0x03, 0x04], 0);
        attachments.push({
          type: ['image/jpeg', 'image/png', 'application/zip', 'application/octet-stream'][kind]!,
          name: [`IMG_${int(1000, 9999)}.jpg`, `image00${int(1, 9)}.png`, `archive-${int(1, 99)}.zip`, `data-${int(1, 999)}.bin`][kind]!,
          data,
        });
      }
    }
    if (chance(0.025)) attachments.push({ type: 'application/octet-stream', name: `export-${int(1, 999)}.dat`, data: randomBytes(r, Math.round(Math.min(3_000_000, Math.max(300_000, logNormal(r, 800_000, 0.6))))) });
  }

  // Headers.
  const msgId = `<${date.getTime().toString(36)}.${hash32(i, 7).toString(36)}${hash32(i, 11).toString(36)}@${from.address.split('@')[1]}>`;
  const h: string[] = [];
  h.push(`Return-Path: <${list ? `bounce-${list.split('@')[0]}@${list.split('@')[1]}` : from.address}>`);
  const hops = int(2, 4);
  for (let k = 0; k < hops; k++) {
    const t = new Date(date.getTime() + (hops - k) * int(1, 40) * 1000);
    h.push(`Received: from mail${int(1, 40)}.${k === hops - 1 ? from.address.split('@')[1] : 'relay.' + DOMAIN} (mail${int(1, 40)}.example [198.51.100.${int(1, 254)}])\n\tby mx${int(1, 4)}.${DOMAIN} with ESMTPS id ${hash32(i, k).toString(16).toUpperCase()}\n\tfor <${to[0]!.address}>; ${rfcDate(t, 0)}`);
  }
  h.push(`From: ${mailbox(list && chance(0.5) ? { ...from, name: `${from.name} via ${list.split('@')[0]}` } : from)}`);
  h.push(`To: ${to.map(mailbox).join(',\n\t')}`);
  if (cc.length) h.push(`Cc: ${cc.map(mailbox).join(',\n\t')}`);
  h.push(`Subject: ${accentedSubject ? encodeSubject(subject) : subject}`);
  h.push(`Date: ${rfcDate(date, offset)}`);
  h.push(`Message-ID: ${msgId}`);
  if (reply) {
    const parent = `<${(date.getTime() - 86_400_000).toString(36)}.${hash32(i, 13).toString(36)}@${to[0]!.address.split('@')[1]}>`;
    h.push(`In-Reply-To: ${parent}`, `References: ${parent}`);
  }
  if (list) h.push(`List-Id: <${list.replace('@', '.')}>`, `List-Unsubscribe: <mailto:${list.replace('@', '-unsubscribe@')}>`, 'Precedence: list');
  const mailer = MAILERS[int(0, MAILERS.length - 1)]!;
  if (mailer) h.push(mailer);
  h.push('MIME-Version: 1.0');

  // Body structure.
  const cte = !utf8 ? '7bit' : chance(0.67) ? 'quoted-printable' : 'base64';
  const charset = utf8 ? 'utf-8' : 'us-ascii';
  const encodeText = (t: string, enc: string): string => (enc === 'quoted-printable' ? qp(t) : enc === 'base64' ? base64Lines(Buffer.from(t, 'utf8')) : t);
  const plainPart = `Content-Type: text/plain; charset=${charset}${utf8 ? '; format=flowed' : ''}\nContent-Transfer-Encoding: ${cte}\n\n${encodeText(plain, cte)}\n`;
  const htmlPart = html ? `Content-Type: text/html; charset=${charset}\nContent-Transfer-Encoding: quoted-printable\n\n${qp(html)}\n` : '';
  const boundary = (k: string): string => `----=_Part_${k}_${hash32(i, k.length).toString(16)}.${date.getTime()}`;
  let body: string;
  let top: string;
  const alt = (): { head: string; body: string } => {
    const b = boundary('alt');
    return { head: `Content-Type: multipart/alternative;\n\tboundary="${b}"`, body: `--${b}\n${plainPart}\n--${b}\n${htmlPart}\n--${b}--\n` };
  };
  if (attachments.length === 0) {
    if (html) {
      const a = alt();
      top = a.head;
      body = `This is a multi-part message in MIME format.\n\n${a.body}`;
    } else {
      top = `Content-Type: text/plain; charset=${charset}${utf8 ? '; format=flowed' : ''}\nContent-Transfer-Encoding: ${cte}`;
      body = `${encodeText(plain, cte)}`;
    }
  } else {
    const b = boundary('mixed');
    top = `Content-Type: multipart/mixed;\n\tboundary="${b}"`;
    const first = html ? (() => { const a = alt(); return `${a.head}\n\n${a.body}`; })() : plainPart;
    const parts = [first, ...attachments.map((a) => `Content-Type: ${a.type}; name="${a.name}"\nContent-Disposition: attachment; filename="${a.name}"\nContent-Transfer-Encoding: base64\n\n${base64Lines(a.data)}\n`)];
    body = `This is a multi-part message in MIME format.\n\n${parts.map((p) => `--${b}\n${p}`).join('\n')}\n--${b}--\n`;
  }
  h.push(top);
  const header = h.join('\n') + '\n\n';
  const bytes = Buffer.from(header + body, 'utf8');
  const fromHeader = h.find((l) => l.startsWith('From: '))!.toLowerCase();
  return {
    bytes, owner, date, hasAttachment: attachments.length > 0, hasPdf, planted, from: fromHeader, subject: subject.toLowerCase(),
    textBytes: Buffer.byteLength(header) + Buffer.byteLength(plain) + pdfText,
  };
}

function encodeSubject(s: string): string {
  // Outlook-style: one base64 encoded word per ~45 bytes.
  const b = Buffer.from(s, 'utf8');
  const out: string[] = [];
  let start = 0;
  while (start < b.length) {
    let end = Math.min(b.length, start + 45);
    while (end < b.length && (b[end]! & 0xc0) === 0x80) end--;
    out.push(`=?UTF-8?B?${b.subarray(start, end).toString('base64')}?=`);
    start = end;
  }
  return out.join('\n ');
}

function htmlOf(paragraphs: string[], greeting: string, signature: string[], r: () => number): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const para = (p: string): string => {
    const w = esc(p).split(' ');
    if (w.length > 6 && r() < 0.3) w[2] = `<b>${w[2]}</b>`;
    if (w.length > 10 && r() < 0.15) w[8] = `<a href="https://intranet.${DOMAIN}/docs/${Math.floor(r() * 10000)}">${w[8]}</a>`;
    return `<p style="margin:0 0 12px 0">${w.join(' ')}</p>`;
  };
  return [
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">',
    '<style type="text/css">body{font-family:Calibri,Arial,sans-serif;font-size:11pt;color:#1f1f1f} p{margin:0}</style></head>',
    '<body><div dir="ltr">',
    `<p>${esc(greeting)}</p>`,
    ...paragraphs.map(para),
    `<div class="signature" style="color:#666666;font-size:9pt">${signature.map(esc).join('<br>\n')}</div>`,
    '</div></body></html>',
  ].join('\n') + '\n';
}

/** One mbox entry (mboxrd: ">*From " lines quoted once more; the generator writes none, but stay safe). */
export function mboxEntry(g: Generated): Buffer[] {
  const b = g.bytes;
  const body = b.indexOf('From ') >= 0 ? Buffer.from(b.toString('utf8').replace(/^(>*From )/gm, '>$1'), 'utf8') : b;
  return [Buffer.from(`From MAILER-DAEMON ${asctime(g.date)}\n`), body, Buffer.from(b[b.length - 1] === 0x0a ? '\n' : '\n\n')];
}
