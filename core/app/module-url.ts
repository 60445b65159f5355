// Where a module named by its source file is at run time. The gateway runs either from its TypeScript
// sources (through tsx) or from the JavaScript `npm run build` emits into dist/ (deploy/build.mjs); in
// the compiled tree a `.ts` file named at run time (a plugin's index.ts, an analyzer module) is the
// `.js` file emitted beside where it would be. Decided once, by this module's own file name.

/** True when running from the compiled tree (this file is .js). */
export const COMPILED = !import.meta.url.endsWith('.ts');

/** The file (path or URL) to import for a source `.ts` name: itself from sources, its `.js` when compiled. */
export function runtimeModule(name: string): string {
  return COMPILED && name.endsWith('.ts') ? `${name.slice(0, -3)}.js` : name;
}
