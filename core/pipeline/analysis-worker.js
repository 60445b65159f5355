// Entry of an analysis worker thread: loads the TypeScript sources through tsx (a worker does not
// inherit the main thread's loader), then runs analysis-worker-main.ts.
import { register } from 'tsx/esm/api';

register();
await import('./analysis-worker-main.ts');
