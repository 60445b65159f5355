// Browsing: the archives a user may open (their own; auditors and administrators every user's and the
// unassigned archive), each archive's folder tree with message counts, and a folder's messages in pages
// of UIDs (archive.listEntries). Each folder page is reported on the `access` hook ("list"). Those who may
// export the archive get an export button for the whole archive and for each folder page.
import { isSystemUser, type ArchiveEntry, type FolderStatus } from '../../core/storage/types.ts';
import { mayExportArchive, seesEveryArchive } from './access.ts';
import { formatDate, formatSize, html, notice, page, qs, type Html } from './html.ts';
import { sendPage, WebError, type Ctx } from './server.ts';
import { layoutUser, reportAccess, requireRead, textParam, type WebDeps } from './deps.ts';
import { exportForm, pickBox } from './pages-export.ts';

interface TreeNode {
  name: string;
  path: string;
  status: FolderStatus | null;
  children: TreeNode[];
}

/** Folders "a/b/c" as a tree (a parent without entries of its own is shown without a link). */
export function folderTree(folders: FolderStatus[]): TreeNode[] {
  const root: TreeNode = { name: '', path: '', status: null, children: [] };
  for (const f of [...folders].sort((a, b) => a.folder.localeCompare(b.folder))) {
    let node = root;
    const parts = f.folder.split('/');
    parts.forEach((name, i) => {
      const path = parts.slice(0, i + 1).join('/');
      let child = node.children.find((c) => c.path === path);
      if (!child) {
        child = { name, path, status: null, children: [] };
        node.children.push(child);
      }
      node = child;
    });
    node.status = f;
  }
  return root.children;
}

function treeHtml(user: string, nodes: TreeNode[]): Html {
  return html`<ul class="tree">${nodes.map((n) => html`<li>${n.status
    ? html`<a href="/folder${qs({ user, folder: n.status.folder })}">${n.name}</a> <span class="n">${n.status.messages}</span>`
    : html`<span>${n.name}</span>`}${n.children.length > 0 ? treeHtml(user, n.children) : ''}</li>`)}</ul>`;
}

