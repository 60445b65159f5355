// Fuzz target for the configuration loader (core/config/load.ts) with YAML text: whatever the file holds,
// loading either returns a validated configuration or fails with CONFIG_INVALID naming the file (and the
// line where there is one), never with another error.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { ConfigError, loadConfig } from '../../core/config/load.ts';
import { check, type FuzzGroup } from './target.ts';

const EXAMPLE = new URL('../../config/postern.yaml', import.meta.url);

const alias = (levels: number): string => {
  let s = 'a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]\n';
  for (let i = 1; i <= levels; i++) s += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
  return s;
};

const SEEDS = [
  '', '---\n', '~\n', '[]\n', '- a\n', '"text"\n', 'dataDir: ./data\n', 'smtp:\n  port: 2525\n  tls: {cert: "", key: ""}\n', 'smtp: {port: "x"}\n', 'smtp:\n  port: 1\n  port: 2\n',
  'unknown: 1\n', 'smtp:\n  auth:\n    users:\n      alice: "$scrypt$..."\n', 'plugins:\n  - name: imap\n    port: 1143\n', 'x: &a {b: *a}\n', 'a: !!binary aGVsbG8=\n', 'a: !!js/function "f"\n',
  'a: !!set {x, y}\n', 'a: !!omap [{x: 1}]\n', 'a: !custom x\n', '<<: {dataDir: x}\n', 'dataDir: &d x\nlog: {level: *d}\n', alias(3), alias(9), `${'['.repeat(5000)}${']'.repeat(5000)}\n`,
  `${'- '.repeat(3000)}x\n`, `smtp:\n${'  '.repeat(1)}port: 1e400\n`, 'smtp: {port: 0x10}\n', 'dataDir: "\\u0000"\n', 'dataDir: "\\ud800"\n', '? [a, b]\n: c\n', '%YAML 1.1\n---\nx: y\n', '"a": 1\n"a": 2\n',
];

const dir = join(tmpdir(), `postern-fuzz-config-${process.pid}-${threadId}`, 'config');
const file = join(dir, 'postern.yaml');

export const group: FuzzGroup = {
  group: 'config',
  targets: [
    {
      name: 'config.load',
      seeds: () => [readFileSync(EXAMPLE), ...SEEDS.map((s) => Buffer.from(s, 'utf8'))],
      dictionary: ['\n', '\n  ', ': ', '- ', '&a ', '*a', '<<: *a\n', '!!str ', '!!int ', '!!binary ', '!!map ', '!tag ', '[', ']', '{', '}', ',', '"', "'", '#', '---\n', '...\n', '? ', '|\n', '>-\n', '~', 'null', 'true', 'yes', '0x1F', '1e3', '.inf', '.nan', '-0', '\t', '\ufeff', 'smtp:\n', 'port: ', 'dataDir: ', 'plugins:\n', 'admin:\n', 'storage:\n'],
      maxLength: 64 * 1024,
      run(input) {
        mkdirSync(dir, { recursive: true });
        writeFileSync(file, input);
        try {
          const loaded = loadConfig(file, {});
          check(isAbsolute(loaded.config.dataDir), 'dataDir is resolved to an absolute path', loaded.config.dataDir);
          check(loaded.fromEnv.length === 0, 'nothing came from the (empty) environment');
        } catch (err) {
          check(err instanceof ConfigError, 'a bad file fails with CONFIG_INVALID, not another error', err instanceof Error ? `${err.name}: ${err.message}` : String(err));
          check(err.problems.length > 0 && err.problems.every((p) => p.where.startsWith(file)), 'every problem names the file', err.problems.slice(0, 3));
        }
      },
    },
  ],
};
