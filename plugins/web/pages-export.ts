// Exports and legal holds in the browser. An export of a search's hits, of a whole archive or one folder
// of it, or of a hold's messages starts the export job of core/export as the signed-in user (the `export`
// privilege, preview blocking and scope decided there, every export audited), then its page follows the
// progress (refreshing itself while it runs, no script) and offers the file once it is written. The
// export form the search, archive and folder pages show comes from here. The holds page lists the legal-hold
// cases with the number of messages each covers (counted within a time budget; "at least" past it)
// for compliance officers, auditors and administrators, with an export button for those who may export
// by hold (core/export/access.ts).
import { errorMessage, isPosternError } from '../../core/errors.ts';
import { selectEntries } from '../../core/export/selection.ts';
import { EXPORT_FORMATS, MAX_PICKS, type ExportFormat, type ExportPick, type ExportRecord, type ExportSelection } from '../../core/export/types.ts';
import { describeTargets } from '../../core/jobs/targets.ts';
import { USER_NAME } from '../../core/storage/types.ts';
import { seesHolds } from './access.ts';
import { formatDate, formatSize, html, notice, page, qs, type Html } from './html.ts';
import { redirect, securityHeaders, sendPage, WebError, type Ctx } from './server.ts';
import { layoutUser, textParam, type WebDeps } from './deps.ts';
import { dispositionOf } from './pages-message.ts';

const COUNT_BUDGET_MS = 1500;
const COUNT_CACHE_MS = 60_000;

function statusText(r: ExportRecord): string {
  switch (r.status) {
    case 'queued': return 'waiting to start';
    case 'running': return 'running';
    case 'succeeded': return 'finished';
    case 'completed-with-errors': return 'finished with errors';
    case 'failed': return 'failed';
    case 'cancelled': return 'cancelled';
  }
}

function describe(sel: ExportSelection): string {
  if ('query' in sel) return `search "${sel.query}"`;
  if ('hold' in sel) return `legal hold ${sel.hold}`;
  if ('targets' in sel) return `archives of ${describeTargets(sel.targets)}`;
  if ('messages' in sel) return `${sel.messages.length} selected ${sel.messages.length === 1 ? 'message' : 'messages'}`;
  return `archive of ${sel.user}${sel.folder ? ` / ${sel.folder}` : ''}`;
}

/** The id of the export form, which the pick checkboxes of a result or folder list belong to. */
export const EXPORT_FORM_ID = 'export';

/** A checkbox that picks one message for "Export selected" (it belongs to the export form by its id). */
export function pickBox(user: string, folder: string, uid: number, subject: string): Html {
  return html`<input type="checkbox" name="pick" value="${`${uid}:${user}:${folder}`}" form="${EXPORT_FORM_ID}" aria-label="Select “${subject || '(no subject)'}”">`;
}

/**
 * The export button with its format choice; `fields` say what to export (query, or user and folder).
 * With `picks` the form also has "Export selected", which exports only the checked messages.
 */
export function exportForm(ctx: Ctx, fields: Record<string, string>, label: string, picks = false): Html {
  return html`<form class="inline export" id="${EXPORT_FORM_ID}" method="post" action="/exports"><input type="hidden" name="_csrf" value="${ctx.session.csrf}">
${Object.entries(fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
<label for="format">${label}</label> <select id="format" name="format"><option value="mbox">mbox</option><option value="zip">zip of .eml</option><option value="eml">.eml files (zip)</option></select> <button type="submit">Export</button>
${picks ? html` <button type="submit" name="picked" value="1">Export selected</button>` : ''}</form>`;
}

/** Picked messages from the form ("UID:USER:FOLDER" each; user names hold no colon), else a 400. */
function picksOf(form: URLSearchParams): ExportPick[] {
  const values = form.getAll('pick');
  if (values.length === 0) throw new WebError(400, 'Select the messages to export first (the boxes in the list).');
  if (values.length > MAX_PICKS) throw new WebError(400, `At most ${MAX_PICKS} messages can be exported as a selection.`);
  return values.map((v) => {
    const m = /^(\d{1,10}):([^:]{1,64}):([^\u0000-\u001f]{1,1024})$/.exec(v);
    const uid = Number(m?.[1]);
    if (!m || !USER_NAME.test(m[2] as string) || uid < 1 || uid > 0xffffffff) throw new WebError(400, 'A selected message is not valid; reload the page and try again.');
    return { user: m[2] as string, folder: m[3] as string, uid };
  });
}

