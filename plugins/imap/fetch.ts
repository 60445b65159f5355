// FETCH and STORE. FETCH parses the data items (macros, FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE,
// BODY, BODYSTRUCTURE, BODY[section]<partial> and .PEEK, RFC822, RFC822.HEADER, RFC822.TEXT, UID),
// loads only what the items need, answers from the stored IMAP data and streams body sections to the
// socket as literals of known size with backpressure. Sizes, offsets and bytes are those of the
// message's IMAP view (bare LF read as CRLF, message/crlf.ts), as Dovecot serves LF files. A body read without .PEEK sets \Seen for the
// session (never in EXAMINE); every body read is reported on the `access` hook for the audit log.
// STORE changes only the session's \Seen; any other flag is refused with [CANNOT].
import type { Session } from './session.ts';
import { ImapBad, ImapNo, atom, expectArgs, parseSequenceSet, resolveSequence, resolveUids, type ParsedCommand, type Token } from './parser.ts';
import { internalDate, isAtom, str } from './encode.ts';
import { parseSection, sectionOf, type ImapMessageData, type SectionSpec } from './message/index.ts';
import type { Readable } from 'node:stream';
import type { EntryInfo } from './folder-index.ts';
import type { LoadedMessage } from './message-store.ts';

type Item =
  | { kind: 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODY' | 'BODYSTRUCTURE' | 'UID' }
  | { kind: 'section'; label: string; spec: SectionSpec; peek: boolean; partial: { start: number; length: number } | null };

const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};
const SIMPLE = new Set(['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY', 'BODYSTRUCTURE', 'UID']);
const SECTION = /^BODY(\.PEEK)?\[([^\]]*)\](?:<(\d{1,10})\.(\d{1,10})>)?$/i;

function sectionLabel(spec: SectionSpec): string {
  const text = spec.text === 'ALL' ? '' : spec.text;
  const fields = spec.text === 'HEADER.FIELDS' || spec.text === 'HEADER.FIELDS.NOT'
    ? ` (${spec.fields.map((f) => (isAtom(f) ? f.toUpperCase() : str(f))).join(' ')})`
    : '';
  return `${spec.part.join('.')}${spec.part.length > 0 && text !== '' ? '.' : ''}${text}${fields}`;
}

function section(text: string, what: string): SectionSpec {
  const spec = parseSection(text);
  if (!spec) throw new ImapBad(`Invalid section "${what.slice(0, 80)}"`);
  return spec;
}

export function parseItems(arg: Token | undefined, extra: Token[]): Item[] {
  if (!arg) throw new ImapBad('FETCH needs data items');
  if (extra.length > 0) throw new ImapBad('FETCH modifiers (CHANGEDSINCE …) are not supported');
  const names = arg.t === 'list' ? arg.v.map((t) => atom(t, 'data item')) : [atom(arg, 'data item')];
  if (names.length === 0) throw new ImapBad('Empty data item list');
  const macro = arg.t === 'atom' ? MACROS[arg.v.toUpperCase()] : undefined;
  if (macro) return macro.map((kind) => ({ kind }) as Item);
  return names.map((raw): Item => {
    const up = raw.toUpperCase();
    if (SIMPLE.has(up)) return { kind: up } as Item;
    if (up === 'RFC822') return { kind: 'section', label: 'RFC822', spec: section('', raw), peek: false, partial: null };
    if (up === 'RFC822.HEADER') return { kind: 'section', label: 'RFC822.HEADER', spec: section('HEADER', raw), peek: true, partial: null };
    if (up === 'RFC822.TEXT') return { kind: 'section', label: 'RFC822.TEXT', spec: section('TEXT', raw), peek: false, partial: null };
    const m = SECTION.exec(raw);
    if (!m) throw new ImapBad(`Unknown data item "${raw.slice(0, 60)}"`);
    const spec = section(m[2] as string, raw);
    let partial: { start: number; length: number } | null = null;
    if (m[3] !== undefined) {
      partial = { start: Number(m[3]), length: Number(m[4]) };
      if (partial.length === 0 || partial.start > 0xffffffff || partial.length > 0xffffffff) throw new ImapBad(`Invalid partial range in "${raw.slice(0, 60)}"`);
    }
    return { kind: 'section', label: `BODY[${sectionLabel(spec)}]${partial ? `<${partial.start}>` : ''}`, spec, peek: m[1] !== undefined, partial };
  });
}

