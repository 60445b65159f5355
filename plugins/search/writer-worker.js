// Entry of the search index's writer thread. In the compiled tree (dist/) it runs the emitted
// writer-worker-main.js; from the sources it loads the TypeScript through tsx (a worker does not
// inherit the main thread's loader), then runs writer-worker-main.ts.
import { existsSync } from 'node:fs';

const compiled = new URL('./writer-worker-main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./writer-worker-main.ts');
}
