// The Postern settings the deploy recipes give (every ```yaml block of the recipe pages, tagged ones
// included) are valid configuration as written: each is merged into the shipped config/postern.yaml,
// as the pages tell an operator to do, and loaded with Postern's own loader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../../core/config/load.ts';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const PAGES = ['deploy/postfix/README.md', 'deploy/exchange/README.md', 'deploy/google/README.md', 'deploy/workmail/README.md'];

type Tree = Record<string, unknown>;
const isMap = (x: unknown): x is Tree => typeof x === 'object' && x !== null && !Array.isArray(x);
const merge = (base: Tree, add: Tree): Tree => {
  const out = { ...base };
  for (const [k, v] of Object.entries(add)) out[k] = isMap(out[k]) && isMap(v) ? merge(out[k], v) : v;
  return out;
};

for (const page of PAGES) {
  test(`${page}: every yaml block merged into the shipped config is valid`, () => {
    const blocks = [...readFileSync(join(REPO, page), 'utf8').matchAll(/^```yaml(?: [\w-]+)?\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
    assert.ok(blocks.length > 0, `${page} has a yaml block`);
    const shipped = parse(readFileSync(join(REPO, 'config', 'postern.yaml'), 'utf8')) as Tree;
    const dir = mkdtempSync(join(tmpdir(), 'postern-recipe-'));
    try {
      for (const [i, block] of blocks.entries()) {
        const settings = parse(block) as unknown;
        assert.ok(isMap(settings), `block ${i + 1} is a mapping`);
        const file = join(dir, `postern-${i}.yaml`);
        writeFileSync(file, stringify(merge(shipped, settings)));
        const loaded = loadConfig(file, {});
        for (const [section, values] of Object.entries(settings)) {
          const got = (loaded.config as unknown as Tree)[section];
          assert.ok(isMap(got) && isMap(values), `${section} is a section`);
          for (const [k, v] of Object.entries(values)) {
            if (k === 'tls' || k === 'dataDir') continue; // paths are resolved by the loader
            assert.deepEqual(got[k], v, `${page} block ${i + 1}: ${section}.${k} as written`);
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
