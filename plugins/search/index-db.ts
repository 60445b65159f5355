// The full-text index in SQLite (better-sqlite3, FTS5 with the trigram tokenizer) under
// <dataDir>/search/: one document per message (its folded searchable text in contentless FTS5
// tables), one row per archive entry pointing at it (counted per user by triggers, for the totals a
// stopped walk estimates), and per folder the UID the index is complete
// through (the durable cursor), written in the same transaction as the rows it covers. Derived data:
// deleting the directory loses nothing (the indexer rebuilds it from the archive). Trusts its callers
// (the indexer and the query compiler); hands on row ids, UIDs and hit rows.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** Bump when the schema or what is indexed changes: an index of another version is rebuilt. */
export const SCHEMA_VERSION = '6';

/** A document's searchable columns. */
export const COLUMNS = ['head', 'rawhdr', 'body', 'sender', 'rcpt_to', 'rcpt_cc', 'rcpt_bcc', 'subject', 'envelope', 'attachment'] as const;
export type Column = (typeof COLUMNS)[number];

/**
 * The three FTS5 tables. `fts` holds the long texts (whole header, body), `hdr` the short per-field
 * ones and `att` the attachments' names, types and text. A field query (from:, subject:, …) reads only
 * hdr's doclists, whose trigrams occur a few times per document instead of hundreds (a trigram like
 * "com" in a body or a PDF's text), so field queries pay neither for the bodies nor for the attachments
 * (whose text, when kept beside the fields, made up most of hdr). A plain text query looks in all three.
 */
export const TABLES = {
  fts: ['head', 'rawhdr', 'body'],
  hdr: ['sender', 'rcpt_to', 'rcpt_cc', 'rcpt_bcc', 'subject', 'envelope'],
  att: ['attachment'],
} as const satisfies Record<string, readonly Column[]>;
const TABLE_NAMES = Object.keys(TABLES) as Table[];

/**
 * The tables kept merged into one b-tree (FTS5 segment) each: a field query seeks through every segment
 * of hdr for each of its trigrams, so fewer segments answer faster. fts (bodies, most of the index) is
 * left to FTS5's own automerge: rewriting it whole would cost more than its queries gain.
 */
const MERGED_TABLES: readonly Table[] = ['hdr', 'att'];
/** A full merge is due again once the index holds this share more entries than at the last one… */
const MERGE_GROWTH = 0.25;
/** …and at least this many more (small indexes have few segments anyway). */
const MERGE_MIN_ENTRIES = 5000;

/** Where merging stands (meta 'merged_entries'): entries at the last full merge, and whether one is under way. */
export interface MergeState {
  entries: number;
  running: boolean;
}

export function parseMergeState(value: string | undefined): MergeState {
  return value === undefined ? { entries: 0, running: false } : (JSON.parse(value) as MergeState);
}

/** Whether the field tables are being merged or are due for it at `entries` indexed entries. */
export function mergeDue(state: MergeState, entries: number): boolean {
  return state.running || (entries - state.entries >= MERGE_MIN_ENTRIES && entries >= state.entries * (1 + MERGE_GROWTH));
}

export function tableOf(column: Column): Table {
  return TABLE_NAMES.find((t) => (TABLES[t] as readonly Column[]).includes(column)) as Table;
}
export type Table = keyof typeof TABLES;

/**
 * Document ids are ordered by the message's Date header, newest first: (MAX_DOC_SECOND - the second
 * since the epoch, 0 when unknown or earlier) times DOC_SLOT, plus a sequence number within that second.
 * FTS5 hands out its matches in ascending rowid order (its native direction, read lazily; descending
 * order first walks every doclist), so a newest-first search reads the matches from the top and ends
 * after a page instead of ranking every match (query-driver.ts). More than DOC_SLOT messages with the
 * same second take the next id after the highest (their place in the order is then approximate).
 */
export const DOC_SLOT = 2 ** 20;
const MAX_DOC_SECOND = 2 ** 32 - 1;

/** The first document id of the second a Date header (epoch ms, 0 = unknown) falls in. */
export function docIdBase(date: number): number {
  return (MAX_DOC_SECOND - Math.min(MAX_DOC_SECOND, Math.max(0, Math.floor(date / 1000)))) * DOC_SLOT;
}

/** The Date (epoch ms, at the start of its second) a document id stands for. */
export function docIdDate(id: number): number {
  return (MAX_DOC_SECOND - Math.floor(id / DOC_SLOT)) * 1000;
}

