// The search query language (core/search/QUERY.md; the search plugin and legal holds share it): parses what a user typed into an AST and prints
// an AST back in canonical form. Pure, no I/O. Trusts nothing about the input: length, term count and
// nesting are bounded before any work grows with them, and every failure is INVALID_INPUT whose message
// names the 1-based character position. Hands on an AST with validated values: real calendar days, byte
// counts that are safe integers, values trimmed with case kept (the index folds case), and/or flattened.
//
// Grammar, NOT binding tighter than AND tighter than OR:
//   query   := or
//   or      := and ("OR" and)*
//   and     := unary (["AND"] unary)*          adjacent terms are ANDed
//   unary   := ("NOT" | "-") unary | "(" or ")" | term
// A word is a run of characters up to whitespace, "(", ")" or '"'. A word "name:value" whose name looks
// like a field name (a letter, then letters, digits, "-" or "_") must name a known field; a colon after
// anything else ("12:30", "::1") is part of the word, and quoting ("http://x") always makes it text.
import { PosternError } from '../errors.ts';

export type TextField = 'text' | 'from' | 'to' | 'cc' | 'bcc' | 'participant' | 'subject' | 'body' | 'attachment' | 'folder' | 'user';
export type QueryNode =
  | { kind: 'and'; items: QueryNode[] }
  | { kind: 'or'; items: QueryNode[] }
  | { kind: 'not'; item: QueryNode }
  | { kind: 'term'; field: TextField; value: string; phrase: boolean; prefix: boolean; pos: number }
  | { kind: 'has'; what: 'attachment'; pos: number }
  | { kind: 'date'; op: 'before' | 'after' | 'on'; day: string /* YYYY-MM-DD */; pos: number }
  | { kind: 'size'; op: 'larger' | 'smaller'; bytes: number; pos: number };

export const QUERY_LIMITS = { maxLength: 2000, maxTerms: 64, maxDepth: 16 } as const;

type Leaf = Extract<QueryNode, { pos: number }>;
type FieldName = Exclude<TextField, 'text'> | 'has' | 'before' | 'after' | 'on' | 'larger' | 'smaller';

const TEXT_FIELDS: ReadonlySet<string> = new Set<TextField>(['from', 'to', 'cc', 'bcc', 'participant', 'subject', 'body', 'attachment', 'folder', 'user']);
const OTHER_FIELDS: ReadonlySet<string> = new Set<FieldName>(['has', 'before', 'after', 'on', 'larger', 'smaller']);
const FIELD_LIKE = /^[A-Za-z][A-Za-z0-9_-]*$/;
const KEYWORDS: ReadonlySet<string> = new Set(['AND', 'OR', 'NOT']);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000e-\u001f\u007f]/;
const WHITESPACE = /\s/;
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const SIZE = /^(\d+)([kmg]?)$/i;
const UNITS = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const;

/** The error for a problem at 0-based UTF-16 offset `at`, reported as a 1-based character (code point) position. */
function fail(input: string, at: number, message: string): never {
  const position = [...input.slice(0, Math.max(0, at))].length + 1;
  return failAt(position, message);
}

function failAt(position: number, message: string): never {
  throw new PosternError('INVALID_INPUT', `Query error at position ${position}: ${message}`);
}

type Token =
  | { t: 'lparen' | 'rparen' | 'and' | 'or' | 'not' | 'neg' | 'end'; pos: number }
  | { t: 'leaf'; pos: number; node: Leaf };

const KEYWORD_TOKEN = { AND: 'and', OR: 'or', NOT: 'not' } as const;

/** Splits the input into tokens on demand, one lookahead; a term is validated when it is read. */
class Lexer {
  private i = 0;
  private ahead: Token | null = null;
  private leaves = 0;
  constructor(private readonly src: string) {}

  peek(): Token {
    this.ahead ??= this.scan();
    return this.ahead;
  }

  next(): Token {
    const t = this.peek();
    this.ahead = null;
    return t;
  }

  fail(at: number, message: string): never {
    return fail(this.src, at, message);
  }

  private isSpace(at: number): boolean {
    return WHITESPACE.test(this.src.charAt(at));
  }

