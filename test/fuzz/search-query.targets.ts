// Fuzz target for the search query language (plugins/search/query.ts): whatever the text, parseQuery
// returns an AST within the limits whose canonical text (describeQuery) parses back to the same AST, or
// fails with INVALID_INPUT naming a position inside (or just after) the text, never with another error.
import { isPosternError } from '../../core/errors.ts';
import { QUERY_LIMITS, describeQuery, parseQuery, type QueryNode } from '../../core/search/query.ts';
import { check, type FuzzGroup } from './target.ts';

const SEEDS = [
  'budget', 'budget report', '"quarterly report"', 'subject:"quarterly report" from:alice@example.com', 'budg* subject:rep*',
  'has:attachment larger:5M', 'before:2024-03-01 after:2023-12-31 on:2024-02-29', 'smaller:10k larger:1G',
  'from:alice OR from:bob', '(from:alice OR to:alice) AND NOT subject:spam', '-from:bob -"out of office"', 'NOT NOT a',
  'participant:carol@example.com folder:INBOX user:dave', 'bcc:x cc:y to:z body:"a b" attachment:invoice.pdf',
  'a OR (b OR (c d)) OR -(e f)', '12:30 "http://x" e.g.:', 'and or not AND* "AND"',
  // Malformed ones, each a different error.
  '', '(a OR b', 'a OR b)', 'a OR', 'OR a', '()', 'foo:bar', 'from:', '"abc', '""', 'don"t', '"a"b', '"a"*', 'a**', '*', '-', 'a - b',
  'before:2024-02-30', 'on:24-1-1', 'larger:5MB', 'larger:99999999999999999999G', 'has:nothing', 'x\u0000y',
  `${'('.repeat(17)}a${')'.repeat(17)}`, `${'-'.repeat(17)}a`, Array.from({ length: 65 }, (_, i) => `t${i}`).join(' '), 'x'.repeat(2001),
  `${'word '.repeat(399)}abcd`, `${'(a OR b)c'.repeat(7)}${'x'.repeat(1930)}`,
];

const TOKENS = [
  ' ', '  ', '\t', '\n', '\u00a0', '\u3000', '(', ')', '"', '-', '*', ':', '::', 'AND', 'OR', 'NOT', ' AND ', ' OR ', 'NOT ', 'and', 'or',
  'from:', 'to:', 'cc:', 'bcc:', 'participant:', 'subject:', 'body:', 'attachment:', 'folder:', 'user:', 'has:', 'has:attachment',
  'before:', 'after:', 'on:', 'larger:', 'smaller:', 'FROM:', 'Text:', 'x-y:', 'http://', '2024-02-29', '2023-02-29', '9999-12-31', '0000-01-01',
  '5M', '1k', '3G', '9007199254740991', '9007199254740992', '0', 'alice@example.com', '"a b"', '""', '" "', 'é', '😀', '\ud800', '\u0000', '\u007f',
];

/** The leaves (terms, has:, dates, sizes) of an AST. */
function leaves(n: QueryNode, out: Array<Extract<QueryNode, { pos: number }>> = []): Array<Extract<QueryNode, { pos: number }>> {
  if (n.kind === 'and' || n.kind === 'or') for (const i of n.items) leaves(i, out);
  else if (n.kind === 'not') leaves(n.item, out);
  else out.push(n);
  return out;
}

function depth(n: QueryNode): number {
  if (n.kind === 'and' || n.kind === 'or') return 1 + Math.max(...n.items.map(depth));
  if (n.kind === 'not') return 1 + depth(n.item);
  return 0;
}

function withoutPos(n: QueryNode): string {
  return JSON.stringify(n, (k, v: unknown) => (k === 'pos' ? undefined : v));
}

export const group: FuzzGroup = {
  group: 'search-query',
  targets: [
    {
      name: 'search-query.parse',
      seeds: () => SEEDS.map((s) => Buffer.from(s, 'utf8')),
      dictionary: TOKENS,
      maxLength: 4096,
      run(input) {
        const text = input.toString('utf8');
        let ast: QueryNode;
        try {
          ast = parseQuery(text);
        } catch (err) {
          check(isPosternError(err, 'INVALID_INPUT'), 'a bad query fails with INVALID_INPUT, not another error', err instanceof Error ? `${err.name}: ${err.message}` : String(err));
          const m = /^Query error at position (\d+): \S/.exec(err.message);
          check(m, 'the message names a position', err.message);
          const position = Number(m[1]);
          check(position >= 1 && position <= [...text].length + 1, 'the position lies within the query or just after it', { position, length: text.length });
          return;
        }
        check(text.length <= QUERY_LIMITS.maxLength, 'a query longer than the limit is refused', text.length);
        const all = leaves(ast);
        check(all.length >= 1 && all.length <= QUERY_LIMITS.maxTerms, 'the term count is within the limit', all.length);
        check(depth(ast) <= 2 * QUERY_LIMITS.maxDepth + 2, 'the AST is shallow', depth(ast));
        for (const l of all) check(l.pos >= 0 && l.pos < text.length, 'a term position lies within the query', l);
        for (const l of all) if (l.kind === 'term') check(l.value !== '' && l.value === l.value.trim() && !/\s\s/.test(l.value), 'a value is trimmed and its whitespace collapsed', l);
        for (const l of all) if (l.kind === 'size') check(Number.isSafeInteger(l.bytes) && l.bytes >= 0, 'a size is a safe integer', l);
        const canonical = describeQuery(ast);
        check(canonical.length <= text.length + QUERY_LIMITS.maxTerms, 'the canonical text is at most one space per term longer', { text, canonical });
        if (canonical.length > QUERY_LIMITS.maxLength) return;
        let again: QueryNode | null = null;
        let problem = '';
        try {
          again = parseQuery(canonical);
        } catch (err) {
          problem = err instanceof Error ? err.message : String(err);
        }
        check(again, 'the canonical text of a valid query parses', { text, canonical, problem });
        check(withoutPos(again) === withoutPos(ast), 'the canonical text parses to the same AST', { text, canonical });
        check(describeQuery(again) === canonical, 'the canonical text is stable', canonical);
      },
    },
  ],
};
