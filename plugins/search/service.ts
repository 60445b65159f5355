// The `search` service over the index: query-language searches with access scope and stable cursor
// paging (newest first), and candidate sets for IMAP SEARCH keys. Hits are checked against the
// archive before they are returned (an entry deleted since it was indexed is dropped from the index
// and never shown). Queries run on the reader threads (index-reader.ts), never on the event loop.
// Trusts the caller to have decided the scope (routes.ts does, per principal).
import { PosternError } from '../../core/errors.ts';
import type { ArchiveStore } from '../../core/storage/types.ts';
import type { ImapCandidates, ImapTextKey, SearchHit, SearchOptions, SearchPage, SearchService } from '../../core/app/search-service.ts';
import { fold } from '../imap/message/search.ts';
import { docIdDate, type Column, type HitRow, type IndexDb } from './index-db.ts';
import type { IndexReads } from './index-reader.ts';
import type { IndexWrites } from './index-writer.ts';
import { parseQuery } from '../../core/search/query.ts';
import { compileQuery, tableExprs, termTooShort, type SqlCondition } from './query-sql.ts';
import { driverOf } from './query-driver.ts';

const MAX_LIMIT = 1000;

const KEY_COLUMNS: Record<ImapTextKey['key'], readonly Column[]> = {
  BODY: ['body'],
  TEXT: ['head', 'body'],
  FROM: ['sender'],
  TO: ['rcpt_to'],
  CC: ['rcpt_cc'],
  BCC: ['rcpt_bcc'],
  SUBJECT: ['subject'],
  HEADER: ['head', 'rawhdr'],
};

/** A cursor: where the next page starts (document, entry), and the first page's total and whether it was exact. */
function encodeCursor(row: { doc: number; id: number }, total: number, exact: boolean): string {
  return Buffer.from(`${row.doc}.${row.id}.${total}.${exact ? 1 : 0}`).toString('base64url');
}

function decodeCursor(cursor: string): { doc: number; id: number; total: number; exact: boolean } {
  const m = /^(\d{1,16})\.(\d{1,16})\.(\d{1,16})\.([01])$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  if (!m) throw new PosternError('INVALID_INPUT', `Cursor "${cursor.slice(0, 40)}" is not one this server handed out`);
  return { doc: Number(m[1]), id: Number(m[2]), total: Number(m[3]), exact: m[4] === '1' };
}

/** How far a first page counts matches, and how many documents a walk reads before the full evaluation takes over. */
export interface SearchBounds {
  /** Matches counted exactly; beyond, the total is an estimate (totalExact false). */
  countUpTo: number;
  /** Documents a newest-first walk reads at most; a page not filled by then is found by the full evaluation. */
  maxDocs: number;
}
export const SEARCH_BOUNDS: SearchBounds = { countUpTo: 1000, maxDocs: 10_000 };

const HIT_COLUMNS = 'e.id, e.doc, e.user, e.folder, e.uid, e.date, d.message_id, d.from_text, d.subject, d.size';

function scopeOf(users: readonly string[] | 'all'): SqlCondition {
  if (users === 'all') return { sql: '1', params: [] };
  if (users.length === 0) return { sql: '0', params: [] };
  return { sql: `e.user IN (${users.map(() => '?').join(', ')})`, params: [...users] };
}

export class IndexSearch implements SearchService {
  constructor(
    private readonly db: IndexDb, private readonly archive: ArchiveStore, private readonly writes: IndexWrites, private readonly reads: IndexReads,
    private readonly bounds: SearchBounds = SEARCH_BOUNDS,
  ) {}

