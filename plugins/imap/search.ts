// SEARCH / UID SEARCH with the RFC 3501 key set: sequence sets, UID, ALL, the flag keys (only \Seen
// exists here, per session; \Recent never), FROM/TO/CC/BCC (the address list as Dovecot writes it back),
// SUBJECT (whitespace compressed), HEADER (decoded value), BODY/TEXT (decoded text; message/search.ts
// says what each reads, as Dovecot 2.3 does), BEFORE/ON/SINCE (archive date), SENTBEFORE/SENTON/SENTSINCE
// (the day the Date header was written, read as Dovecot reads it; an unreadable or missing Date is
// 1-Jan-1970), LARGER/SMALLER (RFC822.SIZE: the size of the CRLF view, as FETCH reports it), NOT, OR,
// parenthesised groups, CHARSET UTF-8/US-ASCII. Keys are parsed into a tree first (BAD on any error),
// then evaluated per message, cheapest keys first, loading only what is needed.
import type { Session } from './session.ts';
import { ImapBad, ImapNo, astring, parseSequenceSet, isSequenceSet, type ParsedCommand, type SeqRange, type Token } from './parser.ts';
import { dayNumber, parseSearchDate } from './encode.ts';
import type { LoadedMessage } from './message-store.ts';
import { TimeSlice } from './fetch.ts';
import type { ImapCandidates, ImapTextKey } from '../../core/app/search-service.ts';
import type { HeaderMode } from './message/index.ts';

type Key =
  | { k: 'const'; v: boolean }
  | { k: 'seen'; want: boolean }
  | { k: 'seq' | 'uid'; ranges: SeqRange[] }
  | { k: 'header'; field: string; value: string; mode: HeaderMode }
  | { k: 'text'; where: 'BODY' | 'TEXT'; value: string }
  | { k: 'date'; sent: boolean; op: 'before' | 'on' | 'since'; day: number }
  | { k: 'size'; op: 'larger' | 'smaller'; n: number }
  | { k: 'not'; key: Key }
  | { k: 'or'; a: Key; b: Key }
  | { k: 'and'; keys: Key[] };

const FLAG_KEYS: Record<string, Key> = {
  ALL: { k: 'const', v: true },
  SEEN: { k: 'seen', want: true },
  UNSEEN: { k: 'seen', want: false },
  ANSWERED: { k: 'const', v: false }, UNANSWERED: { k: 'const', v: true },
  DELETED: { k: 'const', v: false }, UNDELETED: { k: 'const', v: true },
  DRAFT: { k: 'const', v: false }, UNDRAFT: { k: 'const', v: true },
  FLAGGED: { k: 'const', v: false }, UNFLAGGED: { k: 'const', v: true },
  RECENT: { k: 'const', v: false }, OLD: { k: 'const', v: true }, NEW: { k: 'const', v: false },
};
const HEADER_KEYS: Record<string, string> = { FROM: 'From', TO: 'To', CC: 'Cc', BCC: 'Bcc', SUBJECT: 'Subject' };
const DATE_KEYS: Record<string, { sent: boolean; op: 'before' | 'on' | 'since' }> = {
  BEFORE: { sent: false, op: 'before' }, ON: { sent: false, op: 'on' }, SINCE: { sent: false, op: 'since' },
  SENTBEFORE: { sent: true, op: 'before' }, SENTON: { sent: true, op: 'on' }, SENTSINCE: { sent: true, op: 'since' },
};
const MAX_KEYS = 1000;
/** Messages whose stored data a SEARCH reads concurrently. */
const SEARCH_WINDOW = 32;

class KeyParser {
  private pos = 0;
  private count = 0;
  constructor(private readonly tokens: Token[]) {}

  done(): boolean {
    return this.pos >= this.tokens.length;
  }

  private arg(what: string): string {
    return astring(this.tokens[this.pos++], what);
  }

