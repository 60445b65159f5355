// The search query language (plugins/search/query.ts): well-formed queries to their ASTs, every kind of
// malformed query to an INVALID_INPUT naming the right 1-based position, the limits, and the canonical
// text form (describeQuery) parsing back to the same AST, for examples and for generated ASTs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isPosternError } from '../../../core/errors.ts';
import { QUERY_LIMITS, describeQuery, parseQuery, type QueryNode, type TextField } from '../../../core/search/query.ts';

type Term = Extract<QueryNode, { kind: 'term' }>;
const term = (value: string, pos: number, more: Partial<Omit<Term, 'kind' | 'value' | 'pos'>> = {}): Term =>
  ({ kind: 'term', field: 'text', value, phrase: false, prefix: false, pos, ...more });
const and = (...items: QueryNode[]): QueryNode => ({ kind: 'and', items });
const or = (...items: QueryNode[]): QueryNode => ({ kind: 'or', items });
const not = (item: QueryNode): QueryNode => ({ kind: 'not', item });

/** The AST without positions. */
function bare(n: QueryNode): unknown {
  switch (n.kind) {
    case 'and':
    case 'or':
      return { kind: n.kind, items: n.items.map(bare) };
    case 'not':
      return { kind: 'not', item: bare(n.item) };
    default: {
      const { pos: _pos, ...rest } = n;
      return rest;
    }
  }
}

/** The error message parseQuery throws for `q` (failing the test when it parses). */
function errorOf(q: string): string {
  try {
    parseQuery(q);
  } catch (err) {
    assert.ok(isPosternError(err, 'INVALID_INPUT'), `INVALID_INPUT, not ${String(err)}`);
    return err.message;
  }
  assert.fail(`${JSON.stringify(q)} parsed`);
}

test('bare words and quoted phrases search everywhere; adjacent terms are ANDed', () => {
  assert.deepEqual(parseQuery('budget'), term('budget', 0));
  assert.deepEqual(parseQuery('  budget  report '), and(term('budget', 2), term('report', 10)));
  assert.deepEqual(parseQuery('"exact   words\t here "'), term('exact words here', 0, { phrase: true }));
  assert.deepEqual(parseQuery('"Q3" Report'), and(term('Q3', 0, { phrase: true }), term('Report', 5)));
  assert.deepEqual(parseQuery('"a (b) OR c:d -e f*"'), term('a (b) OR c:d -e f*', 0, { phrase: true }), 'nothing is special inside quotes');
  assert.deepEqual(parseQuery('and or not'), and(term('and', 0), term('or', 4), term('not', 7)), 'lower-case keywords are words');
  assert.deepEqual(parseQuery('"AND" AND*'), and(term('AND', 0, { phrase: true }), term('AND', 6, { prefix: true })));
  assert.deepEqual(parseQuery('e-mail O\'Brien café 😀'), and(term('e-mail', 0), term('O\'Brien', 7), term('café', 15), term('😀', 20)));
});

test('field terms take a word or a quoted phrase; field names are case-insensitive, values keep their case', () => {
  const fields: TextField[] = ['from', 'to', 'cc', 'bcc', 'participant', 'subject', 'body', 'attachment', 'folder', 'user'];
  for (const field of fields) {
    assert.deepEqual(parseQuery(`${field}:Alice@Example.com`), term('Alice@Example.com', 0, { field }));
    assert.deepEqual(parseQuery(`${field.toUpperCase()}:"Quarterly  Report"`), term('Quarterly Report', 0, { field, phrase: true }));
  }
  assert.deepEqual(parseQuery('subject:re:fwd:x'), term('re:fwd:x', 0, { field: 'subject' }), 'only the first colon names a field');
  assert.deepEqual(parseQuery('subject:-draft from:AND'), and(term('-draft', 0, { field: 'subject' }), term('AND', 15, { field: 'from' })));
  assert.deepEqual(parseQuery('folder:INBOX/Sub user:alice'), and(term('INBOX/Sub', 0, { field: 'folder' }), term('alice', 17, { field: 'user' })));
});

