// Who a message belongs to: its participants (senders and recipients) from, in order of authority,
// a journal report's envelope, the SMTP envelope, or the configured header sources. Journal and
// multidrop addresses (where MTAs copy mail to) are never participants.
import type { MessageContext } from '../app/hook-types.ts';
import type { Config, RoutingSource } from '../config/schema.ts';
import { headerEnvelope, type HeaderSource } from '../journal/header-envelope.ts';
import { addressKey } from '../storage/types.ts';

export interface Participant {
  address: string;
  role: 'sender' | 'recipient';
  /** Where it came from, for provenance and logs: "journal Bcc", "smtp rcpt", "delivered-to", … */
  reason: string;
}

export interface ParticipantSet {
  participants: Participant[];
  /** Which source decided: "journal", a RoutingSource, or null when nothing yielded anyone. */
  source: 'journal' | RoutingSource | null;
  guessed: boolean;
}

type RoutingRules = Pick<Config['routing'], 'sources' | 'journalAddresses' | 'deliveredToSkip' | 'trustedReceivedHosts'>;

/**
 * The case-folded journal addresses, normalised once per configured list instead of per message. Kept
 * with a copy of the list it was built from and rebuilt when the list differs in any entry, so a
 * changed configuration is never answered from an old set.
 */
const JOURNAL_SETS = new WeakMap<readonly string[], { from: string[]; set: Set<string> }>();

function journalSetOf(list: readonly string[]): Set<string> {
  const known = JOURNAL_SETS.get(list);
  if (known && known.from.length === list.length && known.from.every((a, i) => a === list[i])) return known.set;
  const built = { from: [...list], set: new Set(list.map(addressKey)) };
  JOURNAL_SETS.set(list, built);
  return built.set;
}

function isUsable(a: string | null | undefined, journalSet: Set<string>): a is string {
  return typeof a === 'string' && a.includes('@') && !journalSet.has(addressKey(a));
}

export function participantsOf(context: MessageContext, rules: RoutingRules): ParticipantSet {
  const journalSet = journalSetOf(rules.journalAddresses);
  const usable = (a: string | null | undefined): a is string => isUsable(a, journalSet);
  const out: Participant[] = [];
  const add = (address: string | null | undefined, role: Participant['role'], reason: string): void => {
    if (isUsable(address, journalSet)) out.push({ address, role, reason });
  };

  if (context.journal) {
    const env = context.journal.envelope;
    add(env.sender, 'sender', 'journal Sender');
    add(env.onBehalfOf, 'sender', 'journal On-Behalf-Of');
    for (const r of env.recipients) {
      const field = r.field === 'recipient' ? 'Recipient' : r.field[0]?.toUpperCase() + r.field.slice(1);
      add(r.address, 'recipient', `journal ${field}`);
      // The list itself goes to whoever owns the list address; the one who forwarded received it too.
      add(r.expandedFrom, 'recipient', 'journal Expanded list');
      add(r.forwardedFrom, 'recipient', 'journal Forwarded from');
    }
    return { participants: dedupe(out), source: 'journal', guessed: false };
  }

  for (const source of rules.sources) {
    if (source === 'smtp-envelope') {
      if (context.session.listener === 'import') continue;
      const rcpts = context.envelope.rcptTo.filter(usable);
      if (rcpts.length === 0) continue; // only journal/multidrop addresses: the headers decide
      add(context.envelope.mailFrom, 'sender', 'smtp MAIL FROM');
      for (const r of rcpts) add(r, 'recipient', 'smtp RCPT TO');
      return { participants: dedupe(out), source, guessed: false };
    }
    const found = headerEnvelope(context.headers, {
      sources: [source as HeaderSource], deliveredToSkip: rules.deliveredToSkip, trustedReceivedHosts: rules.trustedReceivedHosts,
    });
    const rcpts = found.recipients.filter(usable);
    if (rcpts.length === 0) continue;
    add(found.sender ?? (usable(context.envelope.mailFrom) ? context.envelope.mailFrom : null), 'sender', found.guessed ? 'guessed From' : 'Return-Path');
    for (const r of rcpts) add(r, 'recipient', source);
    return { participants: dedupe(out), source, guessed: found.guessed };
  }
  return { participants: [], source: null, guessed: false };
}

function dedupe(list: Participant[]): Participant[] {
  const seen = new Set<string>();
  return list.filter((p) => {
    const k = `${p.role}\u0000${addressKey(p.address)}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
