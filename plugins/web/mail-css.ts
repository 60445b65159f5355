// The <style> sheets of an HTML mail, kept for display in the sandboxed frame but reduced to what cannot
// load or run anything: top-level rules only (every at-rule — @import, @font-face, @media, @keyframes —
// is dropped with its block), selectors without escapes or markup, declarations filtered like inline
// styles (safeStyle: no url(), image-set(), expression(), escapes, comments). Anything the small scanner
// does not understand is dropped. Bounded: at most MAX_CSS characters in and out.
// Trusts nothing in the input; the frame's CSP (no remote loads) stays the second line of defence.
import { safeStyle } from './sanitize.ts';

const MAX_CSS = 64 * 1024;
const SAFE_SELECTOR = /^[A-Za-z0-9\s.#*,:>+~\-_[\]="'()|^$]+$/;

/** Plain selectors only: parentheses just after a pseudo-class (:not(, :nth-child(), no escapes, comments, markup or url(. */
function safeSelector(selector: string): boolean {
  if (selector === '' || !SAFE_SELECTOR.test(selector) || /<|\\|\/\*|url\s*\(|expression|image-set/i.test(selector)) return false;
  return !selector.replace(/:[a-z-]+\(/gi, '').includes('(');
}

/** The text of every <style> element of an HTML document, in order (content only). */
export function styleSheets(html: string): string[] {
  const out: string[] = [];
  let total = 0;
  for (const m of html.matchAll(/<style\b[^>]*>([\s\S]*?)<\/style\s*>/gi)) {
    const css = m[1] ?? '';
    if (total + css.length > MAX_CSS) break;
    total += css.length;
    out.push(css);
  }
  return out;
}

/** The rules of a style sheet that are safe to show; "" when none. Counts dropped parts in `dropped`. */
export function safeStyleSheet(css: string, counter: { dropped: number } = { dropped: 0 }): string {
  const text = css.slice(0, MAX_CSS).replace(/<!--|-->/g, '');
  const rules: string[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{', i);
    if (open < 0) break;
    // At-rule statements without a block (@import …; @charset …;) end with ";": the selector follows them.
    const head = text.slice(i, open);
    const selector = head.slice(head.lastIndexOf(';') + 1).trim();
    if (head.lastIndexOf(';') >= 0) counter.dropped++;
    // The block's end, with nested braces counted (an at-rule's block holds rules).
    let depth = 1;
    let j = open + 1;
    for (; j < text.length && depth > 0; j++) {
      if (text[j] === '{') depth++;
      else if (text[j] === '}') depth--;
    }
    if (depth > 0) {
      counter.dropped++;
      break;
    }
    const body = text.slice(open + 1, j - 1);
    i = j;
    if (selector.startsWith('@') || /[{}]/.test(body) || !safeSelector(selector)) {
      counter.dropped++;
      continue;
    }
    const kept = safeStyle(body);
    if (kept !== body.split(';').map((d) => d.trim()).filter((d) => d !== '').join('; ')) counter.dropped++;
    if (kept !== '' && !kept.includes('<')) rules.push(`${selector.replace(/\s+/g, ' ')}{${kept.replace(/\s+/g, ' ')}}`);
  }
  return rules.join('\n');
}