/** Long FETCH and SEARCH loops let other sessions run after this much time on the event loop. */
export const SLICE_MS = 4;

export function yieldToOthers(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A loop's turn on the event loop: due() says when it has run SLICE_MS since it last yielded, so a
 * cheap loop (FLAGS of 100,000 messages) yields rarely and an expensive one (bodies) often.
 */
export class TimeSlice {
  private since = performance.now();
  due(): boolean {
    const now = performance.now();
    if (now - this.since < SLICE_MS) return false;
    this.since = now;
    return true;
  }
  /** Let the other sessions run (call when due()); the next slice starts after them. */
  async yield(): Promise<void> {
    await yieldToOthers();
    this.since = performance.now();
  }
}

/** Sequence numbers a FETCH/STORE/SEARCH set names in the selected mailbox. */
export function targets(s: Session, set: string, uid: boolean): number[] {
  const sel = s.selected;
  if (!sel) throw new ImapNo('Select a mailbox first');
  const ranges = parseSequenceSet(set);
  return uid ? resolveUids(ranges, sel.index.view(sel.ref.year), sel.count) : resolveSequence(ranges, sel.count);
}

function flagsOf(s: Session, uid: number): string {
  return s.selected?.seen.has(uid) ? '(\\Seen)' : '()';
}

export async function fetchCommand(s: Session, cmd: ParsedCommand, uid: boolean): Promise<string> {
  if (cmd.args.length < 2) throw new ImapBad('Usage: FETCH sequence-set items');
  const setArg = atom(cmd.args[0], 'sequence set');
  const items = parseItems(cmd.args[1], cmd.args.slice(2));
  if (uid && !items.some((i) => i.kind === 'UID')) items.unshift({ kind: 'UID' });
  const sel = s.selected;
  if (!sel) throw new ImapNo('Select a mailbox first');
  const seqs = targets(s, setArg, uid);
  if (items.every((i) => ATTRIBUTE_KINDS.has(i.kind))) return fetchAttributes(s, seqs, items, uid);
  const needEntry = items.some((i) => i.kind !== 'FLAGS' && i.kind !== 'UID');
  const needData = items.some((i) => i.kind === 'ENVELOPE' || i.kind === 'BODY' || i.kind === 'BODYSTRUCTURE' || i.kind === 'section');
  const bodyRead = items.some((i) => i.kind === 'section' && i.label !== 'RFC822.HEADER' && !/^BODY\[(\d+(\.\d+)*\.)?(HEADER|MIME)/.test(i.label));
  const view = sel.index.view(sel.ref.year);
  const user = s.user?.name ?? '';
  const slice = new TimeSlice();
  for (const seq of seqs) {
    if (s.isClosed || s.selected !== sel) break;
    if (slice.due()) await slice.yield();
    const msgUid = view[seq - 1] as number;
    let entry: EntryInfo | null = null;
    let message: LoadedMessage | null = null;
    if (needEntry) {
      entry = sel.index.entry(msgUid);
      if (!entry) continue;
    }
    if (needData && entry) {
      message = await s.deps.messages.load(entry.messageId);
      if (!message) {
        s.log.error('Archive entry points to a missing message', { messageId: entry.messageId });
        continue;
      }
    }
    const data = message?.data ?? null;
    let size: number | null = null;
    if (entry && items.some((i) => i.kind === 'RFC822.SIZE')) {
      size = data ? data.size : await s.deps.messages.viewSize(entry.messageId);
      if (size === null) {
        s.log.error('Archive entry points to a missing message', { messageId: entry.messageId });
        continue;
      }
    }
    let setSeen = false;
    if (items.some((i) => i.kind === 'section' && !i.peek)) setSeen = s.markSeen(msgUid);
    if (bodyRead) {
      await s.deps.hooks.notify('access', { user, auditor: sel.ref.shared, target: sel.ref.owner, folder: sel.ref.folder, uid: msgUid, what: 'fetch-body', via: 'imap' }, s.log);
    }
    const out = [...items];
    if (setSeen && !out.some((i) => i.kind === 'FLAGS')) out.push({ kind: 'FLAGS' });
    // Open every section before the response line starts, so a failure leaves no half-written line.
    const sections: Array<{ size: number; stream: Readable }> = [];
    try {
      for (const item of out) {
        if (item.kind === 'section') sections.push(await sectionOf(data as ImapMessageData, item.spec, s.deps.messages.opener(message as LoadedMessage), item.partial ?? undefined, () => s.deps.messages.header(message as LoadedMessage)));
      }
    } catch (err) {
      for (const sec of sections) sec.stream.destroy();
      throw err;
    }
    s.out.write(`* ${seq} FETCH (`);
    try {
      await writeItems(s, out, sections, { uid: msgUid, entry, data, size });
    } finally {
      for (const sec of sections) sec.stream.destroy();
    }
    if (!s.out.write(')\r\n')) await s.out.drain();
  }
  return `${uid ? 'UID ' : ''}FETCH completed`;
}

const ATTRIBUTE_KINDS = new Set<Item['kind']>(['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE']);
/** Sizes of messages not in the size cache are read for this many messages at once. */
const SIZE_WINDOW = 64;

/**
 * FETCH of only UID, FLAGS, INTERNALDATE and RFC822.SIZE (a client's flag sync and message list,
 * `UID FETCH 1:* (FLAGS)`, `FETCH 1:* (FLAGS RFC822.SIZE INTERNALDATE)`): answered from the folder
 * index, the session's \Seen set and the size cache, lines built in batches. Sizes missing from the
 * cache are read a window of messages at a time, so a cold folder costs overlapping reads.
 */
async function fetchAttributes(s: Session, seqs: number[], items: Item[], uid: boolean): Promise<string> {
  const sel = s.selected;
  if (!sel) throw new ImapNo('Select a mailbox first');
  const view = sel.index.view(sel.ref.year);
  const kinds = items.map((i) => i.kind);
  const needEntry = kinds.some((k) => k === 'INTERNALDATE' || k === 'RFC822.SIZE');
  const needSize = kinds.includes('RFC822.SIZE');
  const { messages } = s.deps;
  const slice = new TimeSlice();
  let batch: string[] = [];
  let batchSize = 0;
  for (let w = 0; w < seqs.length; w += SIZE_WINDOW) {
    if (s.isClosed || s.selected !== sel) break;
    const window = seqs.slice(w, w + SIZE_WINDOW);
    const entries = needEntry ? window.map((seq) => sel.index.entry(view[seq - 1] as number)) : [];
    const sizes = needSize ? await Promise.all(entries.map((e) => (e ? messages.viewSize(e.messageId) : null))) : [];
    for (let i = 0; i < window.length; i++) {
      const seq = window[i] as number;
      const msgUid = view[seq - 1] as number;
      const entry = entries[i];
      if (needEntry && !entry) continue;
      if (needSize && sizes[i] === null) {
        s.log.error('Archive entry points to a missing message', { messageId: entry?.messageId });
        continue;
      }
      let line = `* ${seq} FETCH (`;
      for (let n = 0; n < kinds.length; n++) {
        if (n > 0) line += ' ';
        switch (kinds[n]) {
          case 'UID': line += `UID ${msgUid}`; break;
          case 'FLAGS': line += `FLAGS ${flagsOf(s, msgUid)}`; break;
          case 'INTERNALDATE': line += `INTERNALDATE ${internalDate((entry as EntryInfo).internalDate)}`; break;
          default: line += `RFC822.SIZE ${sizes[i] as number}`;
        }
      }
      line += ')\r\n';
      batch.push(line);
      batchSize += line.length;
    }
    if (batchSize >= 16 * 1024) {
      const ok = s.out.write(batch.join(''));
      batch = [];
      batchSize = 0;
      if (!ok) await s.out.drain();
    }
    if (slice.due()) await slice.yield();
  }
  if (batch.length > 0) s.out.write(batch.join(''));
  return `${uid ? 'UID ' : ''}FETCH completed`;
}

/** Precomputed IMAP data: byte strings go out byte for byte (8-bit header bytes unchanged), older data as UTF-8. */
function writeData(s: Session, text: string, data: ImapMessageData): void {
  // eslint-disable-next-line no-control-regex
  if (data.encoding === 'latin1' && /[^\u0000-\u007f]/.test(text)) s.out.write(Buffer.from(text, 'latin1'));
  else s.out.write(text);
}

async function writeItems(s: Session, out: Item[], sections: Array<{ size: number; stream: Readable }>, m: { uid: number; entry: EntryInfo | null; data: ImapMessageData | null; size: number | null }): Promise<void> {
  const { uid: msgUid, entry, data } = m;
  for (const [n, item] of out.entries()) {
    const sp = n > 0 ? ' ' : '';
    switch (item.kind) {
      case 'UID': s.out.write(`${sp}UID ${msgUid}`); break;
      case 'FLAGS': s.out.write(`${sp}FLAGS ${flagsOf(s, msgUid)}`); break;
      case 'INTERNALDATE': s.out.write(`${sp}INTERNALDATE ${internalDate((entry as EntryInfo).internalDate)}`); break;
      case 'RFC822.SIZE': s.out.write(`${sp}RFC822.SIZE ${m.size as number}`); break;
      case 'ENVELOPE': writeData(s, `${sp}ENVELOPE ${(data as ImapMessageData).envelope}`, data as ImapMessageData); break;
      case 'BODY': writeData(s, `${sp}BODY ${(data as ImapMessageData).body}`, data as ImapMessageData); break;
      case 'BODYSTRUCTURE': writeData(s, `${sp}BODYSTRUCTURE ${(data as ImapMessageData).bodystructure}`, data as ImapMessageData); break;
      case 'section': {
        const { size, stream } = sections.shift() as { size: number; stream: Readable };
        if (size === 0) {
          stream.destroy();
          s.out.write(`${sp}${item.label} ""`);
          break;
        }
        s.out.write(`${sp}${item.label} {${size}}\r\n`);
        await s.out.pipe(stream, size);
        s.deps.metrics.imapFetchedBytes.inc(size);
        break;
      }
    }
  }
}

export async function storeCommand(s: Session, cmd: ParsedCommand, uid: boolean): Promise<string> {
  expectArgs(cmd.args, 3, 3, 'STORE sequence-set [+|-]FLAGS[.SILENT] (flags)');
  const setArg = atom(cmd.args[0], 'sequence set');
  const op = /^([+-]?)FLAGS(\.SILENT)?$/i.exec(atom(cmd.args[1], 'STORE item'));
  if (!op) throw new ImapBad('STORE item must be FLAGS, +FLAGS or -FLAGS (optionally .SILENT)');
  const flagArg = cmd.args[2] as Token;
  const flags = (flagArg.t === 'list' ? flagArg.v : [flagArg]).map((t) => atom(t, 'flag'));
  const seqs = targets(s, setArg, uid);
  const sel = s.selected;
  if (!sel) throw new ImapNo('Select a mailbox first');
  if (flags.some((f) => f.toLowerCase() !== '\\seen')) throw new ImapNo('The archive is read-only; only \\Seen can be set, for this session', 'CANNOT');
  if (sel.examine) throw new ImapNo('The mailbox was opened with EXAMINE', 'READ-ONLY');
  const view = sel.index.view(sel.ref.year);
  const mode = op[1] === '+' ? 'add' : op[1] === '-' ? 'remove' : 'set';
  for (const seq of seqs) {
    const u = view[seq - 1] as number;
    const want = mode === 'remove' ? false : mode === 'add' ? true : flags.length > 0;
    if (want) s.markSeen(u);
    else sel.seen.delete(u);
    if (!op[2]) s.out.line(`* ${seq} FETCH (FLAGS ${flagsOf(s, u)}${uid ? ` UID ${u}` : ''})`);
  }
  return `${uid ? 'UID ' : ''}STORE completed`;
}
