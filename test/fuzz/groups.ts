// The fuzz tier's target groups, one targets module each (test/fuzz/<group>.targets.ts, exporting `group`).
import type { FuzzGroup } from './target.ts';

export const GROUP_NAMES = ['mime', 'journal', 'imap-message', 'imap-protocol', 'pop3', 'smtp', 'config', 'admin', 'search-query', 'backup'];
/** Groups run only when named in POSTERN_FUZZ_GROUPS (pdf.js on mutated PDFs can take seconds per input on a loaded machine). */
export const EXTRA_GROUP_NAMES = ['search-extract'];

export function moduleOf(group: string): string {
  return new URL(`./${group}.targets.ts`, import.meta.url).href;
}

export async function loadGroups(names: string[] = GROUP_NAMES): Promise<Array<{ module: string; group: FuzzGroup }>> {
  const out: Array<{ module: string; group: FuzzGroup }> = [];
  for (const name of names) {
    const module = moduleOf(name);
    out.push({ module, group: ((await import(module)) as { group: FuzzGroup }).group });
  }
  return out;
}
