// Mailbox commands: LIST/LSUB (with the SPECIAL-USE selection and RETURN options), STATUS, SELECT and
// EXAMINE (always [READ-ONLY]; the view is a snapshot that only grows), CLOSE/UNSELECT, SUBSCRIBE
// (every folder is always subscribed), and the refused writes: APPEND, CREATE, DELETE, RENAME, COPY,
// MOVE, EXPUNGE answer NO [CANNOT] whatever mailbox they name, so refusals reveal nothing.
import type { Session } from './session.ts';
import type { CommandDef, CommandState } from './commands.ts';
import { ImapBad, ImapNo, astring, expectArgs, type ParsedCommand, type Token } from './parser.ts';
import { decodeMailboxName, encodeMailboxName, str } from './encode.ts';
import { DELIMITER, findMailbox, listMailboxes, patternMatcher, type MailboxEntry, type MailboxRef } from './mailboxes.ts';

const AUTHED: CommandState[] = ['authenticated', 'selected'];
const SELECTED: CommandState[] = ['selected'];

/** A mailbox name argument in the client's encoding (modified UTF-7; a raw UTF-8 name is encoded). */
function mailboxArg(t: Token | undefined): string {
  const raw = astring(t, 'mailbox name');
  if (raw.length > 1000) throw new ImapBad('Mailbox name too long');
  if (/[^\x20-\x7e]/.test(raw)) return encodeMailboxName(raw);
  if (decodeMailboxName(raw) === null) throw new ImapBad('Mailbox name is not valid modified UTF-7');
  return raw;
}

async function selectable(s: Session, name: string): Promise<MailboxRef> {
  const found = await findMailbox(s.mailboxContext(), name);
  if (!found) throw new ImapNo(`Mailbox "${name.slice(0, 100)}" does not exist`, 'NONEXISTENT');
  if (!found.ref) throw new ImapNo(`Mailbox "${name.slice(0, 100)}" cannot be selected`, 'NONEXISTENT');
  return found.ref;
}

async function folderStatus(s: Session, ref: MailboxRef): Promise<{ uidValidity: number; uidNext: number }> {
  const f = (await s.deps.indexes.folders(ref.owner)).find((x) => x.folder === ref.folder);
  return { uidValidity: f?.uidValidity ?? 1, uidNext: f?.uidNext ?? 1 };
}

async function select(s: Session, cmd: ParsedCommand, examine: boolean): Promise<string> {
  expectArgs(cmd.args, 1, 2, `${cmd.name} mailbox`);
  if (cmd.args[1] !== undefined) throw new ImapBad(`${cmd.name} parameters (CONDSTORE, QRESYNC) are not supported`);
  const name = mailboxArg(cmd.args[0]);
  s.deselect();
  const ref = await selectable(s, name);
  const index = await s.deps.indexes.get(ref.owner, ref.folder);
  const { uidValidity, uidNext } = await folderStatus(s, ref);
  const count = index.view(ref.year).length;
  const sel = {
    ref, index, count, uidValidity, uidNext, examine, seen: new Set<number>(),
    unwatch: s.deps.indexes.watch(ref.owner, ref.folder, () => s.wake()),
  };
  s.selected = sel;
  s.state = 'selected';
  const user = s.user?.name ?? '';
  await s.deps.hooks.notify('access', { user, auditor: ref.shared, target: ref.owner, folder: ref.folder, uid: null, what: examine ? 'examine' : 'select', via: 'imap' }, s.log);
  s.out.line('* FLAGS (\\Seen)');
  s.out.line('* OK [PERMANENTFLAGS ()] The archive is read-only; \\Seen lasts for this session only');
  s.out.line(`* ${count} EXISTS`);
  s.out.line('* 0 RECENT');
  s.out.line(`* OK [UIDVALIDITY ${uidValidity}] UIDs valid`);
  s.out.line(`* OK [UIDNEXT ${Math.max(uidNext, (index.view(ref.year).at(-1) ?? 0) + 1)}] Predicted next UID`);
  return `[READ-ONLY] ${cmd.name} completed`;
}

function listLine(kind: 'LIST' | 'LSUB', m: MailboxEntry): string {
  return `* ${kind} (${m.attributes.join(' ')}) "${DELIMITER}" ${str(m.name)}`;
}

