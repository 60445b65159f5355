// The newest-first driver of a query: one SQL statement that yields, in ascending document id (= newest
// Date first, index-db.ts DOC_SLOT) order, exactly the documents the query's text terms allow, read lazily (FTS5
// walks its doclists in rowid order, and SQLite merges UNION/INTERSECT/EXCEPT of ordered sides as it
// goes), so a search reads matches from the newest down and stops after a page. The parts of the query
// that are not about a document's text (dates, sizes, user, folder, mixed subtrees) stay an entry-level
// condition (`rest`, compiled by query-sql.ts) checked on the entries of each document the driver names.
// Trusts the AST (parseQuery validated it); values reach SQLite as bound parameters.
import type { QueryNode } from '../../core/search/query.ts';
import { compileQuery, termExprs, textExpr, type SqlCondition, type TextExpr } from './query-sql.ts';
import type { Table } from './index-db.ts';

export interface Driver {
  /** Yields one column `doc`, ascending (newest first), each id once. */
  sql: string;
  params: Array<string | number>;
  /** Condition on entries (e) and documents (d) for the query's other parts ('1' when none). */
  rest: SqlCondition;
}

/** The FTS expressions (at most one per table) whose union is the node's set of documents; null when the node is not text only. */
function unionOf(node: QueryNode): TextExpr[] | null {
  const single = textExpr(node);
  if (single) return [single];
  if (node.kind === 'term') {
    const exprs = termExprs(node);
    return exprs && exprs.length > 0 ? exprs : null;
  }
  if (node.kind !== 'or') return null;
  const parts = node.items.map(unionOf);
  if (parts.some((p) => p === null)) return null;
  const byTable = new Map<Table, string[]>();
  for (const t of parts.flat() as TextExpr[]) byTable.set(t.table, [...(byTable.get(t.table) ?? []), t.expr]);
  return [...byTable].map(([table, exprs]) => ({ table, expr: exprs.length === 1 ? (exprs[0] as string) : `(${exprs.join(' OR ')})` }));
}

/**
 * The driver of a query, or null when no text term bounds it (then only a scan of the entries can
 * answer: dates, sizes, a lone NOT). `from`: only documents with id >= from (the page cursor).
 */
export function driverOf(node: QueryNode, from: number | null): Driver | null {
  let first: TextExpr[] | null = unionOf(node);
  const singles: TextExpr[] = [];
  const excluded: TextExpr[] = [];
  const rest: SqlCondition[] = [];
  if (first === null) {
    if (node.kind !== 'and') return null;
    for (const item of node.items) {
      const negated = item.kind === 'not' ? unionOf(item.item) : null;
      // NOT (A OR B) = EXCEPT A EXCEPT B
      if (negated) {
        excluded.push(...negated);
        continue;
      }
      const u = unionOf(item);
      if (u?.length === 1) singles.push(u[0] as TextExpr);
      else if (u && first === null) first = u;
      else rest.push(compileQuery(item));
    }
    // Positive terms of one table are one FTS5 expression (FTS5 intersects them itself).
    const byTable = new Map<Table, string[]>();
    for (const t of singles) byTable.set(t.table, [...(byTable.get(t.table) ?? []), t.expr]);
    singles.length = 0;
    for (const [table, exprs] of byTable) singles.push({ table, expr: exprs.join(' AND ') });
    if (first === null) {
      const head = singles.shift();
      if (!head) return null;
      first = [head];
    }
  }
  const params: Array<string | number> = [];
  const leaf = (t: TextExpr): string => {
    params.push(t.expr);
    if (from !== null) params.push(from);
    return `SELECT rowid AS doc FROM ${t.table} WHERE ${t.table} MATCH ?${from !== null ? ' AND rowid >= ?' : ''}`;
  };
  // Compound SELECTs associate to the left: (A UNION B) INTERSECT C EXCEPT D …
  let sql = first.map(leaf).join(' UNION ');
  for (const t of singles) sql += ` INTERSECT ${leaf(t)}`;
  for (const t of excluded) sql += ` EXCEPT ${leaf(t)}`;
  const where = rest.length === 0 ? { sql: '1', params: [] } : { sql: rest.map((r) => r.sql).join(' AND '), params: rest.flatMap((r) => r.params) };
  return { sql: `${sql} ORDER BY doc`, params, rest: where };
}
