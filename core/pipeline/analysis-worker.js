// Entry of an analysis worker thread. In the compiled tree (dist/) it runs the emitted
// analysis-worker-main.js; from the sources it loads the TypeScript through tsx (a worker does not
// inherit the main thread's loader), then runs analysis-worker-main.ts.
import { existsSync } from 'node:fs';

const compiled = new URL('./analysis-worker-main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./analysis-worker-main.ts');
}
