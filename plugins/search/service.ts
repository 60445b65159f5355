// The `search` service over the index: query-language searches with access scope and stable cursor
// paging (newest first), and candidate sets for IMAP SEARCH keys. Hits are checked against the
// archive before they are returned (an entry deleted since it was indexed is dropped from the index
// and never shown). Queries run on the reader threads (index-reader.ts), never on the event loop.
// Trusts the caller to have decided the scope (routes.ts does, per principal).
import { PosternError } from '../../core/errors.ts';
import type { ArchiveStore } from '../../core/storage/types.ts';
import type { ImapCandidates, ImapTextKey, SearchHit, SearchOptions, SearchPage, SearchService } from '../../core/app/search-service.ts';
import { fold } from '../imap/message/search.ts';
import type { Column, HitRow, IndexDb } from './index-db.ts';
import type { IndexReads } from './index-reader.ts';
import type { IndexWrites } from './index-writer.ts';
import { parseQuery } from '../../core/search/query.ts';
import { compileQuery, inTable, tableExprs, termTooShort, type SqlCondition } from './query-sql.ts';

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

/** A cursor: where the next page starts, and the total counted on the first page. */
function encodeCursor(row: { date: number; id: number }, total: number): string {
  return Buffer.from(`${row.date}.${row.id}.${total}`).toString('base64url');
}

function decodeCursor(cursor: string): { date: number; id: number; total: number } {
  const m = /^(-?\d{1,16})\.(\d{1,16})\.(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  if (!m) throw new PosternError('INVALID_INPUT', `Cursor "${cursor.slice(0, 40)}" is not one this server handed out`);
  return { date: Number(m[1]), id: Number(m[2]), total: Number(m[3]) };
}

function scopeOf(users: readonly string[] | 'all'): SqlCondition {
  if (users === 'all') return { sql: '1', params: [] };
  if (users.length === 0) return { sql: '0', params: [] };
  return { sql: `e.user IN (${users.map(() => '?').join(', ')})`, params: [...users] };
}

export class IndexSearch implements SearchService {
  constructor(private readonly db: IndexDb, private readonly archive: ArchiveStore, private readonly writes: IndexWrites, private readonly reads: IndexReads) {}

  /**
   * One query per page: the matches in date order, cut at the page, with the total counted by a
   * window over the same matches on the first page (no second pass) and carried in the cursor after.
   */
  async search(query: string, options: SearchOptions): Promise<SearchPage> {
    const where = compileQuery(parseQuery(query));
    const scope = scopeOf(options.users);
    const limit = Math.max(1, Math.min(MAX_LIMIT, Math.floor(options.limit)));
    const after = options.cursor ? decodeCursor(options.cursor) : null;
    const page = after ? { sql: '(e.date < ? OR (e.date = ? AND e.id < ?))', params: [after.date, after.date, after.id] } : { sql: '1', params: [] };
    const counting = after ? '' : ', count(*) OVER () AS total';
    const rows = await this.reads.all<HitRow & { total?: number }>(
      `SELECT e.id, e.user, e.folder, e.uid, e.date, d.message_id, d.from_text, d.subject, d.size${counting} FROM entries e JOIN docs d ON d.id = e.doc `
      + `WHERE ${scope.sql} AND ${where.sql} AND ${page.sql} ORDER BY e.date DESC, e.id DESC LIMIT ?`,
      [...scope.params, ...where.params, ...page.params, limit + 1],
    );
    const total = after ? after.total : (rows[0]?.total ?? 0);
    const more = rows.length > limit;
    const shown = rows.slice(0, limit);
    const hits = await this.present(shown);
    const last = shown[shown.length - 1];
    return { hits, nextCursor: more && last ? encodeCursor(last, total) : null, total, totalExact: true };
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
    const matches = tableExprs(fold(key.needle), KEY_COLUMNS[key.key]).map(inTable);
    const rows = await this.reads.all<{ uid: number }>(
      `SELECT e.uid FROM entries e WHERE e.user = ? AND e.folder = ? AND (${matches.map((m) => m.sql).join(' OR ')} OR e.doc IN (SELECT id FROM docs WHERE complete = 0))`,
      [user, folder, ...matches.flatMap((m) => m.params)],
    );
    return { through, uids: new Set(rows.map((r) => r.uid)) };
  }
}