  private scan(): Token {
    const src = this.src;
    while (this.i < src.length && this.isSpace(this.i)) this.i++;
    const start = this.i;
    if (start >= src.length) return { t: 'end', pos: src.length };
    const c = src[start];
    if (c === '(' || c === ')') {
      this.i++;
      return { t: c === '(' ? 'lparen' : 'rparen', pos: start };
    }
    if (c === '-') {
      const n = src.charAt(start + 1);
      if (n === '' || n === ')' || this.isSpace(start + 1)) this.fail(start, 'expected a term after "-"');
      this.i++;
      return { t: 'neg', pos: start };
    }
    if (c === '"') return this.leaf({ kind: 'term', field: 'text', value: this.phrase(start), phrase: true, prefix: false, pos: start });

    let end = start;
    while (end < src.length && !this.isSpace(end) && src[end] !== '(' && src[end] !== ')' && src[end] !== '"') end++;
    const raw = src.slice(start, end);
    const colon = raw.indexOf(':');
    const name = colon > 0 ? raw.slice(0, colon) : null;
    const fieldLike = name !== null && FIELD_LIKE.test(name);
    if (fieldLike) {
      const field = name.toLowerCase();
      if (!TEXT_FIELDS.has(field) && !OTHER_FIELDS.has(field)) this.fail(start, `unknown field "${name}" (put the word in quotes to search for it as text)`);
    }
    if (src[end] === '"') {
      // A quote may start only a term or the value right after "field:".
      if (!fieldLike || colon !== raw.length - 1) this.fail(end, 'quote inside a word (put a space before it)');
      this.i = end;
      return this.leaf(this.fieldTerm(start, (name as string).toLowerCase() as FieldName, this.phrase(end), true));
    }
    this.i = end;
    if (KEYWORDS.has(raw)) return { t: KEYWORD_TOKEN[raw as keyof typeof KEYWORD_TOKEN], pos: start };
    if (!fieldLike) return this.leaf(this.wordTerm(start, 'text', raw, start));
    const value = raw.slice(colon + 1);
    if (value === '') this.fail(start, `"${(name as string).toLowerCase()}:" needs a value (a word or a "quoted phrase")`);
    return this.leaf(this.fieldTerm(start, (name as string).toLowerCase() as FieldName, value, false, start + colon + 1));
  }

  /** Reads the phrase whose opening quote is at `open`; leaves the lexer after the closing quote. */
  private phrase(open: number): string {
    const src = this.src;
    const close = src.indexOf('"', open + 1);
    if (close < 0) this.fail(open, 'unterminated quote');
    const value = src.slice(open + 1, close).replace(/\s+/gu, ' ').trim();
    if (value === '') this.fail(open, 'empty quoted phrase');
    const after = src.charAt(close + 1);
    if (after === '*') this.fail(close + 1, '"*" cannot follow a quoted phrase (a prefix is a word ending in "*")');
    if (after !== '' && after !== '(' && after !== ')' && !this.isSpace(close + 1)) this.fail(close + 1, 'expected a space after the closing quote');
    this.i = close + 1;
    return value;
  }

  private leaf(node: Leaf): Token {
    if (++this.leaves > QUERY_LIMITS.maxTerms) this.fail(node.pos, `more than ${QUERY_LIMITS.maxTerms} terms`);
    return { t: 'leaf', pos: node.pos, node };
  }

  /** A word of field `field` (or bare text) at `valueAt`: a single trailing "*" makes it a prefix. */
  private wordTerm(pos: number, field: TextField, word: string, valueAt: number): Leaf {
    const star = word.indexOf('*');
    if (star < 0) return { kind: 'term', field, value: word, phrase: false, prefix: false, pos };
    if (star !== word.length - 1) this.fail(valueAt + star, '"*" is allowed only at the end of a word');
    if (star === 0) this.fail(valueAt, 'expected a word before "*"');
    return { kind: 'term', field, value: word.slice(0, -1), phrase: false, prefix: true, pos };
  }

  private fieldTerm(pos: number, field: FieldName, value: string, phrase: boolean, valueAt = pos): Leaf {
    switch (field) {
      case 'has':
        if (value.toLowerCase() !== 'attachment') this.fail(pos, '"has:" takes only "attachment"');
        return { kind: 'has', what: 'attachment', pos };
      case 'before':
      case 'after':
      case 'on': {
        const m = DAY.exec(value);
        if (!m) this.fail(pos, `"${field}:" needs a date as YYYY-MM-DD`);
        if (!realDay(Number(m[1]), Number(m[2]), Number(m[3]))) this.fail(pos, `"${field}:${value}" is not a real date`);
        return { kind: 'date', op: field, day: value, pos };
      }
      case 'larger':
      case 'smaller': {
        const m = SIZE.exec(value);
        if (!m) this.fail(pos, `"${field}:" needs a number of bytes, optionally with K, M or G (as in 5M)`);
        const bytes = Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase() as keyof typeof UNITS];
        if (!Number.isSafeInteger(bytes)) this.fail(pos, `"${field}:${value}" is too large`);
        return { kind: 'size', op: field, bytes, pos };
      }
      default:
        return phrase ? { kind: 'term', field, value, phrase: true, prefix: false, pos } : this.wordTerm(pos, field, value, valueAt);
    }
  }
}

function realDay(year: number, month: number, day: number): boolean {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] as number;
  return day <= days;
}

/** An and/or of the items, nested ones of the same kind flattened, a single item standing alone. */
function combine(kind: 'and' | 'or', items: QueryNode[]): QueryNode {
  const flat = items.flatMap((n) => (n.kind === kind ? n.items : [n]));
  return flat.length === 1 ? (flat[0] as QueryNode) : { kind, items: flat };
}