async function list(s: Session, cmd: ParsedCommand, kind: 'LIST' | 'LSUB'): Promise<string> {
  let args = cmd.args;
  let specialOnly = false;
  if (kind === 'LIST' && args[0]?.t === 'list') {
    for (const o of args[0].v) {
      const opt = o.t === 'atom' ? o.v.toUpperCase() : '';
      if (opt === 'SPECIAL-USE') specialOnly = true;
      else if (opt !== 'SUBSCRIBED' && opt !== 'REMOTE' && opt !== 'RECURSIVEMATCH') throw new ImapBad(`Unknown LIST selection option "${opt.slice(0, 30)}"`);
    }
    args = args.slice(1);
  }
  if (kind === 'LIST' && args.length === 4 && args[2]?.t === 'atom' && args[2].v.toUpperCase() === 'RETURN' && args[3]?.t === 'list') args = args.slice(0, 2);
  expectArgs(args, 2, 2, `${kind} reference mailbox`);
  const reference = mailboxArg(args[0]);
  const patterns = args[1]?.t === 'list' && kind === 'LIST' ? args[1].v.map((p) => mailboxArg(p)) : [mailboxArg(args[1])];
  if (patterns.length === 1 && patterns[0] === '') {
    s.out.line(`* ${kind} (\\Noselect) "${DELIMITER}" ""`);
    return `${kind} completed`;
  }
  const matchers = patterns.map((p) => patternMatcher(reference, p));
  for (const m of await listMailboxes(s.mailboxContext())) {
    if (!matchers.some((match) => match(m.name))) continue;
    if (specialOnly && !m.attributes.includes('\\Sent')) continue;
    if (kind === 'LSUB' && !m.ref) continue;
    s.out.line(listLine(kind, m));
  }
  return `${kind} completed`;
}

async function status(s: Session, cmd: ParsedCommand): Promise<string> {
  expectArgs(cmd.args, 2, 2, 'STATUS mailbox (items)');
  const name = mailboxArg(cmd.args[0]);
  const items = cmd.args[1];
  if (!items || items.t !== 'list' || items.v.length === 0) throw new ImapBad('STATUS needs a list of items');
  const wanted = items.v.map((t) => {
    const v = t.t === 'atom' ? t.v.toUpperCase() : '';
    if (!['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN'].includes(v)) throw new ImapBad(`Unknown STATUS item "${v.slice(0, 30)}"`);
    return v;
  });
  const ref = await selectable(s, name);
  const index = await s.deps.indexes.get(ref.owner, ref.folder);
  const view = index.view(ref.year);
  const { uidValidity, uidNext } = await folderStatus(s, ref);
  const sel = s.selected?.ref.name === ref.name ? s.selected : null;
  const values: Record<string, number> = {
    MESSAGES: view.length,
    RECENT: 0,
    UIDNEXT: Math.max(uidNext, (view.at(-1) ?? 0) + 1),
    UIDVALIDITY: uidValidity,
    UNSEEN: view.length - (sel ? sel.seen.size : 0),
  };
  s.out.line(`* STATUS ${str(ref.name)} (${wanted.map((w) => `${w} ${values[w] ?? 0}`).join(' ')})`);
  return 'STATUS completed';
}

function refuse(what: string, states: CommandState[]): CommandDef {
  return {
    states,
    async run() {
      throw new ImapNo(`The archive is read-only; ${what} is not possible`, 'CANNOT');
    },
  };
}

/** CLOSE and UNSELECT: no arguments; leave the selected state (a read-only archive never expunges). */
function deselecting(name: string, done: string): CommandDef {
  return {
    states: SELECTED,
    async run(s, cmd) {
      expectArgs(cmd.args, 0, 0, name);
      s.deselect();
      return done;
    },
  };
}

export const MAILBOX_COMMANDS: Record<string, CommandDef> = {
  SELECT: { states: AUTHED, run: (s, cmd) => select(s, cmd, false) },
  EXAMINE: { states: AUTHED, run: (s, cmd) => select(s, cmd, true) },
  LIST: { states: AUTHED, run: (s, cmd) => list(s, cmd, 'LIST') },
  LSUB: { states: AUTHED, run: (s, cmd) => list(s, cmd, 'LSUB') },
  STATUS: { states: AUTHED, run: (s, cmd) => status(s, cmd) },
  CLOSE: deselecting('CLOSE', 'CLOSE completed (nothing is ever expunged)'),
  UNSELECT: deselecting('UNSELECT', 'UNSELECT completed'),
  SUBSCRIBE: {
    states: AUTHED,
    async run(s, cmd) {
      expectArgs(cmd.args, 1, 1, 'SUBSCRIBE mailbox');
      await selectable(s, mailboxArg(cmd.args[0]));
      return 'SUBSCRIBE completed (every folder is always subscribed)';
    },
  },
  UNSUBSCRIBE: {
    states: AUTHED,
    async run(s, cmd) {
      expectArgs(cmd.args, 1, 1, 'UNSUBSCRIBE mailbox');
      throw new ImapNo('Every folder of the archive stays subscribed', 'CANNOT');
    },
  },
  APPEND: refuse('APPEND', AUTHED),
  CREATE: refuse('CREATE', AUTHED),
  DELETE: refuse('DELETE', AUTHED),
  RENAME: refuse('RENAME', AUTHED),
  COPY: refuse('COPY', SELECTED),
  MOVE: refuse('MOVE', SELECTED),
  EXPUNGE: refuse('EXPUNGE', SELECTED),
};