  parse(depth = 0): Key {
    if (++this.count > MAX_KEYS || depth > 32) throw new ImapBad('Search too complex');
    const t = this.tokens[this.pos++];
    if (!t) throw new ImapBad('Missing search key');
    if (t.t === 'list') {
      if (t.v.length === 0) throw new ImapBad('Empty search group');
      const sub = new KeyParser(t.v);
      sub.count = this.count;
      const keys: Key[] = [];
      while (!sub.done()) keys.push(sub.parse(depth + 1));
      this.count = sub.count;
      return keys.length === 1 ? (keys[0] as Key) : { k: 'and', keys };
    }
    if (t.t !== 'atom') throw new ImapBad('Search key must be an atom');
    const name = t.v.toUpperCase();
    const flag = FLAG_KEYS[name];
    if (flag) return flag;
    if (HEADER_KEYS[name]) return { k: 'header', field: HEADER_KEYS[name] as string, value: this.arg(`${name} value`), mode: name === 'SUBJECT' ? 'subject' : 'address' };
    if (name === 'HEADER') {
      const field = this.arg('header field name');
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(field)) throw new ImapBad('Invalid header field name');
      return { k: 'header', field, value: this.arg('header value'), mode: 'plain' };
    }
    if (name === 'BODY' || name === 'TEXT') return { k: 'text', where: name, value: this.arg(`${name} value`) };
    if (name === 'KEYWORD') return (this.arg('keyword'), { k: 'const', v: false });
    if (name === 'UNKEYWORD') return (this.arg('keyword'), { k: 'const', v: true });
    const date = DATE_KEYS[name];
    if (date) {
      const day = parseSearchDate(this.arg('date'));
      if (day === null) throw new ImapBad(`${name} needs a date like 1-Feb-2024`);
      return { k: 'date', ...date, day };
    }
    if (name === 'LARGER' || name === 'SMALLER') {
      const n = this.arg('size');
      if (!/^\d{1,10}$/.test(n)) throw new ImapBad(`${name} needs a number`);
      return { k: 'size', op: name === 'LARGER' ? 'larger' : 'smaller', n: Number(n) };
    }
    if (name === 'NOT') return { k: 'not', key: this.parse(depth + 1) };
    if (name === 'OR') return { k: 'or', a: this.parse(depth + 1), b: this.parse(depth + 1) };
    if (name === 'UID') return { k: 'uid', ranges: parseSequenceSet(this.arg('UID set')) };
    if (isSequenceSet(t.v)) return { k: 'seq', ranges: parseSequenceSet(t.v) };
    throw new ImapBad(`Unknown search key "${t.v.slice(0, 40)}"`);
  }
}

const INDEXED_HEADERS = new Set(['FROM', 'TO', 'CC', 'BCC', 'SUBJECT']);

/** The index's form of a top-level text key, or null for keys it cannot serve. */
function indexKey(key: Key): ImapTextKey | null {
  if (key.k === 'text') return key.value === '' ? null : { key: key.where, needle: key.value };
  if (key.k !== 'header' || key.value === '') return null;
  // FROM/TO/CC/BCC/SUBJECT have columns of their own; HEADER <field> (plain values, any field) is served from the header text.
  const name = key.field.toUpperCase();
  return key.mode !== 'plain' && INDEXED_HEADERS.has(name) ? { key: name as ImapTextKey['key'], needle: key.value } : { key: 'HEADER', header: key.field, needle: key.value };
}

/**
 * Candidate sets from the full-text index (search plugin) for the top-level text keys: entries the
 * index has covered and ruled out are skipped without reading them; everything else is evaluated as
 * before, so the answer is the scan's answer. No index, or an index that cannot serve a key: no filter.
 */
async function indexPrefilters(s: Session, user: string, folder: string, keys: Key[]): Promise<ImapCandidates[]> {
  const search = s.deps.search?.() ?? null;
  if (!search) return [];
  const out: ImapCandidates[] = [];
  for (const key of keys) {
    const k = indexKey(key);
    if (!k) continue;
    try {
      const c = await search.imapCandidates(user, folder, k);
      if (c) out.push(c);
    } catch (err) {
      s.deps.log.warn('Search index lookup failed; scanning instead', { err: err instanceof Error ? err.message : String(err) });
    }
  }
  return out;
}

/** Cost class of a key: 0 = no storage read, 1 = entry, 2 = message record or header, 3 = body. */
function cost(key: Key): number {
  switch (key.k) {
    case 'const': case 'seen': case 'seq': case 'uid': return 0;
    case 'size': return 2;
    case 'date': return key.sent ? 2 : 1;
    case 'header': return 2;
    case 'text': return 3;
    case 'not': return cost(key.key);
    case 'or': return Math.max(cost(key.a), cost(key.b));
    case 'and': return Math.max(...key.keys.map(cost));
  }
}

interface Candidate {
  seq: number;
  uid: number;
  message?: LoadedMessage | null;
}

function inRanges(n: number, ranges: SeqRange[], star: number): boolean {
  return ranges.some(([a0, b0]) => {
    const a = a0 === 0 ? star : a0;
    const b = b0 === 0 ? star : b0;
    return n >= Math.min(a, b) && n <= Math.max(a, b);
  });
}