/** One message's searchable data as the indexer writes it. */
export interface IndexDocument {
  messageId: string;
  /** Date header as epoch ms (0 when unknown). */
  date: number;
  size: number;
  hasAttachment: boolean;
  /** False when some text was cut at a limit or failed to extract: the document must not rule the message out. */
  complete: boolean;
  failure: string | null;
  from: string;
  subject: string;
  text: Record<Column, string>;
}

export interface IndexedEntry {
  user: string;
  folder: string;
  uid: number;
  messageId: string;
}

export interface HitRow {
  id: number;
  doc: number;
  user: string;
  folder: string;
  uid: number;
  date: number;
  message_id: string;
  from_text: string;
  subject: string;
  size: number;
}

export interface FolderCount {
  user: string;
  folder: string;
  entries: number;
  cursor: number;
}

/** Statistics queries, run here (reconcile) or on a reader thread (status gauges). */
export const STATS_SQL = {
  counts: 'SELECT user, folder, count(*) AS entries FROM entries GROUP BY user, folder',
  cursors: 'SELECT user, folder, uid FROM cursors',
  failures: 'SELECT count(*) AS n FROM docs WHERE failure IS NOT NULL',
  docs: 'SELECT count(*) AS n FROM docs',
  merge: "SELECT value FROM meta WHERE key = 'merged_entries'",
} as const;

/** Indexed entries and cursor per folder, from the rows of STATS_SQL.counts and .cursors. */
export function mergeFolderCounts(counts: Array<{ user: string; folder: string; entries: number }>, cursorRows: Array<{ user: string; folder: string; uid: number }>): FolderCount[] {
  const cursors = new Map(cursorRows.map((c) => [`${c.user}\u0000${c.folder}`, c.uid]));
  const out: FolderCount[] = counts.map((c) => ({ ...c, cursor: cursors.get(`${c.user}\u0000${c.folder}`) ?? 0 }));
  for (const [k, uid] of cursors) {
    const [user = '', folder = ''] = k.split('\u0000');
    if (!out.some((o) => o.user === user && o.folder === folder)) out.push({ user, folder, entries: 0, cursor: uid });
  }
  return out;
}

/** FTS5 stores strings as given; NUL separators become line breaks (no needle can hold a NUL, so nothing new can match across). */
const clean = (s: string): string => s.replace(/\u0000/g, '\n');

export class IndexDb {
  readonly db: Database.Database;
  private readonly stmts;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.db = new Database(join(dir, 'index.sqlite'));
    this.db.pragma('journal_mode = WAL');
    // The index is derived data: a power loss may cost the last transactions, and the cursor is in
    // the same transaction as the rows, so what is lost is simply indexed again.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    const d = this.db;
    this.stmts = {
      docId: d.prepare<[string], { id: number; complete: number }>('SELECT id, complete FROM docs WHERE message_id = ?'),
      insertDoc: d.prepare('INSERT INTO docs (id, message_id, date, size, attach, complete, failure, from_text, subject, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      lastInSlot: d.prepare<[number, number], { id: number | null }>('SELECT max(id) AS id FROM docs WHERE id >= ? AND id < ?'),
      lastDoc: d.prepare<[], { id: number | null }>('SELECT max(id) AS id FROM docs'),
      insertEntry: d.prepare('INSERT OR IGNORE INTO entries (user, folder, uid, doc, date) VALUES (?, ?, ?, ?, ?)'),
      cursor: d.prepare<[string, string], { uid: number }>('SELECT uid FROM cursors WHERE user = ? AND folder = ?'),
      setCursor: d.prepare('INSERT INTO cursors (user, folder, uid) VALUES (?, ?, ?) ON CONFLICT (user, folder) DO UPDATE SET uid = excluded.uid WHERE excluded.uid > cursors.uid'),
      deleteEntry: d.prepare('DELETE FROM entries WHERE user = ? AND folder = ? AND uid = ?'),
      entryUids: d.prepare<[string, string, number, number], { uid: number }>('SELECT uid FROM entries WHERE user = ? AND folder = ? AND uid > ? ORDER BY uid LIMIT ?'),
      orphans: d.prepare<[number], { id: number }>('SELECT id FROM docs WHERE NOT EXISTS (SELECT 1 FROM entries WHERE entries.doc = docs.id) LIMIT ?'),
      deleteDoc: d.prepare('DELETE FROM docs WHERE id = ?'),
      counts: d.prepare<[], { user: string; folder: string; entries: number }>(STATS_SQL.counts),
      cursors: d.prepare<[], { user: string; folder: string; uid: number }>(STATS_SQL.cursors),
      failures: d.prepare<[], { n: number }>(STATS_SQL.failures),
      docs: d.prepare<[], { n: number }>(STATS_SQL.docs),
      dropUserEntries: d.prepare('DELETE FROM entries WHERE user = ?'),
      entryTotal: d.prepare<[], { n: number }>('SELECT total(n) AS n FROM entry_counts'),
      totalChanges: d.prepare<[], { n: number }>('SELECT total_changes() AS n'),
      metaGet: d.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      metaSet: d.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      dropUserCursors: d.prepare('DELETE FROM cursors WHERE user = ?'),
    };
    this.insertText = TABLE_NAMES.map((t) => {
      const insert = d.prepare(`INSERT INTO ${t} (rowid, ${TABLES[t].join(', ')}) VALUES (?, ${TABLES[t].map(() => '?').join(', ')})`);
      return (id: number, doc: IndexDocument) => insert.run(id, ...TABLES[t].map((c) => clean(doc.text[c])));
    });
    this.deleteText = TABLE_NAMES.map((t) => d.prepare(`DELETE FROM ${t} WHERE rowid = ?`));
    this.mergeText = MERGED_TABLES.map((t) => d.prepare(`INSERT INTO ${t} (${t}, rank) VALUES ('merge', ?)`));
  }

