// POSTERN_* environment variables that set nothing: a misspelt override (POSTERN_SMTP_PORTT) would
// otherwise be ignored without a word. Names each one with the closest known variable, for a warning
// at start (`postern serve`) and in `postern config check`. Reads only names, never values.
import { envVariables } from './load.ts';

/** Variables the CLI itself reads (not settings): the configuration file and the --as password. */
export const CLI_VARIABLES = ['POSTERN_CONFIG', 'POSTERN_PASSWORD'] as const;

export interface UnknownVariable {
  name: string;
  /** The known variable nearest by edit distance. */
  closest: string;
  /** Close enough to be a typo of `closest`. */
  likelyTypo: boolean;
}

/** Levenshtein distance (names are short: a row of integers is enough). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/**
 * Every POSTERN_* variable in env that is neither a setting (`postern config env`), nor one of
 * `extraKnown` (plugin variables), nor one the CLI reads. Sorted by name.
 */
export function unknownEnvVariables(env: NodeJS.ProcessEnv, extraKnown: Iterable<string> = []): UnknownVariable[] {
  const known = [...new Set([...envVariables().map((v) => v.name), ...extraKnown, ...CLI_VARIABLES])];
  const out: UnknownVariable[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('POSTERN_') || known.includes(name)) continue;
    let closest = known[0] ?? '';
    let best = Infinity;
    for (const k of known) {
      const d = distance(name, k);
      if (d < best) {
        best = d;
        closest = k;
      }
    }
    out.push({ name, closest, likelyTypo: best <= Math.max(2, Math.floor(name.length / 5)) });
  }
  return out;
}

/** The warning sentence for one unknown variable. */
export function unknownEnvWarning(u: UnknownVariable): string {
  return `Environment variable ${u.name} is not a Postern setting and changes nothing (${u.likelyTypo ? 'did you mean' : 'the closest is'} ${u.closest}${u.likelyTypo ? '?' : ''})`;
}
