// One message: headers, the plain-text body, the HTML body sanitised (sanitize.ts) in a sandboxed frame
// served by its own route under a CSP that allows nothing remote, attachments to download, the original
// (.eml, the archived bytes unaltered), the message's captures (envelopes, journal provenance) and what
// protects it (retention, legal holds). Under preview blocking an administrator sees only from, to,
// subject and date of other users' mail: the body, attachment and original routes refuse (403). Every
// read is reported on the `access` hook (view, download-original, download-attachment).
import type { ServerResponse } from 'node:http';
import type { ArchiveEntry, CaptureRecord, MessageRecord } from '../../core/storage/types.ts';
import { formatDate, formatSize, html, notice, page, qs, type Html } from './html.ts';
import { inlineImages, parseMessage, partOf, type MessagePart } from './message-parts.ts';
import { framedDocument, sanitizeMailHtml } from './sanitize.ts';
import { securityHeaders, sendPage, WebError, type Ctx } from './server.ts';
import { layoutUser, reportAccess, requireRead, textParam, uidParam, type WebDeps } from './deps.ts';

const FRAME_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox";
const DOWNLOAD_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox";

interface Located {
  user: string;
  folder: string;
  uid: number;
  entry: ArchiveEntry;
  message: MessageRecord;
  level: 'full' | 'headers';
}

async function locate(deps: WebDeps, ctx: Ctx): Promise<Located> {
  const user = textParam(ctx.url.searchParams.get('user'), 'user', 64);
  const folder = textParam(ctx.url.searchParams.get('folder'), 'folder', 1024);
  const uid = uidParam(ctx.url.searchParams.get('uid'), 'uid');
  const level = requireRead(deps, ctx, user);
  const entry = await deps.archive.getEntry(user, folder, uid);
  if (!entry) throw new WebError(404, `There is no message ${uid} in "${folder}" of "${user}".`);
  const message = await deps.archive.getMessage(entry.messageId);
  if (!message) throw new WebError(404, 'The message of this entry is missing from the archive.');
  return { user, folder, uid, entry, message, level };
}

function requireFull(loc: Located): void {
  if (loc.level !== 'full') throw new WebError(403, 'Preview blocking is on: administrators see only from, to, subject and date of other users\' mail.');
}

async function readRaw(deps: WebDeps, message: MessageRecord, limit: number): Promise<Buffer | null> {
  if (message.size > limit) return null;
  const stream = await deps.archive.openBlob(message.blobId);
  if (!stream) throw new WebError(404, 'The original bytes of this message are missing from the archive.');
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      return null;
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts, size);
}

