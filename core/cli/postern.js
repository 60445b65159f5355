#!/usr/bin/env node
// Entry point of the `postern` command. In the compiled tree (`npm run build`, dist/) it runs the emitted
// main.js directly; from the sources it loads the TypeScript through tsx, then runs the CLI.
import { existsSync } from 'node:fs';

const compiled = new URL('./main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
