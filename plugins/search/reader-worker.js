// Entry of a search index reader thread. In the compiled tree (dist/) it runs the emitted
// reader-worker-main.js; from the sources it loads the TypeScript through tsx (a worker does not
// inherit the main thread's loader), then runs reader-worker-main.ts.
import { existsSync } from 'node:fs';

const compiled = new URL('./reader-worker-main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./reader-worker-main.ts');
}
