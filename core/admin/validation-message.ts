// Schema problems of an API request body as sentences for people: `"name" is missing`, `"addGroups"
// item 1 must be lower-case letters…`, `Unknown field "extra"`, `A user needs at least one address or
// domain`, instead of zod's internal paths and type jargon. Pure; trusts only the issue shapes zod gives.
import type { z } from 'zod';

type Issue = z.core.$ZodIssue;

const TYPE_NAMES: Record<string, string> = {
  string: 'text', number: 'a number', int: 'a whole number', boolean: 'true or false', array: 'a list', object: 'an object',
  null: 'null', undefined: 'missing', bigint: 'a number', date: 'a date',
};

const typeName = (t: string): string => TYPE_NAMES[t] ?? t;

/** `"addresses"`, `"addresses" item 2`, `"dateRange.from"`; '' for the body itself. */
function where(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  let key = '';
  const flush = (): void => {
    if (key !== '') out += `${out === '' ? '' : ' '}"${key}"`;
    key = '';
  };
  for (const p of path) {
    if (typeof p === 'number') {
      flush();
      out += `${out === '' ? 'item' : ' item'} ${p + 1}`;
    } else {
      key += `${key === '' ? '' : '.'}${String(p)}`;
    }
  }
  flush();
  return out;
}

function bound(issue: Extract<Issue, { code: 'too_big' | 'too_small' }>): string {
  const big = issue.code === 'too_big';
  const limit = Number(big ? issue.maximum : issue.minimum);
  const edge = big ? (issue.inclusive === false ? 'fewer than' : 'at most') : issue.inclusive === false ? 'more than' : 'at least';
  switch (issue.origin) {
    case 'array':
    case 'set':
      return limit === 0 && !big ? 'must not be empty' : `must list ${edge} ${limit} ${limit === 1 ? 'value' : 'values'}`;
    case 'string':
      return limit === 1 && !big ? 'must not be empty' : `must be ${edge} ${limit} ${limit === 1 ? 'character' : 'characters'} long`;
    default:
      return `must be ${big ? (issue.inclusive === false ? 'below' : 'at most') : issue.inclusive === false ? 'above' : 'at least'} ${limit}`;
  }
}

/** One issue as a sentence (without the final full stop). */
function sentence(issue: Issue): string {
  const at = where(issue.path);
  const subject = at === '' ? 'The request body' : at;
  // A schema's own wording ("must be lower-case letters…", "must be at least 8 characters") reads on
  // after the field name; zod's defaults ("Invalid input: …", "Too small: …") are rewritten below.
  if (issue.code !== 'custom' && !/^(invalid|too (small|big)|unrecognized)\b/i.test(issue.message)) return `${subject} ${issue.message}`;
  switch (issue.code) {
    case 'invalid_type': {
      const received = /received (\w+)/.exec(issue.message)?.[1];
      if (received === 'undefined') return `${subject} is missing`;
      const not = received && issue.expected !== 'int' ? `, not ${typeName(received)}` : '';
      return `${subject} must be ${typeName(issue.expected)}${not}`;
    }
    case 'unrecognized_keys': {
      const keys = issue.keys.map((k) => `"${k}"`).join(', ');
      return `Unknown ${issue.keys.length === 1 ? 'field' : 'fields'} ${keys}${at === '' ? '' : ` in ${at}`}`;
    }
    case 'too_big':
    case 'too_small':
      return `${subject} ${bound(issue)}`;
    case 'invalid_value':
      return `${subject} must be ${issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`}`;
    case 'invalid_format':
      return `${subject} is not in the expected format`;
    case 'custom':
      return at === '' ? issue.message : `${at} ${issue.message}`;
    default:
      return at === '' ? issue.message : `${at}: ${issue.message}`;
  }
}

const capital = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** Every issue as a sentence in sentence case, joined with "; ". */
export function validationMessage(issues: readonly Issue[]): string {
  return issues.map((i) => capital(sentence(i))).join('; ') || 'The request body is not valid';
}
