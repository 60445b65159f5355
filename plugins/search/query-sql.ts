// Compiles a parsed query (query.ts) into an SQL condition over the index's entries (e) and documents
// (d): text terms become FTS5 trigram phrase matches on the columns their field names (a
// case-insensitive substring match, as IMAP SEARCH compares), the rest plain column conditions.
// Trusts the AST (parseQuery validated it); every value reaches SQLite as a bound parameter.
import { PosternError } from '../../core/errors.ts';
import { fold } from '../imap/message/search.ts';
import type { Column } from './index-db.ts';
import type { QueryNode, TextField } from '../../core/search/query.ts';

export interface SqlCondition {
  sql: string;
  params: Array<string | number>;
}

/** Which FTS5 columns a field searches; null = every column. */
const FIELD_COLUMNS: Record<Exclude<TextField, 'folder' | 'user'>, readonly Column[] | null> = {
  text: null,
  from: ['sender'],
  to: ['rcpt_to'],
  cc: ['rcpt_cc'],
  bcc: ['rcpt_bcc'],
  participant: ['sender', 'rcpt_to', 'rcpt_cc', 'rcpt_bcc', 'envelope'],
  subject: ['subject'],
  body: ['body'],
  attachment: ['attachment'],
};

/** The shortest text the trigram index can look up. */
export const MIN_TERM_CHARS = 3;

/** An FTS5 MATCH expression for a substring `needle` (already folded) in `columns`. */
export function ftsPhrase(needle: string, columns: readonly Column[] | null): string {
  const phrase = `"${needle.replace(/"/g, '""')}"`;
  return columns ? `{${columns.join(' ')}} : ${phrase}` : phrase;
}

export function termTooShort(value: string): boolean {
  return [...fold(value)].length < MIN_TERM_CHARS;
}

const DAY_MS = 86_400_000;

function dayStart(day: string): number {
  return Date.parse(`${day}T00:00:00Z`);
}

/** The FTS5 expression of a term about message text; null for other terms. Throws for a term too short to look up. */
function termExpr(node: QueryNode): string | null {
  if (node.kind !== 'term' || node.field === 'folder' || node.field === 'user') return null;
  if (termTooShort(node.value)) {
    throw new PosternError('INVALID_INPUT', `Query error at position ${node.pos + 1}: "${node.value}" is too short; search text needs at least ${MIN_TERM_CHARS} characters`);
  }
  return `(${ftsPhrase(fold(node.value), FIELD_COLUMNS[node.field])})`;
}

/** One FTS5 expression for a subtree made only of text terms joined by AND/OR; null otherwise. */
function textExpr(node: QueryNode): string | null {
  if (node.kind === 'term') return termExpr(node);
  if (node.kind !== 'and' && node.kind !== 'or') return null;
  const parts = node.items.map(textExpr);
  if (parts.some((p) => p === null)) return null;
  return `(${parts.join(node.kind === 'and' ? ' AND ' : ' OR ')})`;
}

const inIndex = (expr: string): SqlCondition => ({ sql: 'e.doc IN (SELECT rowid FROM fts WHERE fts MATCH ?)', params: [expr] });

/**
 * The SQL condition of a query. Text terms are gathered into as few FTS5 expressions as possible (the
 * text terms of an AND, with the text terms it excludes as FTS5 NOT; a subtree of text terms alone), so
 * FTS5 intersects and unites document lists itself instead of SQLite joining one list per term.
 */
export function compileQuery(node: QueryNode): SqlCondition {
  const whole = textExpr(node);
  if (whole !== null) return inIndex(whole);
  switch (node.kind) {
    case 'and': {
      const positive: string[] = [];
      const excluded: string[] = [];
      const rest: QueryNode[] = [];
      for (const item of node.items) {
        const t = textExpr(item);
        const n = item.kind === 'not' ? textExpr(item.item) : null;
        if (t !== null) positive.push(t);
        else if (n !== null) excluded.push(n);
        else rest.push(item);
      }
      const parts: SqlCondition[] = [];
      if (positive.length > 0) {
        const base = positive.join(' AND ');
        parts.push(inIndex(excluded.length > 0 ? `(${base}) NOT (${excluded.join(' OR ')})` : base));
      } else {
        for (const x of excluded) parts.push({ sql: '(NOT e.doc IN (SELECT rowid FROM fts WHERE fts MATCH ?))', params: [x] });
      }
      for (const item of rest) parts.push(compileQuery(item));
      return { sql: `(${parts.map((p) => p.sql).join(' AND ')})`, params: parts.flatMap((p) => p.params) };
    }
    case 'or': {
      const texts: string[] = [];
      const parts: SqlCondition[] = [];
      for (const item of node.items) {
        const t = textExpr(item);
        if (t !== null) texts.push(t);
        else parts.push(compileQuery(item));
      }
      if (texts.length > 0) parts.unshift(inIndex(texts.join(' OR ')));
      return { sql: `(${parts.map((p) => p.sql).join(' OR ')})`, params: parts.flatMap((p) => p.params) };
    }
    case 'not': {
      const inner = compileQuery(node.item);
      return { sql: `(NOT ${inner.sql})`, params: inner.params };
    }
    case 'has':
      return { sql: 'd.attach = 1', params: [] };
    case 'size':
      return { sql: node.op === 'larger' ? 'd.size > ?' : 'd.size < ?', params: [node.bytes] };
    case 'date': {
      const start = dayStart(node.day);
      if (node.op === 'before') return { sql: '(e.date > 0 AND e.date < ?)', params: [start] };
      if (node.op === 'after') return { sql: 'e.date >= ?', params: [start + DAY_MS] };
      return { sql: '(e.date >= ? AND e.date < ?)', params: [start, start + DAY_MS] };
    }
    case 'term': {
      if (node.field === 'user') return { sql: 'e.user = ?', params: [node.value.toLowerCase()] };
      return node.prefix
        ? { sql: "e.folder LIKE ? ESCAPE '\\'", params: [`${node.value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`] }
        : { sql: 'e.folder = ? COLLATE NOCASE', params: [node.value] };
    }
  }
}
