// Server-side HTML: a tagged template that escapes every interpolated value unless it is already Html,
// the page layout (skip link, navigation, sign-out form with its CSRF token, one stylesheet, no script),
// and small shared pieces (dates, sizes, notices). Everything the pages show from mail or users passes
// through esc(); nothing here trusts its values.

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export function esc(value: string): string {
  return value.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

function part(v: unknown): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(part).join('');
  return esc(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += part(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

/** A query string from parameters (undefined and null left out). */
export function qs(params: Record<string, string | number | null | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.set(k, String(v));
  const s = u.toString();
  return s === '' ? '' : `?${s}`;
}

export function formatDate(iso: string | null): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toISOString().slice(0, 16).replace('T', ' ');
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export interface LayoutUser {
  name: string;
  csrf: string;
  holds: boolean;
}

/** A whole page. `user` null for pages shown before sign-in. */
export function page(title: string, user: LayoutUser | null, body: Html, current = ''): string {
  const link = (href: string, label: string): Html =>
    html`<a href="${href}"${current === href ? new Html(' aria-current="page"') : ''}>${label}</a>`;
  const nav = user
    ? html`<nav aria-label="Main">${link('/search', 'Search')} ${link('/archives', 'Archives')} ${user.holds ? link('/holds', 'Legal holds') : ''} ${link('/exports', 'Exports')}</nav>
<form class="signout" method="post" action="/signout"><input type="hidden" name="_csrf" value="${user.csrf}"><span class="who">${user.name}</span> <button type="submit">Sign out</button></form>`
    : '';
  return `<!doctype html>
${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${title} · Postern</title><link rel="stylesheet" href="/assets/web.css"></head>
<body><a class="skip" href="#main">Skip to content</a>
<header class="top"><a class="brand" href="/search">Postern</a>${nav}</header>
<main id="main" tabindex="-1">${body}</main></body></html>`.text}
`;
}

export function notice(kind: 'error' | 'info', text: string | Html): Html {
  return html`<p class="notice ${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${text}</p>`;
}