test('a colon makes a field only after a field-like name; other colons are part of the word', () => {
  assert.deepEqual(parseQuery('12:30 ::1 e.g.: :x'), and(term('12:30', 0), term('::1', 6), term('e.g.:', 10), term(':x', 16)));
  assert.deepEqual(parseQuery('"http://x" "foo:bar"'), and(term('http://x', 0, { phrase: true }), term('foo:bar', 11, { phrase: true })), 'quoting makes it text');
  assert.match(errorOf('http://x'), /^Query error at position 1: unknown field "http" \(put the word in quotes/);
  assert.match(errorOf('see message-id:x'), /^Query error at position 5: unknown field "message-id"/);
});

test('has:, dates and sizes', () => {
  assert.deepEqual(parseQuery('has:attachment HAS:Attachment has:"attachment"'), and(
    { kind: 'has', what: 'attachment', pos: 0 }, { kind: 'has', what: 'attachment', pos: 15 }, { kind: 'has', what: 'attachment', pos: 30 }));
  assert.deepEqual(parseQuery('before:2024-03-01 after:2023-12-31 on:2024-02-29 on:2000-02-29'), and(
    { kind: 'date', op: 'before', day: '2024-03-01', pos: 0 }, { kind: 'date', op: 'after', day: '2023-12-31', pos: 18 },
    { kind: 'date', op: 'on', day: '2024-02-29', pos: 35 }, { kind: 'date', op: 'on', day: '2000-02-29', pos: 49 }));
  assert.deepEqual(parseQuery('on:0001-01-01 on:9999-12-31'), and({ kind: 'date', op: 'on', day: '0001-01-01', pos: 0 }, { kind: 'date', op: 'on', day: '9999-12-31', pos: 14 }));
  assert.deepEqual(parseQuery('larger:5M smaller:10k larger:0 larger:1536 smaller:2G larger:0005m'), and(
    { kind: 'size', op: 'larger', bytes: 5 * 1024 ** 2, pos: 0 }, { kind: 'size', op: 'smaller', bytes: 10 * 1024, pos: 10 },
    { kind: 'size', op: 'larger', bytes: 0, pos: 22 }, { kind: 'size', op: 'larger', bytes: 1536, pos: 31 },
    { kind: 'size', op: 'smaller', bytes: 2 * 1024 ** 3, pos: 43 }, { kind: 'size', op: 'larger', bytes: 5 * 1024 ** 2, pos: 54 }));
  assert.deepEqual(parseQuery(`larger:${Number.MAX_SAFE_INTEGER}`), { kind: 'size', op: 'larger', bytes: Number.MAX_SAFE_INTEGER, pos: 0 });
});

test('boolean operators: NOT binds tighter than AND, AND tighter than OR; "-" is NOT; parentheses group', () => {
  const [a, b, c, d] = ['a', 'b', 'c', 'd'];
  assert.deepEqual(parseQuery('a OR b c'), or(term(a, 0), and(term(b, 5), term(c, 7))));
  assert.deepEqual(parseQuery('a b OR c'), or(and(term(a, 0), term(b, 2)), term(c, 7)));
  assert.deepEqual(parseQuery('a AND b OR c AND d'), or(and(term(a, 0), term(b, 6)), and(term(c, 11), term(d, 17))));
  assert.deepEqual(parseQuery('NOT a b'), and(not(term(a, 4)), term(b, 6)));
  assert.deepEqual(parseQuery('NOT a OR b'), or(not(term(a, 4)), term(b, 9)));
  assert.deepEqual(parseQuery('(a OR b) c'), and(or(term(a, 1), term(b, 6)), term(c, 9)));
  assert.deepEqual(parseQuery('-from:bob -"x y" -(a OR b)'), and(
    not(term('bob', 1, { field: 'from' })), not(term('x y', 11, { phrase: true })), not(or(term(a, 19), term(b, 24)))));
  assert.deepEqual(parseQuery('NOT NOT a'), not(not(term(a, 8))));
  assert.deepEqual(parseQuery('--a NOT -b'), and(not(not(term(a, 2))), not(not(term(b, 9)))));
  assert.deepEqual(parseQuery('-a -b'), and(not(term(a, 1)), not(term(b, 4))), 'only NOT terms is allowed');
  assert.deepEqual(parseQuery('NOT(a)AND(b)OR(c)'), or(and(not(term(a, 4)), term(b, 10)), term(c, 15)));
  assert.deepEqual(parseQuery('"a"(b)'), and(term(a, 0, { phrase: true }), term(b, 4)));
});

test('nested and/or of the same kind are flattened; a single item stands alone', () => {
  assert.deepEqual(parseQuery('((a))'), term('a', 2));
  assert.deepEqual(parseQuery('a (b (c d)) e'), and(term('a', 0), term('b', 3), term('c', 6), term('d', 8), term('e', 12)));
  assert.deepEqual(parseQuery('a OR (b OR (c OR d)) OR (e f)'), or(term('a', 0), term('b', 6), term('c', 12), term('d', 17), and(term('e', 25), term('f', 27))));
  assert.deepEqual(parseQuery('(a OR b) (c OR d)'), and(or(term('a', 1), term('b', 6)), or(term('c', 10), term('d', 15))), 'an or inside an and stays');
});

test('prefixes: a single trailing "*" on a word', () => {
  assert.deepEqual(parseQuery('budg* subject:rep* "not*" AND* from:-x*'), and(
    term('budg', 0, { prefix: true }), term('rep', 6, { field: 'subject', prefix: true }), term('not*', 19, { phrase: true }),
    term('AND', 26, { prefix: true }), term('-x', 31, { field: 'from', prefix: true })));
});

test('malformed queries fail with INVALID_INPUT naming the 1-based position', () => {
  const cases: Array<[string, number, string]> = [
    ['', 1, 'empty query'],
    [' \t\n ', 1, 'empty query'],
    ['(a OR b) AND c)', 15, 'unbalanced ")"'],
    [')', 1, 'unbalanced ")"'],
    ['a (b', 3, 'unbalanced "("'],
    ['(', 1, 'unbalanced "("'],
    ['((a) OR b', 1, 'unbalanced "("'],
    ['()', 1, 'expected a term after "("'],
    ['a OR', 3, 'expected a term after "OR"'],
    ['a OR OR b', 3, 'expected a term after "OR"'],
    ['(a OR) b', 4, 'expected a term after "OR"'],
    ['a AND', 3, 'expected a term after "AND"'],
    ['a AND OR b', 3, 'expected a term after "AND"'],
    ['NOT', 1, 'expected a term after "NOT"'],
    ['a NOT )', 3, 'expected a term after "NOT"'],
    ['-', 1, 'expected a term after "-"'],
    ['a - b', 3, 'expected a term after "-"'],
    ['-AND', 1, 'expected a term after "-"'],
    ['OR a', 1, 'expected a term before "OR"'],
    ['(AND a)', 2, 'expected a term before "AND"'],
    ['a (OR b)', 4, 'expected a term before "OR"'],
    ['before:2024-1-1', 1, '"before:" needs a date as YYYY-MM-DD'],
    ['x after:yesterday', 3, '"after:" needs a date as YYYY-MM-DD'],
    ['on:2024-02-30', 1, '"on:2024-02-30" is not a real date'],
    ['on:2023-02-29', 1, '"on:2023-02-29" is not a real date'],
    ['on:1900-02-29', 1, '"on:1900-02-29" is not a real date'],
    ['on:2024-13-01', 1, '"on:2024-13-01" is not a real date'],
    ['on:2024-00-10', 1, '"on:2024-00-10" is not a real date'],
    ['on:0000-01-01', 1, '"on:0000-01-01" is not a real date'],
    ['on:2024-01-01*', 1, '"on:" needs a date as YYYY-MM-DD'],
    ['larger:5MB', 1, '"larger:" needs a number of bytes'],
    ['smaller:1.5M', 1, '"smaller:" needs a number of bytes'],
    ['larger:-1', 1, '"larger:" needs a number of bytes'],
    ['larger:9007199254740992', 1, '"larger:9007199254740992" is too large'],
    ['larger:99999999G', 1, '"larger:99999999G" is too large'],
    ['has:attachments', 1, '"has:" takes only "attachment"'],
    ['has:', 1, '"has:" needs a value'],
    ['a from: bob', 3, '"from:" needs a value'],
    ['subject:(x)', 1, '"subject:" needs a value'],
    ['foo:bar', 1, 'unknown field "foo"'],
    ['"abc', 1, 'unterminated quote'],
    ['a subject:"abc', 11, 'unterminated quote'],
    ['""', 1, 'empty quoted phrase'],
    ['a " \t "', 3, 'empty quoted phrase'],
    ['don"t', 4, 'quote inside a word'],
    ['12:"x"', 4, 'quote inside a word'],
    ['"a"b', 4, 'expected a space after the closing quote'],
    ['"a"*', 4, '"*" cannot follow a quoted phrase'],
    ['subject:"a"*', 12, '"*" cannot follow a quoted phrase'],
    ['*', 1, 'expected a word before "*"'],
    ['from:*', 6, 'expected a word before "*"'],
    ['a*b', 2, '"*" is allowed only at the end of a word'],
    ['x budg**', 7, '"*" is allowed only at the end of a word'],
    ['a\u0000', 2, 'control character U+0000 is not allowed'],
    ['"a\u001bb"', 3, 'control character U+001B is not allowed'],
    ['😀😀 foo:x', 4, 'unknown field "foo"'],
    ['café )', 6, 'unbalanced ")"'],
  ];
  for (const [q, position, message] of cases) {
    const got = errorOf(q);
    assert.ok(got.startsWith(`Query error at position ${position}: ${message}`), `${JSON.stringify(q)}: ${got}`);
  }
});

test('limits: 2,000 characters, 64 terms, nesting 16 deep', () => {
  assert.deepEqual(parseQuery('x'.repeat(QUERY_LIMITS.maxLength)), term('x'.repeat(2000), 0));
  assert.equal(errorOf('x'.repeat(2001)), 'Query error at position 2001: query is longer than 2000 characters');

  const terms = (n: number): string => Array.from({ length: n }, (_, i) => `t${i}`).join(' ');
  assert.equal((parseQuery(terms(64)) as { items: unknown[] }).items.length, 64);
  assert.equal(errorOf(terms(65)), `Query error at position ${terms(64).length + 2}: more than 64 terms`);
  assert.match(errorOf(`${terms(63)} has:attachment on:2024-01-01`), /position \d+: more than 64 terms/, 'every kind of term counts');

  assert.deepEqual(parseQuery(`${'('.repeat(16)}a${')'.repeat(16)}`), term('a', 16));
  assert.match(errorOf(`${'('.repeat(17)}a${')'.repeat(17)}`), /^Query error at position 17: nested more than 16 levels deep/);
  assert.ok(parseQuery(`${'NOT '.repeat(16)}a`));
  assert.match(errorOf(`${'NOT '.repeat(17)}a`), /^Query error at position 65: nested more than 16/);
  assert.match(errorOf(`${'-'.repeat(17)}a`), /^Query error at position 17: nested more than 16/);
  assert.ok(parseQuery(`${'-('.repeat(8)}a${')'.repeat(8)}`), 'parentheses and NOT count together');
  assert.match(errorOf(`${'-('.repeat(8)}-a${')'.repeat(8)}`), /^Query error at position 17: nested more than 16/);
  assert.ok(parseQuery(`${'(a) '.repeat(64)}`), 'depth is nesting, not count');
});

test('describeQuery prints the canonical form', () => {
  const canon = (q: string): string => describeQuery(parseQuery(q));
  assert.equal(canon('NOT a AND (b OR c)'), '-a (b OR c)');
  assert.equal(canon('(a b) OR (c)'), 'a b OR c');
  assert.equal(canon('12:30 ::1 "http://x"'), '12:30 ::1 "http://x"');
  assert.equal(canon('(a OR b)c'), '(a OR b) c', 'one space per term more than the input at most');
  assert.equal(canon('NOT (a b)  NOT NOT c'), '-(a b) --c');
  assert.equal(canon('FROM:Alice SUBJECT:"q3   report" budg*'), 'from:Alice subject:"q3 report" budg*');
  assert.equal(canon('has:"Attachment" before:"2024-01-02" larger:1048576 smaller:1536 larger:2048k larger:0'), 'has:attachment before:2024-01-02 larger:1M smaller:1536 larger:2M larger:0');
  assert.equal(describeQuery(and(or(term('a', 0), term('b', 0)), and(term('c', 0), term('d', 0)))), '(a OR b) (c d)', 'a hand-built nested and keeps its parentheses');
});

// Generated ASTs in the form parseQuery returns (flattened, values parseQuery can produce).
const WORD = [...'abcXYZ019@._+/\'é', '😀'];
const textWord = fc.tuple(fc.constantFrom(...WORD), fc.string({ unit: fc.constantFrom(...WORD, '-', '#'), maxLength: 8 }))
  .map(([h, t]) => h + t).filter((w) => !['AND', 'OR', 'NOT'].includes(w));
const fieldWord = fc.string({ unit: fc.constantFrom(...WORD, '-', ':', '#'), minLength: 1, maxLength: 10 });
const phraseText = fc.array(fc.string({ unit: fc.constantFrom(...WORD, '-', ':', '*', '(', ')', 'AND', 'OR'), minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 }).map((ws) => ws.join(' '));
const FIELDS: TextField[] = ['from', 'to', 'cc', 'bcc', 'participant', 'subject', 'body', 'attachment', 'folder', 'user'];
const termArb: fc.Arbitrary<QueryNode> = fc.oneof(
  fc.record({ phrase: fc.boolean(), prefix: fc.boolean(), value: textWord, quoted: phraseText })
    .map(({ phrase, prefix, value, quoted }) => term(phrase ? quoted : value, 0, { phrase, prefix: prefix && !phrase })),
  fc.record({ field: fc.constantFrom(...FIELDS), phrase: fc.boolean(), prefix: fc.boolean(), value: fieldWord, quoted: phraseText })
    .map(({ field, phrase, prefix, value, quoted }) => term(phrase ? quoted : value, 0, { field, phrase, prefix: prefix && !phrase })),
);
const leafArb: fc.Arbitrary<QueryNode> = fc.oneof(
  { weight: 4, arbitrary: termArb },
  fc.constant<QueryNode>({ kind: 'has', what: 'attachment', pos: 0 }),
  fc.record({ op: fc.constantFrom('before' as const, 'after' as const, 'on' as const), d: fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true }) })
    .map(({ op, d }): QueryNode => ({ kind: 'date', op, day: d.toISOString().slice(0, 10), pos: 0 })),
  fc.record({ op: fc.constantFrom('larger' as const, 'smaller' as const), n: fc.nat({ max: 4096 }), unit: fc.constantFrom(1, 1000, 1024, 1024 ** 2, 1024 ** 3) })
    .map(({ op, n, unit }): QueryNode => ({ kind: 'size', op, bytes: n * unit, pos: 0 })),
);
const flat = (kind: 'and' | 'or', items: QueryNode[]): QueryNode => ({ kind, items: items.flatMap((n) => (n.kind === kind ? n.items : [n])) });
const { node: nodeArb } = fc.letrec<{ node: QueryNode }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'query' },
    leafArb,
    fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((items) => flat('and', items)),
    fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((items) => flat('or', items)),
    tie('node').map((item): QueryNode => ({ kind: 'not', item })),
  ),
}));

function leavesOf(n: QueryNode): Array<Extract<QueryNode, { pos: number }>> {
  if (n.kind === 'and' || n.kind === 'or') return n.items.flatMap(leavesOf);
  if (n.kind === 'not') return leavesOf(n.item);
  return [n];
}

test('describeQuery round-trips through parseQuery for generated ASTs', () => {
  fc.assert(fc.property(nodeArb, (ast) => {
    const text = describeQuery(ast);
    const back = parseQuery(text);
    assert.deepEqual(bare(back), bare(ast), text);
    assert.equal(describeQuery(back), text, 'the canonical form is stable');
    for (const leaf of leavesOf(back)) assert.ok(text.startsWith(describeQuery(leaf), leaf.pos), `pos ${leaf.pos} points at ${describeQuery(leaf)} in ${text}`);
  }), { numRuns: 300, seed: 20240601 });
});