  /** Per FTS table: write a document's text, delete a document; per merged table: one merge step. */
  private readonly insertText: Array<(id: number, doc: IndexDocument) => void>;
  private readonly deleteText: Database.Statement[];
  private readonly mergeText: Database.Statement[];

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID');
    const version = this.db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema'").get()?.value;
    if (version !== undefined && version !== SCHEMA_VERSION) {
      // Another version's index: derived data, so drop it and let the indexer rebuild.
      this.db.exec('DROP TABLE IF EXISTS fts; DROP TABLE IF EXISTS hdr; DROP TABLE IF EXISTS att; DROP TABLE IF EXISTS entries; DROP TABLE IF EXISTS entry_counts; DROP TABLE IF EXISTS docs; DROP TABLE IF EXISTS cursors;');
    }
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS docs (
        id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, date INTEGER NOT NULL, size INTEGER NOT NULL,
        attach INTEGER NOT NULL, complete INTEGER NOT NULL, failure TEXT, from_text TEXT NOT NULL, subject TEXT NOT NULL,
        indexed_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS entries (
        id INTEGER PRIMARY KEY, user TEXT NOT NULL, folder TEXT NOT NULL, uid INTEGER NOT NULL, doc INTEGER NOT NULL,
        date INTEGER NOT NULL, UNIQUE (user, folder, uid));
      CREATE INDEX IF NOT EXISTS entries_doc ON entries (doc);
      CREATE INDEX IF NOT EXISTS entries_folder_doc ON entries (user, folder, doc, uid);
      CREATE INDEX IF NOT EXISTS entries_user_date ON entries (user, date, id);
      CREATE INDEX IF NOT EXISTS entries_date ON entries (date, id);
      CREATE INDEX IF NOT EXISTS docs_incomplete ON docs (id) WHERE complete = 0;
      CREATE INDEX IF NOT EXISTS docs_failed ON docs (id) WHERE failure IS NOT NULL;
      CREATE TABLE IF NOT EXISTS entry_counts (user TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TRIGGER IF NOT EXISTS entry_counts_insert AFTER INSERT ON entries BEGIN
        INSERT INTO entry_counts (user, n) VALUES (NEW.user, 1) ON CONFLICT (user) DO UPDATE SET n = n + 1;
      END;
      CREATE TRIGGER IF NOT EXISTS entry_counts_delete AFTER DELETE ON entries BEGIN
        UPDATE entry_counts SET n = n - 1 WHERE user = OLD.user;
      END;
      CREATE TABLE IF NOT EXISTS cursors (user TEXT NOT NULL, folder TEXT NOT NULL, uid INTEGER NOT NULL, PRIMARY KEY (user, folder)) WITHOUT ROWID;
      ${TABLE_NAMES.map((t) => `CREATE VIRTUAL TABLE IF NOT EXISTS ${t} USING fts5 (${TABLES[t].join(', ')}, tokenize = 'trigram', content = '', contentless_delete = 1);`).join('\n      ')}
    `);
    this.db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(SCHEMA_VERSION);
  }

  close(): void {
    this.db.close();
  }

  /** The document of a message, when it is indexed. */
  docOf(messageId: string): { id: number; complete: boolean } | null {
    const row = this.stmts.docId.get(messageId);
    return row ? { id: row.id, complete: row.complete === 1 } : null;
  }

  /** The UID through which a folder's entries are indexed (0: none yet). */
  cursor(user: string, folder: string): number {
    return this.stmts.cursor.get(user, folder)?.uid ?? 0;
  }

  /**
   * One transaction: new documents, the entries (each pointing at its message's document, new or
   * already indexed) and the folder's cursor moved to `through`.
   */
  write(user: string, folder: string, docs: IndexDocument[], entries: Array<IndexedEntry & { date: number }>, through: number): void {
    this.db.transaction(() => {
      for (const doc of docs) {
        if (this.stmts.docId.get(doc.messageId)) continue;
        const id = this.nextDocId(doc.date);
        this.stmts.insertDoc.run(id, doc.messageId, doc.date, doc.size, doc.hasAttachment ? 1 : 0, doc.complete ? 1 : 0, doc.failure, doc.from, doc.subject, Date.now());
        for (const insert of this.insertText) insert(id, doc);
      }
      for (const e of entries) {
        const doc = this.stmts.docId.get(e.messageId);
        if (doc) this.stmts.insertEntry.run(e.user, e.folder, e.uid, doc.id, e.date);
      }
      this.stmts.setCursor.run(user, folder, through);
    })();
  }

  /** A free document id in the second of `date` (DOC_SLOT); past a full second, the next id after the highest. */
  private nextDocId(date: number): number {
    const base = docIdBase(date);
    const next = (this.stmts.lastInSlot.get(base, base + DOC_SLOT)?.id ?? base - 1) + 1;
    if (next < base + DOC_SLOT) return next;
    return (this.stmts.lastDoc.get()?.id ?? 0) + 1;
  }

  /** Indexed UIDs of a folder after `afterUid`, in order (reconcile). */
  entryUids(user: string, folder: string, afterUid: number, limit: number): number[] {
    return this.stmts.entryUids.all(user, folder, afterUid, limit).map((r) => r.uid);
  }

  removeEntries(user: string, folder: string, uids: number[]): void {
    this.db.transaction(() => {
      for (const uid of uids) this.stmts.deleteEntry.run(user, folder, uid);
    })();
  }

  /** Drop documents no entry points at any more (at most `limit`); returns how many. */
  dropOrphans(limit: number): number {
    const ids = this.stmts.orphans.all(limit).map((r) => r.id);
    this.db.transaction(() => {
      for (const id of ids) {
        for (const del of this.deleteText) del.run(id);
        this.stmts.deleteDoc.run(id);
      }
    })();
    return ids.length;
  }

  /** Forget a user's entries and cursors (reindex); their documents go with the next orphan sweep. */
  dropUser(user: string): void {
    this.db.transaction(() => {
      this.stmts.dropUserEntries.run(user);
      this.stmts.dropUserCursors.run(user);
    })();
  }

  /** Forget everything (reindex of every archive). */
  dropAll(): void {
    this.db.exec(`DELETE FROM entries; DELETE FROM entry_counts; DELETE FROM cursors; DELETE FROM docs; ${TABLE_NAMES.map((t) => `DELETE FROM ${t};`).join(' ')}`);
  }

  /**
   * One step of merging the MERGED_TABLES into one segment each, when due (they grew by MERGE_GROWTH
   * since the last full merge) or under way: FTS5's 'merge' with a negative budget puts every segment
   * on one level and writes at most `pages` pages of the merged one; it resumes where it stopped at the
   * next step. True while there is more to do. Growth-triggered full merges rewrite these tables a
   * bounded number of times per doubling of the archive.
   */
  mergeStep(pages: number): boolean {
    const entries = this.stmts.entryTotal.get()?.n ?? 0;
    const state = parseMergeState(this.stmts.metaGet.get('merged_entries')?.value);
    if (!mergeDue(state, entries)) return false;
    let worked = false;
    for (const merge of this.mergeText) {
      const before = this.stmts.totalChanges.get()?.n ?? 0;
      merge.run(-Math.max(16, pages));
      // FTS5 counts at least two changes when the command did some work.
      if ((this.stmts.totalChanges.get()?.n ?? 0) - before >= 2) worked = true;
    }
    this.stmts.metaSet.run('merged_entries', JSON.stringify(worked ? { entries: state.entries, running: true } : { entries, running: false }));
    return worked;
  }

  /** Indexed entries and cursor per folder. */
  folderCounts(): FolderCount[] {
    return mergeFolderCounts(this.stmts.counts.all(), this.stmts.cursors.all());
  }

  failedExtractions(): number {
    return this.stmts.failures.get()?.n ?? 0;
  }

  documents(): number {
    return this.stmts.docs.get()?.n ?? 0;
  }
}