const TERM_START: ReadonlySet<Token['t']> = new Set(['leaf', 'lparen', 'not', 'neg']);
const SHOWN = { and: 'AND', or: 'OR', not: 'NOT', neg: '-', lparen: '(' } as const;

class Parser {
  private depth = 0;
  constructor(private readonly lex: Lexer) {}

  query(): QueryNode {
    const node = this.or(null);
    const t = this.lex.peek();
    if (t.t === 'rparen') this.lex.fail(t.pos, 'unbalanced ")"');
    return node;
  }

  /** Fails unless a term starts next; `after` is the token that wants it (null at the start of the query). */
  private requireTerm(after: Token | null): void {
    const t = this.lex.peek();
    if (TERM_START.has(t.t)) return;
    const opening = after === null || after.t === 'lparen';
    if (opening && (t.t === 'and' || t.t === 'or')) this.lex.fail(t.pos, `expected a term before "${SHOWN[t.t]}"`);
    if (after === null) this.lex.fail(t.pos, t.t === 'rparen' ? 'unbalanced ")"' : 'empty query');
    if (after.t === 'lparen' && t.t === 'end') this.lex.fail(after.pos, 'unbalanced "("');
    this.lex.fail(after.pos, `expected a term after "${SHOWN[after.t as keyof typeof SHOWN]}"`);
  }

  private or(after: Token | null): QueryNode {
    this.requireTerm(after);
    const items = [this.and()];
    while (this.lex.peek().t === 'or') {
      this.requireTerm(this.lex.next());
      items.push(this.and());
    }
    return combine('or', items);
  }

  private and(): QueryNode {
    const items = [this.unary()];
    for (;;) {
      const t = this.lex.peek();
      if (t.t === 'and') this.requireTerm(this.lex.next());
      else if (!TERM_START.has(t.t)) break;
      items.push(this.unary());
    }
    return combine('and', items);
  }

  private enter(t: Token): void {
    if (++this.depth > QUERY_LIMITS.maxDepth) this.lex.fail(t.pos, `nested more than ${QUERY_LIMITS.maxDepth} levels deep (parentheses and NOT)`);
  }

  private unary(): QueryNode {
    const t = this.lex.next();
    switch (t.t) {
      case 'leaf':
        return t.node;
      case 'not':
      case 'neg': {
        this.enter(t);
        this.requireTerm(t);
        const item = this.unary();
        this.depth--;
        return { kind: 'not', item };
      }
      case 'lparen': {
        this.enter(t);
        const node = this.or(t);
        if (this.lex.next().t !== 'rparen') this.lex.fail(t.pos, 'unbalanced "("');
        this.depth--;
        return node;
      }
      default:
        // requireTerm ran before every call.
        throw new Error(`Search query parser reached "${t.t}" where a term was checked`);
    }
  }
}

/** Parses a search query; throws INVALID_INPUT naming the 1-based character position of the problem. */
export function parseQuery(input: string): QueryNode {
  if (input.length > QUERY_LIMITS.maxLength) fail(input, QUERY_LIMITS.maxLength, `query is longer than ${QUERY_LIMITS.maxLength} characters`);
  const control = CONTROL.exec(input);
  if (control) fail(input, control.index, `control character U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} is not allowed`);
  if (input.trim() === '') failAt(1, 'empty query');
  return new Parser(new Lexer(input)).query();
}

function sizeText(bytes: number): string {
  for (const [unit, n] of [['G', UNITS.g], ['M', UNITS.m], ['K', UNITS.k]] as const) if (bytes > 0 && bytes % n === 0) return `${bytes / n}${unit}`;
  return String(bytes);
}

/**
 * The canonical text of a query: lower-case field names, "-" for NOT, parentheses only where precedence
 * needs them, sizes in the largest whole unit. For every AST parseQuery returns, parsing this text gives
 * the same AST but for positions. It is never longer than the query it came from but for one space per
 * term next to a parenthesis ("(a OR b)c" prints as "(a OR b) c"), so only a query within 64 characters
 * of the length limit can print to a text too long to parse again.
 */
export function describeQuery(node: QueryNode): string {
  switch (node.kind) {
    case 'and':
      return node.items.map((n) => (n.kind === 'or' || n.kind === 'and' ? `(${describeQuery(n)})` : describeQuery(n))).join(' ');
    case 'or':
      return node.items.map((n) => (n.kind === 'or' ? `(${describeQuery(n)})` : describeQuery(n))).join(' OR ');
    case 'not':
      return node.item.kind === 'and' || node.item.kind === 'or' ? `-(${describeQuery(node.item)})` : `-${describeQuery(node.item)}`;
    case 'term': {
      const value = node.phrase ? `"${node.value}"` : `${node.value}${node.prefix ? '*' : ''}`;
      return node.field === 'text' ? value : `${node.field}:${value}`;
    }
    case 'has':
      return `has:${node.what}`;
    case 'date':
      return `${node.op}:${node.day}`;
    case 'size':
      return `${node.op}:${sizeText(node.bytes)}`;
  }
}