/** A file name safe in a header and on any file system; the original in filename* (RFC 6266). */
export function dispositionOf(name: string, fallback: string): string {
  const clean = name.replace(/[\u0000-\u001f\u007f/\\:*?"<>|]/g, '_').replace(/^\.+/, '').trim().slice(0, 200) || fallback;
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_').replace(/[%;]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(clean).replace(/['()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

function download(res: ServerResponse, secure: boolean, type: string, filename: string, size: number): void {
  res.writeHead(200, {
    ...securityHeaders(DOWNLOAD_CSP, secure), 'content-type': type, 'content-length': size,
    'content-disposition': filename, 'cache-control': 'no-store',
  });
}

function capturesHtml(captures: CaptureRecord[]): Html {
  if (captures.length === 0) return notice('info', 'No capture is recorded for this message.');
  return html`<ol class="captures">${captures.map((c) => html`<li><dl class="facts">
<dt>Captured</dt><dd>${formatDate(c.receivedAt)} via ${c.listener}</dd>
<dt>Envelope sender</dt><dd>${c.mailFrom || '<>'}</dd>
<dt>Envelope recipients</dt><dd>${c.rcptTo.join(', ') || '—'}</dd>
<dt>Client</dt><dd>${c.client || '—'}${c.helo ? ` (${c.helo})` : ''}</dd>
${c.journal ? html`<dt>Journal report</dt><dd>${c.journal.kind} (${c.journal.style}, ${c.journal.role})${c.journal.sender ? `, sender ${c.journal.sender}` : ''}${c.journal.onBehalfOf ? `, on behalf of ${c.journal.onBehalfOf}` : ''}
<ul>${c.journal.recipients.map((r) => html`<li>${r.field}: ${r.address}${r.expandedFrom ? ` (expanded from ${r.expandedFrom})` : ''}${r.forwardedFrom ? ` (forwarded from ${r.forwardedFrom})` : ''}</li>`)}</ul>
${c.journal.problems.length > 0 ? html`<p>Problems: ${c.journal.problems.join('; ')}</p>` : ''}</dd>` : ''}
</dl></li>`)}</ol>`;
}

function attachmentsHtml(base: { user: string; folder: string; uid: number }, parts: MessagePart[]): Html {
  if (parts.length === 0) return html``;
  return html`<section aria-labelledby="att-title"><h2 id="att-title">Attachments</h2><ul class="attachments">${parts.map((p) => html`<li>
<a href="/message/part${qs({ ...base, part: p.index })}" download>${p.filename || `part ${p.index + 1}`}</a> <span class="meta">${p.type}, ${formatSize(p.size)}${p.inline ? ', inline' : ''}</span></li>`)}</ul></section>`;
}

export function addMessagePages(deps: WebDeps): void {
  const { server, archive } = deps;

  server.add('GET', '/message', async (ctx: Ctx) => {
    const loc = await locate(deps, ctx);
    const { user, folder, uid, message } = loc;
    const base = { user, folder, uid };
    await reportAccess(deps, ctx, user, folder, uid, 'view');
    const summary = html`<dl class="headers"><dt>From</dt><dd>${message.from || '—'}</dd><dt>To</dt><dd>${message.to || '—'}</dd>
${loc.level === 'full' && message.cc ? html`<dt>Cc</dt><dd>${message.cc}</dd>` : ''}<dt>Date</dt><dd>${formatDate(message.date)}</dd>
<dt>Subject</dt><dd>${message.subject || '(no subject)'}</dd>${loc.level === 'full' && message.messageIdHeader ? html`<dt>Message-ID</dt><dd>${message.messageIdHeader}</dd>` : ''}</dl>`;
    const back = html`<p class="crumbs"><a href="/archive${qs({ user })}">${user}</a> / <a href="/folder${qs({ user, folder })}">${folder}</a> / ${uid}</p>`;
    if (loc.level === 'headers') {
      return sendPage(ctx.res, 200, page(message.subject || 'Message', layoutUser(ctx), html`${back}<h1>${message.subject || '(no subject)'}</h1>${summary}
${notice('info', 'Preview blocking is on: administrators see only from, to, subject and date of other users\' mail.')}`), ctx.secure);
    }
    const raw = await readRaw(deps, message, deps.config.maxViewBytes);
    const parsed = raw ? parseMessage(raw) : null;
    const ref = { user, folder, uid };
    const [hold, holdsList] = await Promise.all([archive.retention().holdStatus(ref), archive.retention().listHolds()]);
    const holdNames = new Set(holdsList.map((h) => h.name));
    const body: Html[] = [];
    if (!parsed) body.push(notice('info', `This message (${formatSize(message.size)}) is too large to show here; download the original.`));
    else {
      if (parsed.html !== null) {
        body.push(html`<iframe class="mail-html" title="Message body (HTML, remote content blocked)" sandbox="allow-popups allow-popups-to-escape-sandbox" referrerpolicy="no-referrer" src="/message/html${qs(base)}"></iframe>
<p class="hint">Shown without scripts, remote images or other remote content.</p>`);
        if (parsed.text !== null) body.push(html`<details><summary>Plain-text version</summary><pre class="mail-text">${parsed.text}</pre></details>`);
      } else if (parsed.text !== null) body.push(html`<pre class="mail-text">${parsed.text}</pre>`);
      else body.push(notice('info', 'This message has no text to show.'));
    }
    const retention = hold.retention;
    const protection = html`<dl class="facts"><dt>Deletable now</dt><dd>${hold.held ? 'No' : 'Yes'}</dd>
<dt>Retained until</dt><dd>${retention?.retainUntil ? formatDate(retention.retainUntil) : 'no minimum'}</dd>
<dt>Purged after</dt><dd>${retention?.purgeAfter ? formatDate(retention.purgeAfter) : 'never automatically'}</dd>
<dt>Protected by</dt><dd>${hold.reasons.length === 0 ? 'nothing' : html`<ul>${hold.reasons.map((r) => html`<li>${r.startsWith('hold:')
      ? html`legal hold ${holdNames.has(r.slice(5)) && ctx.viewer.compliance ? html`<a href="/holds">${r.slice(5)}</a>` : r.slice(5)}`
      : r.startsWith('retention:') ? `retention until ${formatDate(r.slice(10))}` : r === 'hold-everything' ? 'hold on everything' : r}</li>`)}</ul>`}</dd></dl>`;
    sendPage(ctx.res, 200, page(message.subject || 'Message', layoutUser(ctx), html`${back}<h1>${message.subject || '(no subject)'}</h1>${summary}
<p class="actions"><a class="button" href="/message/raw${qs(base)}" download>Download original (.eml)</a> <span class="meta">${formatSize(message.size)}</span></p>
${body}${parsed ? attachmentsHtml(base, parsed.attachments) : ''}
${parsed ? html`<details><summary>All header fields</summary><dl class="all-headers">${parsed.headers.map((h) => html`<dt>${h.name}</dt><dd>${h.value}</dd>`)}</dl></details>` : ''}
<section aria-labelledby="cap-title"><h2 id="cap-title">Captures</h2>${capturesHtml(message.captures)}</section>
<section aria-labelledby="ret-title"><h2 id="ret-title">Retention and holds</h2>${protection}</section>
${message.flags.length > 0 ? html`<section aria-labelledby="flag-title"><h2 id="flag-title">Problems found while archiving</h2><ul>${message.flags.map((f) => html`<li>${f}</li>`)}</ul></section>` : ''}
<p class="meta">Archived ${formatDate(message.archivedAt)} · SHA-256 ${message.blobId}</p>`), ctx.secure);
  });

  server.add('GET', '/message/html', async (ctx: Ctx) => {
    const loc = await locate(deps, ctx);
    requireFull(loc);
    const raw = await readRaw(deps, loc.message, deps.config.maxViewBytes);
    if (!raw) throw new WebError(413, 'This message is too large to show.');
    const parsed = parseMessage(raw);
    if (parsed.html === null) throw new WebError(404, 'This message has no HTML body.');
    await reportAccess(deps, ctx, loc.user, loc.folder, loc.uid, 'view');
    const clean = sanitizeMailHtml(parsed.html, inlineImages(raw, 8 * 1024 * 1024));
    const bytes = Buffer.from(framedDocument(clean.html, clean.css), 'utf8');
    ctx.res.writeHead(200, { ...securityHeaders(FRAME_CSP, ctx.secure), 'content-type': 'text/html; charset=utf-8', 'content-length': bytes.length, 'cache-control': 'no-store' });
    ctx.res.end(bytes);
  });

  server.add('GET', '/message/raw', async (ctx: Ctx) => {
    const loc = await locate(deps, ctx);
    requireFull(loc);
    const stream = await archive.openBlob(loc.message.blobId);
    if (!stream) throw new WebError(404, 'The original bytes of this message are missing from the archive.');
    await reportAccess(deps, ctx, loc.user, loc.folder, loc.uid, 'download-original');
    download(ctx.res, ctx.secure, 'message/rfc822', dispositionOf(`${loc.user}-${loc.folder}-${loc.uid}.eml`, 'message.eml'), loc.message.size);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (!ctx.res.write(chunk)) await new Promise((resolve) => ctx.res.once('drain', resolve));
    }
    ctx.res.end();
  });

  server.add('GET', '/message/part', async (ctx: Ctx) => {
    const loc = await locate(deps, ctx);
    requireFull(loc);
    const partText = ctx.url.searchParams.get('part') ?? '';
    if (!/^\d{1,4}$/.test(partText)) throw new WebError(400, 'Parameter "part" must be a number.');
    const raw = await readRaw(deps, loc.message, deps.config.maxViewBytes);
    if (!raw) throw new WebError(413, 'This message is too large to take apart here; download the original.');
    const found = partOf(raw, Number(partText));
    if (!found) throw new WebError(404, 'This message has no such part.');
    await reportAccess(deps, ctx, loc.user, loc.folder, loc.uid, 'download-attachment');
    download(ctx.res, ctx.secure, 'application/octet-stream', dispositionOf(found.part.filename, `part-${found.part.index + 1}.bin`), found.bytes.length);
    ctx.res.end(found.bytes);
  });
}
