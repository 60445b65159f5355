// `postern search …` through the admin API of the running server (the search plugin's routes):
//   postern search QUERY [--user U] [--limit N] [--json]   hits, newest first: user, folder, UID, date, from, subject
//   postern search status [--json]                          archived vs indexed per user, pending, failures
//   postern search reindex [--user U]                       rebuild the index online
import type { Command } from 'commander';
import { AdminClientError, callJson, type AdminTarget } from './client.ts';
import { count } from './text.ts';
import type { SearchIndexStatus as Status } from '../app/search-service.ts';

interface Hit {
  user: string;
  folder: string;
  uid: number;
  date: string | null;
  from: string;
  subject: string;
}

const clean = (s: string): string => s.replace(/[\t\r\n]+/g, ' ');

function positive(text: string, what: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max) throw new AdminClientError(`${what} must be a number from 1 to ${max}`, null);
  return n;
}

export function addSearchCommands(program: Command, target: () => AdminTarget): void {
  const search = program.command('search')
    .description('full-text search of the archives (query language: README "Search"); also `search status`, `search reindex`')
    .argument('[query...]', 'the query, e.g. from:alice subject:"quarterly report" has:attachment after:2024-01-01')
    .option('-u, --user <name>', 'only this user\'s archive')
    .option('-n, --limit <n>', 'at most this many hits', '50')
    .option('--json', 'print JSON (one object with hits and total)')
    .action(async (words: string[], o: { user?: string; limit: string; json?: boolean }) => {
      const query = words.join(' ').trim();
      if (query === '') throw new AdminClientError('Give a query, e.g. postern search subject:report from:alice', null);
      const limit = positive(o.limit, '--limit', 1_000_000);
      const t = target();
      const hits: Hit[] = [];
      let total = 0;
      let exact = true;
      let cursor: string | null = null;
      do {
        const q = new URLSearchParams({ q: query, limit: String(Math.min(1000, limit - hits.length)) });
        if (o.user) q.set('user', o.user);
        if (cursor) q.set('cursor', cursor);
        const page: { hits: Hit[]; nextCursor: string | null; total: number; totalExact: boolean } = await callJson(t, 'GET', `/api/v1/search?${q}`);
        if (hits.length === 0) {
          total = page.total;
          exact = page.totalExact;
        }
        hits.push(...page.hits);
        cursor = page.nextCursor;
      } while (cursor && hits.length < limit);
      if (o.json) return void process.stdout.write(JSON.stringify({ total, totalExact: exact, hits }, null, 2) + '\n');
      for (const h of hits) process.stdout.write(`${h.user}\t${h.folder}\t${h.uid}\t${h.date ?? '-'}\t${clean(h.from)}\t${clean(h.subject)}\n`);
      process.stderr.write(`${count(hits.length, 'hit')} shown of ${exact ? '' : 'about '}${total}\n`);
    });

  search.command('status')
    .description('index status: archived vs indexed entries per user, pending, oldest pending, failed extractions')
    .option('--json', 'print JSON')
    .action(async (own: { json?: boolean }) => {
      // The parent's options (--json, --user) are parsed by the parent wherever they stand.
      const o = { ...search.opts<{ json?: boolean }>(), ...own };
      const s = await callJson<Status>(target(), 'GET', '/api/v1/search/status');
      if (o.json) return void process.stdout.write(JSON.stringify(s, null, 2) + '\n');
      const lines = [
        `Indexed:   ${count(s.indexed, 'entry', 'entries')} of ${s.archived} archived (${count(s.documents, 'message')})`,
        `Pending:   ${s.pending}${s.oldestPendingAt ? ` (oldest archived ${s.oldestPendingAt})` : ''}`,
        `Failed:    ${count(s.failedExtractions, 'extraction')} (those messages are found by headers and envelope only)`,
        ...(s.merging ? ['Merging:   the field tables are being merged (the indexer does it once caught up; field queries are faster after)'] : []),
        'USER\tARCHIVED\tINDEXED\tPENDING',
        ...s.users.map((u) => `${u.user}\t${u.archived}\t${u.indexed}\t${u.pending}`),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });

  search.command('reindex')
    .description('rebuild the index online (every archive, or one user\'s); IMAP SEARCH scans meanwhile')
    .option('-u, --user <name>', 'only this user\'s archive')
    .action(async (own: { user?: string }) => {
      const o = { ...search.opts<{ user?: string }>(), ...own };
      const r = await callJson<{ users: string[] }>(target(), 'POST', '/api/v1/search/reindex', o.user ? { user: o.user } : {});
      process.stdout.write(`Reindexing ${r.users.length === 1 ? `"${r.users[0]}"` : count(r.users.length, 'archive')}; follow with: postern search status\n`);
    });
}
