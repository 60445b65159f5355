// Legal-hold queries in the search query language (core/search/QUERY.md), evaluated on the stored
// message record when entries are about to be deleted. The record holds From, To, Cc, Subject, the
// Date header, the size and the captures' envelopes; it has no body, Bcc header, attachments or
// folder, so holds refuse those terms (checkHoldLanguage) rather than guess, and a bare word or phrase
// means what it always meant in a hold: From, To, Cc or Subject. A message without a readable Date is
// covered by any date term (a hold errs on keeping); under NOT too, as Kleene's unknown. Pure; trusts
// the parsed AST.
import { PosternError } from '../errors.ts';
import type { MessageRecord } from '../storage/types.ts';
import type { QueryNode } from '../search/query.ts';

type Truth = boolean | null;

/** Fields a hold can decide on the stored record. */
const DECIDABLE = new Set(['text', 'from', 'to', 'cc', 'subject', 'participant', 'user']);

/** INVALID_INPUT for a term a hold cannot decide at deletion time (body, attachments, Bcc, folder). */
export function checkHoldLanguage(node: QueryNode): void {
  if (node.kind === 'and' || node.kind === 'or') for (const n of node.items) checkHoldLanguage(n);
  else if (node.kind === 'not') checkHoldLanguage(node.item);
  else if (node.kind === 'has' || (node.kind === 'term' && !DECIDABLE.has(node.field))) {
    const field = node.kind === 'has' ? 'has' : node.field;
    throw new PosternError('INVALID_INPUT', `Hold query field "${field}" is unknown for holds (a hold is decided on the stored headers and envelope); use from, to, cc, subject, participant, user, before/after/on, larger/smaller, OR, NOT and parentheses`);
  }
}
/** What a term is compared with: lower-cased, whitespace runs as one space (as the old hold syntax). */
const norm = (s: string | null): string => (s ?? '').toLowerCase().replace(/\s+/gu, ' ');

function and(values: Truth[]): Truth {
  if (values.includes(false)) return false;
  return values.includes(null) ? null : true;
}

function or(values: Truth[]): Truth {
  if (values.includes(true)) return true;
  return values.includes(null) ? null : false;
}

const DAY_MS = 86_400_000;

function evaluate(node: QueryNode, user: string, m: MessageRecord, participants: string[]): Truth {
  switch (node.kind) {
    case 'and': return and(node.items.map((n) => evaluate(n, user, m, participants)));
    case 'or': return or(node.items.map((n) => evaluate(n, user, m, participants)));
    case 'not': {
      const v = evaluate(node.item, user, m, participants);
      return v === null ? null : !v;
    }
    case 'has': return null; // refused by checkHoldLanguage
    case 'size': return node.op === 'larger' ? m.size > node.bytes : m.size < node.bytes;
    case 'date': {
      const t = m.date === null ? NaN : Date.parse(m.date);
      if (Number.isNaN(t)) return null;
      const start = Date.parse(`${node.day}T00:00:00Z`);
      if (node.op === 'before') return t < start;
      if (node.op === 'after') return t >= start + DAY_MS;
      return t >= start && t < start + DAY_MS;
    }
    case 'term': {
      const v = norm(node.value);
      const has = (s: string | null): boolean => norm(s).includes(v);
      switch (node.field) {
        case 'from': return has(m.from);
        case 'to': return has(m.to);
        case 'cc': return has(m.cc);
        case 'subject': return has(m.subject);
        case 'participant': return participants.some((p) => p.includes(v)) || has(m.from) || has(m.to) || has(m.cc) ? true : null;
        case 'user': return user === v;
        case 'text': return has(m.from) || has(m.to) || has(m.cc) || has(m.subject);
        case 'bcc': case 'body': case 'attachment': case 'folder': return null; // refused by checkHoldLanguage
      }
    }
  }
}

/** Whether a hold whose query is `node` covers an entry of `user` pointing at `m` (unknown counts as covered). */
export function languageCovers(node: QueryNode, user: string, m: MessageRecord, participants: string[]): boolean {
  return evaluate(node, user, m, participants) !== false;
}

/** Whether a query text uses the search language rather than the original hold syntax (terms ANDed, no operators). */
export function usesSearchLanguage(text: string): boolean {
  // Quoted phrases are values in both syntaxes: only what stands outside them counts.
  const bare = text.replace(/"[^"]*"/g, '""');
  return /(^|[\s(])(AND|OR|NOT)(?=[\s(]|$)/.test(bare)
    || /[()]/.test(bare)
    || /(^|\s)-\S/.test(bare)
    || /(^|[\s(-])(before|after|on|larger|smaller|user):/i.test(bare)
    || /\*(\s|$)/.test(bare);
}
