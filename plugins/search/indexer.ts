// Fills the index behind the archive commit: per folder, entries after the folder's cursor are read
// from the archive in UID order, each new message's text extracted in the analysis workers (never in
// the SMTP transaction, never on the main thread), and documents, entries and the new cursor written
// in one SQLite transaction. A crash loses at most the batch in progress, which is indexed again. The
// `stored` hook only wakes it; a timer catches anything a wake-up missed. It backs off while the intake
// has work, so indexing never competes with capture. Trusts the archive; hands on counts.
import type { ArchiveStore, ArchiveEntry, MessageRecord } from '../../core/storage/types.ts';
import type { Logger } from '../../core/log.ts';
import { errorMessage, PosternError } from '../../core/errors.ts';
import { COLUMNS, type Column, type IndexDb, type IndexDocument } from './index-db.ts';
import type { IndexWrites } from './index-writer.ts';
import type { ExtractedText } from './extract.ts';

export interface IndexerOptions {
  /** Entries read from the archive per transaction. */
  batch: number;
  /** Messages extracted at once (analysis workers used). */
  concurrency: number;
  /** Messages larger than this are indexed by their headers and envelope only (marked incomplete). */
  maxMessageBytes: number;
  /** Seconds between passes when nothing woke the indexer. */
  intervalSeconds: number;
  /** Pause while the intake holds more messages than this (capture first). */
  yieldToIntakeAbove: number;
}

export interface IndexerDeps {
  archive: ArchiveStore;
  db: IndexDb;
  /** Where writes go (the writer thread). */
  writes: IndexWrites;
  log: Logger;
  /** Text extraction in the analysis workers (rejects when the message exceeds the budget). */
  extract(bytes: Buffer): Promise<ExtractedText>;
  /** Every archive to index (users in the directory and the system archives). */
  archives(): Promise<string[]>;
  /** Messages waiting in the intake (back-off signal). */
  intakeDepth(): Promise<number>;
  onIndexed(n: number): void;
  onFailure(messageId: string, reason: string): void;
}

/** FTS5 pages (about 4 KB each) written per merge step: tens of milliseconds of the writer thread. */
const MERGE_PAGES = 1000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

function epoch(date: string | null): number {
  if (!date) return 0;
  const t = Date.parse(date);
  return Number.isFinite(t) ? t : 0;
}

function envelopeText(m: MessageRecord): string {
  const out = new Set<string>();
  for (const c of m.captures) {
    if (c.mailFrom) out.add(c.mailFrom);
    for (const r of c.rcptTo) out.add(r);
    if (c.journal) {
      if (c.journal.sender) out.add(c.journal.sender);
      for (const r of c.journal.recipients) {
        out.add(r.address);
        if (r.expandedFrom) out.add(r.expandedFrom);
      }
    }
  }
  return [...out].join('\n').normalize('NFC').toLowerCase();
}

export class Indexer {
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private paused = false;
  private readonly abort = new AbortController();

  constructor(private readonly deps: IndexerDeps, private readonly options: IndexerOptions) {}

  start(delayMs = 1000): void {
    setTimeout(() => this.wake(), delayMs).unref();
    this.timer = setInterval(() => this.wake(), this.options.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Ask for a pass (several wake-ups while one runs give one more pass). */
  wake(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
  }

  /** Resolves when no pass is running and none is asked for (tests, reindex). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Run `fn` with indexing stopped (the batch in flight is finished or dropped first), then go on. */
  async pause(fn: () => Promise<void>): Promise<void> {
    this.paused = true;
    try {
      await this.idle();
      await fn();
    } finally {
      this.paused = false;
      this.wake();
    }
  }

  private get stopping(): boolean {
    return this.closed || this.paused;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
        await this.merge();
      } catch (err) {
        if (this.closed) return;
        if (err instanceof PosternError && err.code === 'UNAVAILABLE') {
          // The analysis workers start after every plugin has registered: try again shortly.
          this.deps.log.debug('Search indexing waits for the analysis workers', { err: errorMessage(err) });
          setTimeout(() => this.wake(), 2000).unref();
        } else this.deps.log.error('Search indexing pass failed; retried on the next pass', { err: errorMessage(err) });
      }
    } while (this.again && !this.stopping);
  }

  /**
   * Caught up: keep the field tables merged (IndexDb.mergeStep), one bounded step at a time, giving way
   * to new mail (a pass asked for) and to capture (the intake has work).
   */
  private async merge(): Promise<void> {
    while (!this.stopping && !this.again) {
      if ((await this.deps.intakeDepth()) > this.options.yieldToIntakeAbove) return;
      if (!(await this.deps.writes.mergeStep(MERGE_PAGES))) return;
    }
  }

  private async pass(): Promise<void> {
    for (const user of await this.deps.archives()) {
      for (const f of await this.deps.archive.folders(user)) {
        if (this.stopping) return;
        await this.indexFolder(user, f.folder);
      }
    }
  }