export async function searchCommand(s: Session, cmd: ParsedCommand, uid: boolean): Promise<string> {
  const sel = s.selected;
  if (!sel) throw new ImapNo('Select a mailbox first');
  let tokens = cmd.args;
  if (tokens[0]?.t === 'atom' && tokens[0].v.toUpperCase() === 'RETURN') throw new ImapBad('SEARCH RETURN (ESEARCH) is not supported');
  if (tokens[0]?.t === 'atom' && tokens[0].v.toUpperCase() === 'CHARSET') {
    const charset = astring(tokens[1], 'charset').toUpperCase();
    if (charset !== 'UTF-8' && charset !== 'US-ASCII') throw new ImapNo(`Charset "${charset.slice(0, 30)}" is not supported`, 'BADCHARSET (UTF-8 US-ASCII)');
    tokens = tokens.slice(2);
  }
  if (tokens.length === 0) throw new ImapBad('SEARCH needs at least one key');
  const parser = new KeyParser(tokens);
  const keys: Key[] = [];
  while (!parser.done()) keys.push(parser.parse());
  keys.sort((a, b) => cost(a) - cost(b));
  const view = sel.index.view(sel.ref.year);
  const count = sel.count;
  const maxUid = count > 0 ? (view[count - 1] as number) : 0;
  const { messages } = s.deps;
  const prefilters = await indexPrefilters(s, sel.ref.owner, sel.ref.folder, keys);

  const messageOf = async (c: Candidate): Promise<LoadedMessage | null> => {
    if (c.message === undefined) {
      const e = sel.index.entry(c.uid);
      c.message = e ? await messages.load(e.messageId) : null;
    }
    return c.message;
  };
  const evaluate = async (key: Key, c: Candidate): Promise<boolean> => {
    switch (key.k) {
      case 'const': return key.v;
      case 'seen': return sel.seen.has(c.uid) === key.want;
      case 'seq': return inRanges(c.seq, key.ranges, count);
      case 'uid': return inRanges(c.uid, key.ranges, maxUid);
      case 'not': return !(await evaluate(key.key, c));
      case 'or': return (await evaluate(key.a, c)) || evaluate(key.b, c);
      case 'and': {
        for (const k of [...key.keys].sort((a, b) => cost(a) - cost(b))) if (!(await evaluate(k, c))) return false;
        return true;
      }
      case 'size': {
        const e = sel.index.entry(c.uid);
        const size = e ? await messages.viewSize(e.messageId) : null;
        if (size === null) return false;
        return key.op === 'larger' ? size > key.n : size < key.n;
      }
      case 'date': {
        let day: number | null;
        if (key.sent) {
          const e = sel.index.entry(c.uid);
          day = e ? messages.cachedSentDay(e.messageId) ?? null : null;
          if (day === null) {
            const m = await messageOf(c);
            if (!m) return false;
            day = await messages.sentDay(m);
          }
        } else {
          const e = sel.index.entry(c.uid);
          day = e ? dayNumber(e.internalDate) : null;
        }
        if (day === null) return false;
        return key.op === 'before' ? day < key.day : key.op === 'on' ? day === key.day : day >= key.day;
      }
      case 'header': {
        const e = sel.index.entry(c.uid);
        if (!e) return false;
        return messages.headerMatches(e.messageId, () => messageOf(c), key.field, key.value, key.mode);
      }
      case 'text': {
        const m = await messageOf(c);
        if (!m) return false;
        return messages.textMatches(m, key.where, key.value);
      }
    }
  };

  const matches = async (seq: number): Promise<boolean> => {
    const c: Candidate = { seq, uid: view[seq - 1] as number };
    for (const k of keys) if (!(await evaluate(k, c))) return false;
    return true;
  };
  // Messages the index ruled out are dropped here in one synchronous pass (no await per message);
  // only the rest are evaluated.
  const todo: number[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const u = view[seq - 1] as number;
    if (!prefilters.some((p) => u <= p.through && !p.uids.has(u))) todo.push(seq);
  }
  const found: number[] = [];
  const slice = new TimeSlice();
  // Keys that read storage are evaluated for a window of messages at once, so the storage reads of
  // one message overlap with those of the next (a cold mailbox costs round trips, not CPU); answers
  // are collected in sequence order. Bounded: at most WINDOW messages are loaded at a time.
  const window = keys.some((k) => cost(k) >= 2) ? SEARCH_WINDOW : 1;
  for (let i = 0; i < todo.length; i += window) {
    if (s.isClosed || s.selected !== sel) break;
    if (slice.due()) await slice.yield();
    const seqs = todo.slice(i, i + window);
    const ok = window === 1 ? [await matches(seqs[0] as number)] : await Promise.all(seqs.map(matches));
    for (let j = 0; j < seqs.length; j++) if (ok[j]) found.push(uid ? (view[(seqs[j] as number) - 1] as number) : (seqs[j] as number));
  }
  s.out.line(`* SEARCH${found.length > 0 ? ' ' + found.join(' ') : ''}`);
  return `${uid ? 'UID ' : ''}SEARCH completed`;
}
