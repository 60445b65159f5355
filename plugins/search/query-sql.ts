// Compiles a parsed query (query.ts) into an SQL condition over the index's entries (e) and documents
// (d): text terms become FTS5 trigram phrase matches on the columns their field names (a
// case-insensitive substring match, as IMAP SEARCH compares) in the table holding those columns
// (index-db.ts TABLES), the rest plain column conditions.
// Trusts the AST (parseQuery validated it); every value reaches SQLite as a bound parameter.
import { PosternError } from '../../core/errors.ts';
import { fold } from '../imap/message/search.ts';
import { TABLES, tableOf, type Column, type Table } from './index-db.ts';
import type { QueryNode, TextField } from '../../core/search/query.ts';

export interface SqlCondition {
  sql: string;
  params: Array<string | number>;
}

/** Which columns a field searches; null = every column. */
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

/** An FTS5 MATCH expression for a substring `needle` (already folded) in `columns` of one table (null: all its columns). */
export function ftsPhrase(needle: string, columns: readonly Column[] | null): string {
  const phrase = `"${needle.replace(/"/g, '""')}"`;
  return columns ? `{${columns.join(' ')}} : ${phrase}` : phrase;
}

export function termTooShort(value: string): boolean {
  return [...fold(value)].length < MIN_TERM_CHARS;
}

/** One FTS5 expression per table a substring search in `columns` (null: all) must look in. */
export function tableExprs(needle: string, columns: readonly Column[] | null): TextExpr[] {
  const out: TextExpr[] = [];
  for (const table of Object.keys(TABLES) as Table[]) {
    const mine = columns === null ? null : columns.filter((c) => tableOf(c) === table);
    if (mine !== null && mine.length === 0) continue;
    const all = mine === null || mine.length === TABLES[table].length;
    out.push({ table, expr: ftsPhrase(needle, all ? null : mine) });
  }
  return out;
}

const DAY_MS = 86_400_000;

function dayStart(day: string): number {
  return Date.parse(`${day}T00:00:00Z`);
}

/** An FTS5 expression over one table. */
export interface TextExpr {
  table: Table;
  expr: string;
}

/** The per-table expressions of a term about message text; null for other terms. Throws for a term too short to look up. */
export function termExprs(node: QueryNode): TextExpr[] | null {
  if (node.kind !== 'term' || node.field === 'folder' || node.field === 'user') return null;
  if (termTooShort(node.value)) {
    throw new PosternError('INVALID_INPUT', `Query error at position ${node.pos + 1}: "${node.value}" is too short; search text needs at least ${MIN_TERM_CHARS} characters`);
  }
  return tableExprs(fold(node.value), FIELD_COLUMNS[node.field]).map((t) => ({ table: t.table, expr: `(${t.expr})` }));
}

/** One FTS5 expression for a subtree made only of text terms joined by AND/OR that all look in one table; null otherwise. */
export function textExpr(node: QueryNode): TextExpr | null {
  if (node.kind === 'term') {
    const exprs = termExprs(node);
    return exprs?.length === 1 ? (exprs[0] as TextExpr) : null;
  }
  if (node.kind !== 'and' && node.kind !== 'or') return null;
  const parts = node.items.map(textExpr);
  const table = parts[0]?.table;
  if (parts.some((p) => p === null || p.table !== table) || table === undefined) return null;
  return { table, expr: `(${parts.map((p) => (p as TextExpr).expr).join(node.kind === 'and' ? ' AND ' : ' OR ')})` };
}

export function inTable(t: TextExpr): SqlCondition {
  return { sql: `e.doc IN (SELECT rowid FROM ${t.table} WHERE ${t.table} MATCH ?)`, params: [t.expr] };
}

function any(conds: SqlCondition[]): SqlCondition {
  if (conds.length === 1) return conds[0] as SqlCondition;
  return { sql: `(${conds.map((c) => c.sql).join(' OR ')})`, params: conds.flatMap((c) => c.params) };
}

function group<T>(items: T[], key: (t: T) => Table): Map<Table, T[]> {
  const out = new Map<Table, T[]>();
  for (const i of items) out.set(key(i), [...(out.get(key(i)) ?? []), i]);
  return out;
}

/**
 * The SQL condition of a query. Text terms that look in the same table are gathered into as few FTS5
 * expressions as possible (the text terms of an AND, with the ones it excludes as FTS5 NOT; a subtree
 * of such terms alone), so FTS5 intersects and unites document lists itself instead of SQLite joining
 * one list per term; a term that looks in several tables (plain text) is a match in any of them.
 */
export function compileQuery(node: QueryNode): SqlCondition {
  const whole = textExpr(node);
  if (whole !== null) return inTable(whole);
  switch (node.kind) {
    case 'and': {
      const positive: TextExpr[] = [];
      const excluded: TextExpr[] = [];
      const rest: QueryNode[] = [];
      for (const item of node.items) {
        const t = textExpr(item);
        const n = item.kind === 'not' ? textExpr(item.item) : null;
        if (t !== null) positive.push(t);
        else if (n !== null) excluded.push(n);
        else rest.push(item);
      }
      const parts: SqlCondition[] = [];
      const byTable = group(positive, (t) => t.table);
      const pending = [...excluded];
      for (const [table, list] of byTable) {
        const base = list.map((t) => t.expr).join(' AND ');
        const mine = pending.filter((x) => x.table === table);
        for (const x of mine) pending.splice(pending.indexOf(x), 1);
        parts.push(inTable({ table, expr: mine.length > 0 ? `(${base}) NOT (${mine.map((x) => x.expr).join(' OR ')})` : base }));
      }
      for (const x of pending) parts.push({ sql: `(NOT ${inTable(x).sql})`, params: inTable(x).params });
      for (const item of rest) parts.push(compileQuery(item));
      return { sql: `(${parts.map((p) => p.sql).join(' AND ')})`, params: parts.flatMap((p) => p.params) };
    }
    case 'or': {
      const texts: TextExpr[] = [];
      const parts: SqlCondition[] = [];
      for (const item of node.items) {
        const t = textExpr(item);
        if (t !== null) texts.push(t);
        else parts.push(compileQuery(item));
      }
      const grouped = [...group(texts, (t) => t.table)].map(([table, list]) => inTable({ table, expr: list.map((t) => t.expr).join(' OR ') }));
      return any([...grouped, ...parts]);
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
      if (node.field === 'folder') {
        return node.prefix
          ? { sql: "e.folder LIKE ? ESCAPE '\\'", params: [`${node.value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`] }
          : { sql: 'e.folder = ? COLLATE NOCASE', params: [node.value] };
      }
      // A text term in several tables: a match in any of them.
      return any((termExprs(node) ?? []).map(inTable));
    }
  }
}
