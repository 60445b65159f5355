// Sanitising an HTML mail body for display (sanitize-html with an allow-list), so that nothing in it runs
// and nothing is fetched from elsewhere: no scripts, event handlers, forms, frames, objects, <link>,
// <meta> or <base>; <style> sheets only as mail-css.ts reduces them (plain rules, safe declarations); images only from data: URLs (cid: references to the message's own inline
// images become data: URLs, every other src is removed and the image replaced by its alt text); no
// srcset or background attributes; inline styles keep only declarations without url(), image-set(),
// expression(), escapes or @import. Links keep http(s) and mailto and open in a new tab without a
// referrer. The result is served inside a sandboxed frame under a CSP that blocks remote loads anyway
// (defence in depth: either alone keeps tracking pixels out). Trusts nothing in the input.
import sanitizeHtml from 'sanitize-html';
import { safeStyleSheet, styleSheets } from './mail-css.ts';

const TAGS = [
  'a', 'abbr', 'address', 'article', 'b', 'big', 'blockquote', 'br', 'caption', 'center', 'cite', 'code', 'col', 'colgroup',
  'dd', 'del', 'details', 'dfn', 'div', 'dl', 'dt', 'em', 'figcaption', 'figure', 'font', 'footer', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
  'header', 'hr', 'i', 'img', 'ins', 'kbd', 'li', 'main', 'mark', 'ol', 'p', 'pre', 'q', 's', 'samp', 'section', 'small', 'span',
  'strike', 'strong', 'sub', 'summary', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'tt', 'u', 'ul', 'var', 'wbr',
];
const COMMON_ATTRIBUTES = [
  'style', 'title', 'align', 'valign', 'dir', 'lang', 'width', 'height', 'bgcolor', 'color', 'border', 'cellpadding', 'cellspacing',
  'colspan', 'rowspan', 'face', 'size', 'nowrap',
];
/** A declaration that could load something or hide code: dropped whole. */
const UNSAFE_STYLE = /url\s*\(|image-set|image\s*\(|expression\s*\(|@import|\\|javascript:|behavior|-moz-binding|&#|\/\*/i;

/** Inline style with every declaration that could fetch or run something removed. */
export function safeStyle(style: string): string {
  return style.split(';').map((d) => d.trim()).filter((d) => d !== '' && d.includes(':') && !UNSAFE_STYLE.test(d)).join('; ');
}

export interface SanitizeResult {
  html: string;
  /** The mail's own style sheets, reduced to safe rules (mail-css.ts), for the frame's head. */
  css: string;
  /** Remote images (and other remote references) removed. */
  blocked: number;
}

/** The sanitised body; `images` maps lower-cased Content-IDs to data: URLs of the message's inline images. */
export function sanitizeMailHtml(input: string, images: ReadonlyMap<string, string>): SanitizeResult {
  let blocked = 0;
  const html = sanitizeHtml(input, {
    allowedTags: TAGS,
    allowedAttributes: { '*': [...COMMON_ATTRIBUTES, 'class'], a: ['href', 'name', 'target', 'rel'], img: ['src', 'alt', 'width', 'height'] },
    allowedSchemes: ['http', 'https', 'mailto'],
    allowedSchemesByTag: { img: ['data'] },
    allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
    allowProtocolRelative: false,
    // Everything not allowed goes with its content when that content is code or styling, else unwrapped.
    disallowedTagsMode: 'discard',
    nonTextTags: ['script', 'style', 'textarea', 'option', 'noscript', 'title', 'head', 'template', 'xmp', 'iframe', 'object', 'svg', 'math'],
    transformTags: {
      '*': (tagName, attribs) => {
        const out = { ...attribs };
        if (out['style'] !== undefined) {
          const kept = safeStyle(out['style']);
          if (kept !== out['style'].trim()) blocked++;
          if (kept === '') delete out['style'];
          else out['style'] = kept;
        }
        return { tagName, attribs: out };
      },
      img: (tagName, attribs) => {
        const src = (attribs['src'] ?? '').trim();
        const out: Record<string, string> = {};
        for (const k of ['alt', 'width', 'height', 'style']) if (attribs[k] !== undefined) out[k] = attribs[k];
        if (out['style'] !== undefined) {
          const kept = safeStyle(out['style']);
          if (kept === '') delete out['style'];
          else out['style'] = kept;
        }
        if (/^cid:/i.test(src)) {
          const data = images.get(decodeURIComponentSafe(src.slice(4)).toLowerCase());
          if (data) return { tagName, attribs: { ...out, src: data } };
        } else if (/^data:image\/(png|gif|jpeg|webp);base64,[A-Za-z0-9+/=\s]*$/i.test(src)) {
          return { tagName, attribs: { ...out, src } };
        }
        if (src !== '') blocked++;
        return { tagName: 'span', attribs: { class: 'blocked-image' }, text: `[image${out['alt'] ? `: ${out['alt']}` : ''}]` };
      },
      a: (tagName, attribs) => {
        const out: Record<string, string> = {};
        if (attribs['href'] !== undefined) {
          out['href'] = attribs['href'];
          out['target'] = '_blank';
          out['rel'] = 'noopener noreferrer';
        }
        if (attribs['name'] !== undefined) out['name'] = attribs['name'];
        if (attribs['title'] !== undefined) out['title'] = attribs['title'];
        if (attribs['style'] !== undefined) {
          const kept = safeStyle(attribs['style']);
          if (kept !== '') out['style'] = kept;
        }
        return { tagName, attribs: out };
      },
    },
  });
  const counter = { dropped: 0 };
  const css = styleSheets(input).map((sheet) => safeStyleSheet(sheet, counter)).filter((x) => x !== '').join('\n');
  return { html, css, blocked: blocked + counter.dropped };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The document served inside the sandboxed frame; `css` (already reduced, no "<") after our defaults. */
export function framedDocument(body: string, css = ''): string {
  return '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
    + '<style>body{font-family:system-ui,sans-serif;margin:8px;overflow-wrap:anywhere;color:#111;background:#fff}'
    + 'img{max-width:100%;height:auto}table{max-width:100%}.blocked-image{color:#666;font-style:italic}</style>'
    + (css !== '' && !css.includes('<') ? `<style>${css}</style>` : '')
    + `</head><body>${body}</body></html>`;
}