export function addExportPages(deps: WebDeps): void {
  const { server } = deps;
  const counts = new Map<string, { at: number; n: number; complete: boolean }>();

  const service = (): NonNullable<ReturnType<WebDeps['exports']>> => {
    const s = deps.exports();
    if (!s) throw new WebError(503, 'Exports are not available on this server.');
    return s;
  };

  server.add('GET', '/exports', async (ctx: Ctx) => {
    const list = service().list(ctx.user.name);
    const body = list.length === 0
      ? notice('info', ctx.viewer.export ? 'You have no exports. Start one from a search (the Export button under the results), an archive, a folder, or messages ticked in a list.' : 'You have no exports. Exports need the "export" privilege.')
      : html`<table class="list"><thead><tr><th scope="col">Started</th><th scope="col">What</th><th scope="col">Format</th><th scope="col">Status</th><th scope="col">Messages</th></tr></thead>
<tbody>${list.map((r) => html`<tr><td class="date">${formatDate(r.createdAt)}</td><td><a href="/exports/view${qs({ id: r.id })}">${describe(r.selection)}</a></td><td>${r.format}</td>
<td class="status-${r.status}">${statusText(r)}</td><td>${r.counts.exported}${r.counts.failed > 0 ? ` (${r.counts.failed} failed)` : ''}</td></tr>`)}</tbody></table>`;
    sendPage(ctx.res, 200, page('Exports', layoutUser(ctx), html`<h1>Exports</h1>${body}`, '/exports'), ctx.secure);
  });

  server.add('POST', '/exports', async (ctx: Ctx) => {
    const format = ctx.form.get('format') ?? 'mbox';
    if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new WebError(400, `Format must be one of ${EXPORT_FORMATS.join(', ')}.`);
    const query = ctx.form.get('query');
    const hold = ctx.form.get('hold');
    const user = ctx.form.get('user');
    const folder = ctx.form.get('folder');
    let selection: ExportSelection;
    if (ctx.form.get('picked') === '1') selection = { messages: picksOf(ctx.form) };
    else if (query !== null && query.trim() !== '') selection = { query: query.slice(0, 2000) };
    else if (hold !== null && hold !== '') selection = { hold: textParam(hold, 'hold', 64) };
    else if (user !== null && user !== '') {
      selection = { user: textParam(user, 'user', 64), ...(folder !== null && folder !== '' ? { folder: textParam(folder, 'folder', 1024) } : {}) };
    } else throw new WebError(400, 'Say what to export: a search query, an archive or folder, or a legal hold.');
    let rec: ExportRecord;
    try {
      rec = await service().create(ctx.user.name, ctx.remote, selection, format as ExportFormat);
    } catch (err) {
      if (isPosternError(err, 'UNAVAILABLE')) throw new WebError(429, errorMessage(err));
      throw err;
    }
    redirect(ctx.res, `/exports/view${qs({ id: rec.id })}`, ctx.secure);
  });

  server.add('GET', '/exports/view', async (ctx: Ctx) => {
    const id = textParam(ctx.url.searchParams.get('id'), 'id', 64);
    const r = service().get(ctx.user.name, id);
    const running = r.status === 'queued' || r.status === 'running';
    const file = r.file;
    const body = html`<h1>Export of ${describe(r.selection)}</h1>
<p class="status-${r.status}" role="status">Status: <strong>${statusText(r)}</strong>${running ? ' (this page refreshes itself)' : ''}</p>
<dl class="facts"><dt>Format</dt><dd>${r.format}</dd><dt>Started</dt><dd>${formatDate(r.createdAt)}</dd><dt>Ended</dt><dd>${formatDate(r.endedAt)}</dd>
<dt>Messages</dt><dd>${r.counts.exported} exported of ${r.counts.selected} selected${r.counts.failed > 0 ? `, ${r.counts.failed} failed` : ''} (${formatSize(r.counts.bytes)})</dd>
${file ? html`<dt>File</dt><dd>${file.name}, ${formatSize(file.size)}<br><span class="meta">SHA-256 ${file.sha256}</span></dd>` : ''}
${r.manifest ? html`<dt>Manifest SHA-256</dt><dd class="meta">${r.manifest.sha256} (in the audit log)</dd>` : ''}
<dt>Kept until</dt><dd>${formatDate(r.expiresAt)}</dd></dl>
${file ? html`<p><a class="button" href="/exports/file${qs({ id: r.id })}" download>Download ${file.name}</a></p>` : ''}
${r.errors.length > 0 ? html`<details><summary>Problems (${r.errors.length})</summary><ul>${r.errors.map((e) => html`<li>${e}</li>`)}</ul></details>` : ''}
<p><a href="/exports">All exports</a></p>`;
    sendPage(ctx.res, 200, page('Export', layoutUser(ctx), body, '/exports'), ctx.secure, running ? { refresh: '2' } : {});
  });

  server.add('GET', '/exports/file', async (ctx: Ctx) => {
    const id = textParam(ctx.url.searchParams.get('id'), 'id', 64);
    const { info, stream } = await service().open(ctx.user.name, id, 'file', ctx.remote);
    ctx.res.writeHead(200, {
      ...securityHeaders("default-src 'none'; frame-ancestors 'none'; sandbox", ctx.secure), 'content-type': 'application/octet-stream',
      'content-length': info.size, 'content-disposition': dispositionOf(info.name, 'export.bin'), 'cache-control': 'no-store',
    });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (!ctx.res.write(chunk)) await new Promise((resolve) => ctx.res.once('drain', resolve));
    }
    ctx.res.end();
  });

  /** Messages a hold covers, counted for at most COUNT_BUDGET_MS (cached for a minute). */
  const countHeld = async (name: string): Promise<{ n: number; complete: boolean }> => {
    const cached = counts.get(name);
    if (cached && Date.now() - cached.at < COUNT_CACHE_MS) return cached;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), COUNT_BUDGET_MS);
    let n = 0;
    let complete = true;
    try {
      for await (const s of selectEntries(deps.selection, { hold: name }, 'all', controller.signal)) if (s.ok) n++;
    } catch (err) {
      if (!controller.signal.aborted) throw err;
      complete = false;
    } finally {
      clearTimeout(timer);
    }
    const out = { at: Date.now(), n, complete };
    counts.set(name, out);
    return out;
  };

  server.add('GET', '/holds', async (ctx: Ctx) => {
    if (!seesHolds(ctx.viewer)) throw new WebError(403, 'Legal holds are shown to compliance officers, auditors and administrators.');
    const store = deps.archive.retention();
    const [holds, everything] = await Promise.all([store.listHolds(), store.holdEverything()]);
    // As core/export/access.ts decides: a hold spans archives, so only those who may export any archive.
    const canExportHolds = ctx.viewer.export && (ctx.viewer.auditor || (ctx.viewer.admin && !deps.previewBlocking));
    const rows = [];
    for (const h of holds) {
      const c = await countHeld(h.name);
      const scope = [
        h.scope.users ? `users ${h.scope.users.join(', ')}` : '', h.scope.addresses ? `addresses ${h.scope.addresses.join(', ')}` : '',
        h.scope.dateRange ? `${h.scope.dateRange.field} ${h.scope.dateRange.from?.slice(0, 10) ?? '…'} to ${h.scope.dateRange.to?.slice(0, 10) ?? '…'}` : '',
        h.scope.query ? `query ${h.scope.query}` : '',
      ].filter((s) => s !== '').join('; ') || 'everything';
      rows.push(html`<tr><td><strong>${h.name}</strong>${h.description ? html`<br><span class="meta">${h.description}</span>` : ''}</td><td>${scope}</td>
<td>${c.complete ? '' : 'at least '}${c.n}</td><td class="date">${formatDate(h.createdAt)}<br><span class="meta">by ${h.createdBy}</span></td>
<td>${canExportHolds ? html`<form method="post" action="/exports"><input type="hidden" name="_csrf" value="${ctx.session.csrf}"><input type="hidden" name="hold" value="${h.name}">
<label class="sr-only" for="f-${h.name}">Format</label><select id="f-${h.name}" name="format"><option value="zip">zip</option><option value="mbox">mbox</option></select> <button type="submit">Export</button></form>` : html`<span class="meta">exporting a hold needs the export privilege and the auditor or admin privilege${deps.previewBlocking ? ' (auditor under preview blocking)' : ''}</span>`}</td></tr>`);
    }
    const body = holds.length === 0
      ? notice('info', 'There are no active legal holds.')
      : html`<table class="list"><thead><tr><th scope="col">Case</th><th scope="col">Covers</th><th scope="col">Messages</th><th scope="col">Created</th><th scope="col">Export</th></tr></thead><tbody>${rows}</tbody></table>`;
    sendPage(ctx.res, 200, page('Legal holds', layoutUser(ctx), html`<h1>Legal holds</h1>
${everything.stored || everything.configured ? notice('info', 'Hold everything is on: no message can be deleted or purged.') : ''}${body}`, '/holds'), ctx.secure);
  });
}
