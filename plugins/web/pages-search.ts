// The search page: a search box with a short help of the query language beside it, the hits (date, from,
// to, subject, folder, an attachment marker) newest first, paged with the search's nextCursor. Scope as
// the search API: one's own archive; auditors and administrators every archive (or one, `user=`), and
// their searches are audited with the query. Without the search plugin the page says so. An export of
// the hits (of the one archive when the search is narrowed to it) starts from here for holders of the
// `export` privilege.
import type { SearchHit } from '../../core/app/search-service.ts';
import { errorMessage, isPosternError } from '../../core/errors.ts';
import type { MessageRecord } from '../../core/storage/types.ts';
import { mayExportArchive, readLevel, seesEveryArchive } from './access.ts';
import { formatDate, html, notice, page, qs, type Html } from './html.ts';
import { sendPage, WebError, type Ctx } from './server.ts';
import { layoutUser, type WebDeps } from './deps.ts';
import { exportForm, pickBox } from './pages-export.ts';

const HELP = html`<aside class="help" aria-labelledby="help-title"><h2 id="help-title">Query language</h2>
<ul>
<li><code>budget report</code> both words anywhere</li>
<li><code>"quarterly report"</code> the exact phrase</li>
<li><code>from:alice@example.com</code>, <code>to:</code>, <code>cc:</code>, <code>subject:</code>, <code>body:</code>, <code>attachment:</code>, <code>participant:</code>, <code>folder:</code></li>
<li><code>has:attachment</code></li>
<li><code>after:2024-01-31 before:2024-03-01</code>, <code>on:2024-02-29</code></li>
<li><code>larger:5M</code>, <code>smaller:20K</code></li>
<li><code>from:alice OR from:bob</code>, <code>invoice -from:billing</code>, parentheses</li>
</ul>
<p>Words match as substrings of at least 3 characters, in any case.</p></aside>`;

/** Whether a message has attachments, judged from its top-level Content-Type (multipart/mixed). */
async function hasAttachments(deps: WebDeps, message: MessageRecord): Promise<boolean> {
  const stream = await deps.archive.openBlob(message.blobId);
  if (!stream) return false;
  let head = '';
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      head += chunk.toString('latin1');
      if (head.length >= 16384 || /\r?\n\r?\n/.test(head)) break;
    }
  } finally {
    stream.destroy();
  }
  const end = head.search(/\r?\n\r?\n/);
  const block = (end >= 0 ? head.slice(0, end) : head).replace(/\r?\n[ \t]+/g, ' ');
  return /^content-type:\s*multipart\/mixed/im.test(block);
}

function resultRow(hit: SearchHit, to: string, attach: boolean, showUser: boolean, pick: boolean | null): Html {
  const href = `/message${qs({ user: hit.user, folder: hit.folder, uid: hit.uid })}`;
  return html`<tr>${pick === null ? '' : html`<td class="pick">${pick ? pickBox(hit.user, hit.folder, hit.uid, hit.subject) : ''}</td>`}<td class="date">${formatDate(hit.date)}</td><td class="from">${hit.from || '—'}</td><td class="to">${to || '—'}</td>
<td class="subject"><a href="${href}">${hit.subject || '(no subject)'}</a>${attach ? html` <span class="tag clip" title="Has attachments">attachment</span>` : ''}</td>
<td class="folder">${showUser ? `${hit.user} / ` : ''}${hit.folder}</td></tr>`;
}

export function addSearchPages(deps: WebDeps): void {
  deps.server.add('GET', '/search', async (ctx: Ctx) => {
    const q = (ctx.url.searchParams.get('q') ?? '').slice(0, 2000);
    const cursor = ctx.url.searchParams.get('cursor');
    const only = ctx.url.searchParams.get('user');
    const all = seesEveryArchive(ctx.viewer);
    if (only !== null && !all && only !== ctx.user.name) throw new WebError(403, 'You may search only your own archive.');
    const search = deps.search();
    const form = html`<form class="search" method="get" action="/search" role="search">
<label for="q">Search the archive</label>
<div class="row"><input id="q" name="q" type="search" value="${q}" maxlength="2000" placeholder='from:alice "quarterly report" has:attachment'>
${only !== null ? html`<input type="hidden" name="user" value="${only}">` : ''}<button type="submit">Search</button></div>
${all ? html`<p class="hint">${only !== null ? html`Searching the archive of ${only}. <a href="/search${qs({ q: q || undefined })}">Search every archive</a>` : 'Searching every archive.'} Your searches are recorded in the audit log.</p>` : ''}
</form>`;
    const send = (status: number, results: Html | string): void =>
      sendPage(ctx.res, status, page(q ? `Search: ${q}` : 'Search', layoutUser(ctx), html`<h1>Search</h1><div class="with-help"><div>${form}${results}</div>${HELP}</div>`, '/search'), ctx.secure);
    if (!search) return send(q ? 503 : 200, notice('error', 'Full-text search is not enabled on this server (plugin "search"). Browse the folders under Archives instead.'));
    if (q.trim() === '') return send(200, '');
    const users = only !== null ? [only] : all ? 'all' as const : [ctx.user.name];
    let result;
    try {
      result = await search.search(q, { users, limit: deps.config.pageSize, ...(cursor ? { cursor } : {}) });
    } catch (err) {
      if (isPosternError(err, 'INVALID_INPUT')) return send(400, notice('error', html`The search failed: ${errorMessage(err)}`));
      throw err;
    }
    if (all) {
      await deps.audit()?.record({
        category: 'access', action: 'search.query', actor: ctx.user.name, target: only ?? '*', outcome: 'success', remote: ctx.remote,
        details: { query: q, hits: result.total, via: 'web' },
      });
    }
    const picking = ctx.viewer.export && result.total > 0;
    const rows = await Promise.all(result.hits.map(async (hit) => {
      const message = await deps.archive.getMessage(hit.messageId);
      const full = readLevel(ctx.viewer, hit.user, deps.previewBlocking) === 'full';
      const attach = full && message ? await hasAttachments(deps, message).catch(() => false) : false;
      return resultRow(hit, message?.to ?? '', attach, all && only === null, picking ? mayExportArchive(ctx.viewer, hit.user, deps.previewBlocking) : null);
    }));
    const total = `${result.totalExact ? '' : 'About '}${result.total}`;
    const more = result.nextCursor ? html`<a class="button" rel="next" href="/search${qs({ q, user: only, cursor: result.nextCursor })}">Next page</a>` : '';
    const first = cursor ? html`<a class="button" href="/search${qs({ q, user: only })}">First page</a>` : '';
    // A search narrowed to one archive (user=) exports only that archive's hits, not the whole scope's.
    const exportQuery = only !== null ? `user:"${only}" (${q})` : q;
    const exportButton = ctx.viewer.export && result.total > 0 && !only?.includes('"') ? exportForm(ctx, { query: exportQuery }, 'Export these results as', true) : '';
    const body = result.hits.length === 0
      ? notice('info', cursor ? 'No more results.' : 'No messages match this search.')
      : html`<p class="count" role="status">${total} ${result.total === 1 ? 'message' : 'messages'} found.</p>
<table class="list"><caption class="sr-only">Search results, newest first</caption>
<thead><tr>${picking ? html`<th scope="col"><span class="sr-only">Select</span></th>` : ''}<th scope="col">Date</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Subject</th><th scope="col">Folder</th></tr></thead>
<tbody>${rows}</tbody></table><nav class="pager" aria-label="Result pages">${first} ${more}</nav>${exportButton}`;
    send(200, body);
  });
}