  /**
   * One page, newest first (document ids follow the Date header, newest lowest, index-db.ts). A query with text terms
   * walks their matches from the newest down (query-driver.ts, walk.ts) and stops after the page; on
   * the first page it goes on counting up to bounds.countUpTo matches, beyond which the total is
   * extrapolated from the share of the scope walked (totalExact false). A query without text terms, or
   * one whose page the walk does not fill within bounds.maxDocs documents (a common word under a
   * narrow condition), is evaluated whole, with an exact total. The total rides in the cursor.
   */
  async search(query: string, options: SearchOptions): Promise<SearchPage> {
    const ast = parseQuery(query);
    const where = compileQuery(ast);
    const scope = scopeOf(options.users);
    const limit = Math.max(1, Math.min(MAX_LIMIT, Math.floor(options.limit)));
    const after = options.cursor ? decodeCursor(options.cursor) : null;
    const page = after ? { sql: '(e.doc > ? OR (e.doc = ? AND e.id < ?))', params: [after.doc, after.doc, after.id] } : { sql: '1', params: [] };
    const driver = driverOf(ast, after ? after.doc : null);
    let rows: HitRow[] | null = null;
    let total = after?.total ?? 0;
    let exact = after?.exact ?? true;
    if (driver) {
      // A batch of documents from the driver (newest first) to their entries in scope: CROSS JOIN and
      // INDEXED BY keep the batch the outer loop and look entries up by document, whatever the planner
      // thinks of the scope (a user's whole archive per batch otherwise).
      const from = `FROM json_each(?) j CROSS JOIN entries e INDEXED BY entries_doc ON e.doc = j.value JOIN docs d ON d.id = e.doc WHERE ${scope.sql} AND ${driver.rest.sql} AND ${page.sql}`;
      const w = await this.reads.walk({
        driver: { sql: driver.sql, params: driver.params },
        rows: { sql: `SELECT ${HIT_COLUMNS} ${from} ORDER BY e.doc, e.id DESC`, params: [...scope.params, ...driver.rest.params, ...page.params] },
        count: `SELECT count(*) ${from}`,
        want: limit + 1, countUpTo: after ? limit + 1 : Math.max(limit + 1, this.bounds.countUpTo), maxDocs: this.bounds.maxDocs,
      });
      if (w.rows.length > limit || w.exhausted) {
        rows = w.rows as HitRow[];
        if (!after) {
          total = w.hits;
          exact = w.exhausted;
          if (!exact && w.lastDoc !== null) total = await this.estimate(options.users, scope, w.hits, w.lastDoc);
        }
      }
    }
    if (rows === null) {
      const counting = after ? '' : ', count(*) OVER () AS total';
      const all = await this.reads.all<HitRow & { total?: number }>(
        `SELECT ${HIT_COLUMNS}${counting} FROM entries e JOIN docs d ON d.id = e.doc WHERE ${scope.sql} AND ${where.sql} AND ${page.sql} ORDER BY e.doc, e.id DESC LIMIT ?`,
        [...scope.params, ...where.params, ...page.params, limit + 1],
      );
      rows = all;
      if (!after) {
        total = all[0]?.total ?? 0;
        exact = true;
      }
    }
    const more = rows.length > limit;
    const shown = rows.slice(0, limit);
    const hits = await this.present(shown);
    const last = shown[shown.length - 1];
    return { hits, nextCursor: more && last ? encodeCursor(last, total, exact) : null, total, totalExact: exact };
  }

  /**
   * The total of a walk stopped before the driver ended: the hits so far over the share of the scope's
   * entries dated at or after the last document's second (document ids follow the Date header). The
   * scope's size comes from the per-user counts the index keeps (index-db.ts), not from counting its
   * entries (which grew with the archive: tens of milliseconds at a million).
   */
  private async estimate(users: readonly string[] | 'all', scope: SqlCondition, hits: number, lastDoc: number): Promise<number> {
    const since = docIdDate(lastDoc);
    const [all] = await this.reads.all<{ n: number }>(
      users === 'all' ? 'SELECT total(n) AS n FROM entry_counts' : `SELECT total(n) AS n FROM entry_counts WHERE user IN (${users.map(() => '?').join(', ')})`,
      users === 'all' ? [] : [...users],
    );
    const [newer] = await this.reads.all<{ n: number }>(`SELECT count(*) AS n FROM entries e WHERE ${scope.sql} AND e.date >= ?`, [...scope.params, since]);
    const n = all?.n ?? 0;
    const walked = Math.max(1, newer?.n ?? 0);
    return Math.max(hits, Math.round((hits * n) / walked));
  }

  async *all(query: string, users: readonly string[] | 'all', signal?: AbortSignal): AsyncIterable<SearchHit> {
    let cursor: string | undefined;
    do {
      if (signal?.aborted) return;
      const page = await this.search(query, { users, limit: 500, ...(cursor ? { cursor } : {}) });
      yield* page.hits;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  /** Rows as hits, after checking each entry still exists in the archive (a deleted one leaves the index). */
  private async present(rows: HitRow[]): Promise<SearchHit[]> {
    const out: SearchHit[] = [];
    for (const r of rows) {
      const entry = await this.archive.getEntry(r.user, r.folder, r.uid);
      if (!entry || entry.messageId !== r.message_id) {
        await this.writes.removeEntries(r.user, r.folder, [r.uid]);
        continue;
      }
      out.push({
        user: r.user, folder: r.folder, uid: r.uid, messageId: r.message_id,
        date: r.date > 0 ? new Date(r.date).toISOString() : null, from: r.from_text, subject: r.subject, size: r.size,
      });
    }
    return out;
  }

  async imapCandidates(user: string, folder: string, key: ImapTextKey): Promise<ImapCandidates | null> {
    if (termTooShort(key.needle)) return null;
    const through = this.db.cursor(user, folder);
    if (through === 0) return null;
    // The documents that may match (the key's text, and every document whose text was cut), then the
    // folder's entries among them through the (user, folder, doc, uid) index, with no table row read;
    // the UIDs come back as one JSON array (no object per row to copy between threads).
    const docs = tableExprs(fold(key.needle), KEY_COLUMNS[key.key]);
    const [row] = await this.reads.all<{ uids: string }>(
      `SELECT json_group_array(e.uid) AS uids FROM entries e WHERE e.user = ? AND e.folder = ? AND e.doc IN (${docs.map((t) => `SELECT rowid FROM ${t.table} WHERE ${t.table} MATCH ?`).join(' UNION ALL ')} UNION ALL SELECT id FROM docs WHERE complete = 0)`,
      [user, folder, ...docs.map((t) => t.expr)],
    );
    return { through, uids: new Set(JSON.parse(row?.uids ?? '[]') as number[]) };
  }
}
