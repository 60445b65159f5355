// Entry of the search index's writer thread: loads the TypeScript sources through tsx (a worker does
// not inherit the main thread's loader), then runs writer-worker-main.ts.
import { register } from 'tsx/esm/api';

register();
await import('./writer-worker-main.ts');
