// A bound on how deeply a YAML text can nest, checked before the yaml library reads it. The library
// recurses once per level (its composer, and its CST parser too), and a stack overflow there can land
// inside V8's regular-expression compiler, which aborts the process instead of throwing: a file of
// "? ? ? …" about 900 deep did, found by the fuzz tier. The check is purely lexical and errs on the
// safe side, so nothing in the text can hide a level from it:
//  - per line, the indentation plus every "-", "?" or ":" followed by a blank counts as a level (block
//    nesting needs one of the two for each level it adds on a line);
//  - in the whole file, every "[" and "{" counts (closing brackets are not trusted: one inside a quoted
//    string closes nothing).
// A real configuration has a few levels and a few dozen brackets.

/** Indentation and indicators on one line. */
export const MAX_LINE_LEVELS = 200;
/** "[" and "{" in the whole file. */
export const MAX_FLOW_OPENERS = 2000;

export type NestingProblem = { kind: 'line'; line: number; levels: number } | { kind: 'flow'; line: number; openers: number };

/** The first reason `text` may nest too deeply, or null. */
export function yamlNestingProblem(text: string): NestingProblem | null {
  let line = 1;
  let levels = 0;
  let atIndent = true;
  let openers = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) {
      line++;
      levels = 0;
      atIndent = true;
      continue;
    }
    if (atIndent && (c === 0x20 || c === 0x09)) {
      if (++levels > MAX_LINE_LEVELS) return { kind: 'line', line, levels };
      continue;
    }
    atIndent = false;
    if (c === 0x5b || c === 0x7b) {
      if (++openers > MAX_FLOW_OPENERS) return { kind: 'flow', line, openers };
    } else if (c === 0x2d || c === 0x3f || c === 0x3a) {
      const n = text.charCodeAt(i + 1);
      if ((Number.isNaN(n) || n === 0x20 || n === 0x09 || n === 0x0a || n === 0x0d) && ++levels > MAX_LINE_LEVELS) return { kind: 'line', line, levels };
    }
  }
  return null;
}