export function addArchivePages(deps: WebDeps): void {
  const { server, archive } = deps;

  const archiveExport = (ctx: Ctx, user: string): Html | string =>
    mayExportArchive(ctx.viewer, user, deps.previewBlocking) ? exportForm(ctx, { user }, 'Export the whole archive as') : '';

  server.add('GET', '/archives', async (ctx: Ctx) => {
    if (!seesEveryArchive(ctx.viewer)) {
      const folders = await archive.folders(ctx.user.name);
      return sendPage(ctx.res, 200, page('Your archive', layoutUser(ctx), html`<h1>Your archive</h1>
${folders.length === 0 ? notice('info', 'No mail has been archived for you yet.') : html`${treeHtml(ctx.user.name, folderTree(folders))}${archiveExport(ctx, ctx.user.name)}`}`, '/archives'), ctx.secure);
    }
    const names = (await archive.listUsers()).map((u) => u.name);
    if (!names.includes(deps.unmatchedUser)) names.push(deps.unmatchedUser);
    const rows = await Promise.all(names.sort().map(async (name) => {
      const folders = await archive.folders(name);
      const count = folders.reduce((n, f) => n + f.messages, 0);
      if (isSystemUser(name) && count === 0) return html``;
      return html`<li><a href="/archive${qs({ user: name })}">${name}</a> <span class="n">${count}</span>${isSystemUser(name) ? html` <span class="tag">unassigned mail</span>` : ''}</li>`;
    }));
    sendPage(ctx.res, 200, page('Archives', layoutUser(ctx), html`<h1>Archives</h1>
${deps.previewBlocking && !ctx.viewer.auditor ? notice('info', 'Preview blocking is on: you see only from, to, subject and date of other users\' mail.') : ''}
<ul class="archives">${rows}</ul>`, '/archives'), ctx.secure);
  });

  server.add('GET', '/archive', async (ctx: Ctx) => {
    const user = textParam(ctx.url.searchParams.get('user'), 'user', 64);
    requireRead(deps, ctx, user);
    const folders = await archive.folders(user);
    const body = folders.length === 0
      ? notice('info', user === ctx.user.name ? 'No mail has been archived for you yet.' : `No mail has been archived for "${user}".`)
      : html`${treeHtml(user, folderTree(folders))}${archiveExport(ctx, user)}`;
    sendPage(ctx.res, 200, page(`Archive of ${user}`, layoutUser(ctx), html`<h1>Archive of ${user}</h1>
<p><a href="/search${qs({ user })}">Search this archive</a></p>${body}`, '/archives'), ctx.secure);
  });

  server.add('GET', '/folder', async (ctx: Ctx) => {
    const user = textParam(ctx.url.searchParams.get('user'), 'user', 64);
    const folder = textParam(ctx.url.searchParams.get('folder'), 'folder', 1024);
    const afterText = ctx.url.searchParams.get('after') ?? '0';
    if (!/^\d{1,10}$/.test(afterText)) throw new WebError(400, 'Parameter "after" must be a number.');
    const after = Number(afterText);
    requireRead(deps, ctx, user);
    const status = (await archive.folders(user)).find((f) => f.folder === folder);
    if (!status) throw new WebError(404, `The archive of "${user}" has no folder "${folder}".`);
    const size = deps.config.pageSize;
    const entries = await archive.listEntries(user, folder, { afterUid: after, limit: size + 1 });
    const shown = entries.slice(0, size);
    await reportAccess(deps, ctx, user, folder, null, 'list');
    const picking = mayExportArchive(ctx.viewer, user, deps.previewBlocking);
    const row = (e: ArchiveEntry): Html => html`<tr>${picking ? html`<td class="pick">${pickBox(user, folder, e.uid, e.subject)}</td>` : ''}<td class="uid">${e.uid}</td><td class="date">${formatDate(e.date)}</td><td class="from">${e.from || '—'}</td>
<td class="subject"><a href="/message${qs({ user, folder, uid: e.uid })}">${e.subject || '(no subject)'}</a></td><td class="size">${formatSize(e.size)}</td></tr>`;
    const last = shown[shown.length - 1];
    const next = entries.length > size && last ? html`<a class="button" rel="next" href="/folder${qs({ user, folder, after: last.uid })}">Next ${size}</a>` : '';
    const first = after > 0 ? html`<a class="button" href="/folder${qs({ user, folder })}">First page</a>` : '';
    const newest = status.uidNext - 1 - size > after ? html`<a class="button" href="/folder${qs({ user, folder, after: Math.max(0, status.uidNext - 1 - size) })}">Newest</a>` : '';
    const body = shown.length === 0
      ? notice('info', after > 0 ? 'No more messages in this folder.' : 'This folder is empty.')
      : html`<table class="list"><caption class="sr-only">Messages in ${folder}, oldest first</caption>
<thead><tr>${picking ? html`<th scope="col"><span class="sr-only">Select</span></th>` : ''}<th scope="col">UID</th><th scope="col">Date</th><th scope="col">From</th><th scope="col">Subject</th><th scope="col">Size</th></tr></thead>
<tbody>${shown.map(row)}</tbody></table>`;
    sendPage(ctx.res, 200, page(`${folder} · ${user}`, layoutUser(ctx), html`<h1>${folder} <small>of ${user}</small></h1>
<p class="count">${status.messages} ${status.messages === 1 ? 'message' : 'messages'}, oldest first. <a href="/archive${qs({ user })}">All folders</a></p>
${body}<nav class="pager" aria-label="Folder pages">${first} ${next} ${newest}</nav>
${shown.length > 0 && picking ? exportForm(ctx, { user, folder }, 'Export this folder as', true) : ''}`, '/archives'), ctx.secure);
  });
}
