// Worker-thread entry of the fuzz harness: Node 20 workers do not inherit `--import tsx`, so the
// TypeScript loader is registered here before the worker's own module (worker.ts) is loaded.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
