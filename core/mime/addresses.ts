// Extracts bare addr-specs from RFC 5322 address-lists and RFC 5321 paths (groups, angle-addrs, source routes, obsolete CFWS).
// Trusts nothing about the input: any string is accepted, malformed mailboxes are skipped and no function throws.
// Hands on deduplicated local@domain strings with the domain lowercased, for journaling, routing and indexing.

type Token =
  | { kind: 'atom'; text: string }
  | { kind: 'quoted'; text: string }
  | { kind: 'literal'; text: string }
  | { kind: 'special'; text: string }
  | { kind: 'ws' }
  | { kind: 'bad' };

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a0-\uffff]$/u;
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a0-\uffff]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a0-\uffff]+)*$/u;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function isAtext(ch: string): boolean {
  return ATEXT.test(ch);
}

function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const ch = s[i] ?? '';
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      i++;
      if (tokens[tokens.length - 1]?.kind !== 'ws') tokens.push({ kind: 'ws' });
      continue;
    }
    if (ch === '(') {
      let depth = 0;
      while (i < s.length) {
        const c = s[i];
        if (c === '\\') i++;
        else if (c === '(') depth++;
        else if (c === ')') {
          depth--;
          if (depth === 0) {
            i++;
            break;
          }
        }
        i++;
      }
      if (tokens[tokens.length - 1]?.kind !== 'ws') tokens.push({ kind: 'ws' });
      continue;
    }
    if (ch === '"') {
      let text = '';
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        text += s[i];
        i++;
      }
      i++; // closing quote (or past the end)
      tokens.push({ kind: 'quoted', text });
      continue;
    }
    if (ch === '[') {
      const close = s.indexOf(']', i + 1);
      const end = close === -1 ? s.length : close;
      const inner = s.slice(i + 1, end);
      i = end + 1;
      tokens.push(/[[\\]/.test(inner) ? { kind: 'bad' } : { kind: 'literal', text: `[${inner.trim()}]` });
      continue;
    }
    if ('.@,;:<>'.includes(ch)) {
      tokens.push({ kind: 'special', text: ch });
      i++;
      continue;
    }
    if (isAtext(ch)) {
      const start = i;
      while (i < s.length && isAtext(s[i] ?? '')) i++;
      tokens.push({ kind: 'atom', text: s.slice(start, i) });
      continue;
    }
    // Control characters, stray ')', ']', '\' and the like.
    tokens.push({ kind: 'bad' });
    i++;
  }
  return tokens;
}

function isSpecial(tok: Token | undefined, ch: string): boolean {
  return tok?.kind === 'special' && tok.text === ch;
}

/** Validates a whitespace-free token run as local@domain and renders it, or returns null. */
function renderAddrSpec(tokens: Token[]): string | null {
  const at = tokens.findIndex((t) => isSpecial(t, '@'));
  if (at <= 0 || at === tokens.length - 1) return null;
  if (tokens.findIndex((t, idx) => idx > at && isSpecial(t, '@')) !== -1) return null;

  // local-part: word *("." word)
  const words: string[] = [];
  for (let i = 0; i < at; i++) {
    const t = tokens[i];
    if (i % 2 === 0) {
      if (t?.kind === 'atom') words.push(t.text);
      else if (t?.kind === 'quoted' && !CONTROL.test(t.text)) words.push(t.text);
      else return null;
    } else if (!isSpecial(t, '.')) {
      return null;
    }
  }
  if (at % 2 === 0) return null; // ended on a dot
  const localText = words.join('.');
  if (localText.length === 0) return null;
  const local = DOT_ATOM.test(localText) ? localText : `"${localText.replace(/(["\\])/g, '\\$1')}"`;

  // domain: dot-atom or a domain literal
  const domainTokens = tokens.slice(at + 1);
  let domain: string;
  const only = domainTokens[0];
  if (domainTokens.length === 1 && only?.kind === 'literal') {
    if (CONTROL.test(only.text)) return null;
    domain = only.text;
  } else {
    const labels: string[] = [];
    for (let i = 0; i < domainTokens.length; i++) {
      const t = domainTokens[i];
      if (i % 2 === 0) {
        if (t?.kind !== 'atom') return null;
        labels.push(t.text);
      } else if (!isSpecial(t, '.')) {
        return null;
      }
    }
    if (domainTokens.length % 2 === 0) return null; // ended on a dot
    domain = labels.join('.');
  }
  return `${local}@${domain.toLowerCase()}`;
}

/** Contents of an angle-addr: drops whitespace and an obsolete source route ("@a,@b:"). */
function angleCandidate(tokens: Token[]): string | null {
  let start = 0;
  for (let i = 0; i < tokens.length; i++) if (isSpecial(tokens[i], ':')) start = i + 1;
  return renderAddrSpec(tokens.slice(start).filter((t) => t.kind !== 'ws'));
}

/**
 * Splits a mailbox without angle brackets at whitespace between words, so a stray display
 * name does not merge with the address; whitespace next to "." or "@" is obsolete CFWS and dropped.
 */
function bareCandidates(tokens: Token[]): string[] {
  const chunks: Token[][] = [];
  let chunk: Token[] = [];
  let pendingWs = false;
  for (const t of tokens) {
    if (t.kind === 'ws') {
      pendingWs = true;
      continue;
    }
    const last = chunk[chunk.length - 1];
    const joins = isSpecial(last, '.') || isSpecial(last, '@') || isSpecial(t, '.') || isSpecial(t, '@');
    if (pendingWs && chunk.length > 0 && !joins) {
      chunks.push(chunk);
      chunk = [];
    }
    pendingWs = false;
    chunk.push(t);
  }
  if (chunk.length > 0) chunks.push(chunk);
  const out: string[] = [];
  for (const c of chunks) {
    const addr = renderAddrSpec(c);
    if (addr !== null) out.push(addr);
  }
  return out;
}

export function extractAddresses(value: string): string[] {
  const seen = new Set<string>();
  try {
    const tokens = tokenize(typeof value === 'string' ? value : String(value ?? ''));
    let current: Token[] = [];
    let angles: string[] = [];
    let sawAngle = false;

    const flush = (): void => {
      const found = sawAngle ? angles : bareCandidates(current);
      for (const a of found) seen.add(a);
      current = [];
      angles = [];
      sawAngle = false;
    };

    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (t === undefined) continue;
      if (isSpecial(t, ',') || isSpecial(t, ';')) {
        flush();
      } else if (isSpecial(t, ':')) {
        // group start ("name:"), or the end of a bare source route: drop what came before
        current = [];
      } else if (isSpecial(t, '<')) {
        const inner: Token[] = [];
        i++;
        while (i < tokens.length && !isSpecial(tokens[i], '>')) {
          const it = tokens[i];
          if (it !== undefined) inner.push(it);
          i++;
        }
        sawAngle = true;
        const addr = angleCandidate(inner);
        if (addr !== null) angles.push(addr);
      } else if (isSpecial(t, '>')) {
        // stray closing bracket: ignore
      } else {
        current.push(t);
      }
    }
    flush();
  } catch {
    // lenient: return what was collected
  }
  return [...seen];
}