  /**
   * A folder from its cursor on, batch after batch. The text of the next batch is extracted while the
   * writer thread stores the previous one, so the analysis workers and the writer work at once; writes
   * stay in UID order, so the cursor only moves forward. A batch prepared when indexing stops is dropped.
   */
  private async indexFolder(user: string, folder: string): Promise<void> {
    let writing: Promise<void> | null = null;
    let after = this.deps.db.cursor(user, folder);
    try {
      for (;;) {
        if (this.stopping) return;
        while (!this.stopping && (await this.deps.intakeDepth()) > this.options.yieldToIntakeAbove) await sleep(200);
        const entries = await this.deps.archive.listEntries(user, folder, { afterUid: after, limit: this.options.batch });
        if (entries.length === 0) return;
        const docs = await this.documents(entries);
        if (this.stopping) return;
        after = (entries[entries.length - 1] as ArchiveEntry).uid;
        await writing;
        writing = this.writeBatch(user, folder, entries, docs, after);
        // Awaited before the next write or at the end; a failure meanwhile must not count as unhandled.
        writing.catch(() => undefined);
      }
    } finally {
      await writing;
    }
  }

  /** Index entries of a folder outside the cursor's order (reconcile: entries missing below the cursor). */
  async indexEntries(user: string, folder: string, entries: ArchiveEntry[]): Promise<void> {
    for (let i = 0; i < entries.length; i += this.options.batch) {
      const batch = entries.slice(i, i + this.options.batch);
      const docs = await this.documents(batch);
      if (this.stopping) return;
      await this.writeBatch(user, folder, batch, docs, this.deps.db.cursor(user, folder));
    }
  }

  /** The documents of the entries' messages not indexed yet, extracted `concurrency` at a time. */
  private async documents(entries: ArchiveEntry[]): Promise<IndexDocument[]> {
    const docs = new Map<string, IndexDocument>();
    const todo = [...new Set(entries.map((e) => e.messageId))].filter((id) => this.deps.db.docOf(id) === null);
    let next = 0;
    const work = async (): Promise<void> => {
      while (next < todo.length && !this.stopping) {
        const id = todo[next++] as string;
        const doc = await this.document(id);
        if (doc) docs.set(id, doc);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.options.concurrency) }, work));
    return [...docs.values()];
  }

  /** Documents, entries and the folder's cursor (`through`) in one transaction of the writer thread. */
  private async writeBatch(user: string, folder: string, entries: ArchiveEntry[], docs: IndexDocument[], through: number): Promise<void> {
    await this.deps.writes.write(user, folder, docs, entries.map((e) => ({ user, folder, uid: e.uid, messageId: e.messageId, date: epoch(e.date) })), through);
    this.deps.onIndexed(docs.length);
  }

  /** A message's document; null when the message is gone (deleted since it was listed). */
  private async document(id: string): Promise<IndexDocument | null> {
    const m = await this.deps.archive.getMessage(id);
    if (!m) return null;
    const base = { messageId: id, date: epoch(m.date), size: m.size, from: m.from, subject: m.subject };
    const empty = Object.fromEntries(COLUMNS.map((c) => [c, ''])) as Record<Column, string>;
    const envelope = envelopeText(m);
    let failure: string | null = null;
    if (m.size > this.options.maxMessageBytes) failure = `larger than ${this.options.maxMessageBytes} bytes: only headers and envelope indexed`;
    else {
      try {
        const bytes = await this.readBlob(m);
        const x = await this.deps.extract(bytes);
        // A failed attachment is recorded and counted; the message is indexed with everything else.
        if (x.attachmentFailures.length > 0) this.deps.onFailure(id, x.attachmentFailures.join('; '));
        const text: Record<Column, string> = { ...empty, head: x.head, rawhdr: x.rawhdr, body: x.body, sender: x.sender, rcpt_to: x.rcpt_to, rcpt_cc: x.rcpt_cc, rcpt_bcc: x.rcpt_bcc, subject: x.subject, envelope, attachment: x.attachment };
        return { ...base, hasAttachment: x.hasAttachment, complete: x.complete, failure: x.attachmentFailures.length > 0 ? x.attachmentFailures.join('; ').slice(0, 1000) : null, text };
      } catch (err) {
        // No worker to run on (starting, stopping): not this message's fault; the pass stops and is retried.
        if (err instanceof PosternError && (err.code === 'UNAVAILABLE' || err.code === 'SHUTTING_DOWN')) throw err;
        failure = errorMessage(err);
      }
    }
    this.deps.onFailure(id, failure);
    // What the archive already knows still makes the message findable; incomplete, so IMAP scans it.
    const summary = [m.from, m.to, m.cc, m.subject].join('\n').normalize('NFC').toLowerCase();
    return { ...base, hasAttachment: false, complete: false, failure, text: { ...empty, head: summary, sender: m.from.toLowerCase(), rcpt_to: m.to.toLowerCase(), rcpt_cc: m.cc.toLowerCase(), subject: m.subject.normalize('NFC').toLowerCase(), envelope } };
  }

  private async readBlob(m: MessageRecord): Promise<Buffer> {
    const blob = await this.deps.archive.openBlob(m.blobId);
    if (!blob) throw new Error(`Message "${m.id}" has no blob "${m.blobId}"`);
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of blob as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > m.size) {
        blob.destroy();
        throw new Error(`Message "${m.id}" is larger than its recorded size`);
      }
      parts.push(chunk);
    }
    return Buffer.concat(parts, size);
  }
}
