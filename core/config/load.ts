// Loads the YAML configuration file, applies POSTERN_* environment overrides and validates the result.
// Trusts nothing: every error names the file and line (or the environment variable) it came from.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve, dirname } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import { MAX_FLOW_OPENERS, MAX_LINE_LEVELS, yamlNestingProblem } from './yaml-nesting.ts';
import type { ZodError } from 'zod';
import { configSchema, defaultConfig, type Config } from './schema.ts';
import { PosternError } from '../errors.ts';

export interface ConfigProblem {
  /** Where the bad value came from: "file:line:col" or "environment variable NAME". */
  where: string;
  path: string;
  message: string;
}

export class ConfigError extends PosternError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super('CONFIG_INVALID', problems.map((p) => `${p.where}: ${p.path ? `"${p.path}" ` : ''}${p.message}`).join('\n'));
    this.problems = problems;
  }
}

export interface LoadedConfig {
  config: Config;
  file: string | null;
  /** Environment variables that overrode the file. */
  fromEnv: string[];
  /** Where a config path came from, for errors found after loading (plugin settings): "file:line:col". */
  where(path: ReadonlyArray<PropertyKey>): string;
}

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

/** POSTERN_ + the key path in upper snake case: smtp.maxMessageSize -> POSTERN_SMTP_MAX_MESSAGE_SIZE. */
export function envName(path: readonly string[]): string {
  return 'POSTERN_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** Every scalar leaf of the defaults, with its env variable name. Plugin lists and maps are file-only. */
export function envVariables(): Array<{ name: string; path: string[]; sample: unknown }> {
  const out: Array<{ name: string; path: string[]; sample: unknown }> = [];
  const walk = (obj: Record<string, unknown>, path: string[]): void => {
    for (const [k, v] of Object.entries(obj)) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        if (Object.keys(v).length > 0) walk(v as Record<string, unknown>, [...path, k]);
      } else if (!Array.isArray(v)) {
        out.push({ name: envName([...path, k]), path: [...path, k], sample: v });
      }
    }
  };
  walk(defaultConfig() as unknown as Record<string, unknown>, []);
  return out;
}

function parseEnvValue(raw: string, sample: unknown): Json {
  if (typeof sample === 'number') {
    // Plain decimal only: "0x19" or "1e3" stay strings and fail validation with a clear message.
    return /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
  }
  if (typeof sample === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    return raw;
  }
  return raw;
}

function setIn(obj: { [k: string]: Json }, path: readonly string[], value: Json): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as { [k: string]: Json };
  }
  cur[path[path.length - 1] as string] = value;
}

function locate(doc: ReturnType<typeof parseDocument>, lc: LineCounter, file: string, path: ReadonlyArray<PropertyKey>): string {
  // Walk down as far as the document goes; report the deepest node that exists.
  for (let depth = path.length; depth >= 0; depth--) {
    const sub = path.slice(0, depth).map((p) => (typeof p === 'symbol' ? String(p) : p));
    const node = (depth === 0 ? doc.contents : doc.getIn(sub, true)) as Node | null | undefined;
    if (node && node.range) {
      // For a key that exists, point at the key itself rather than its value when possible.
      let offset = node.range[0];
      if (depth > 0) {
        const parent = (depth === 1 ? doc.contents : doc.getIn(sub.slice(0, -1), true)) as Node | null;
        if (parent && isMap(parent)) {
          const pair = parent.items.find((it) => (it.key as { value?: unknown } | null)?.value === sub[depth - 1]);
          const keyNode = pair?.key as Node | undefined;
          if (keyNode?.range) offset = keyNode.range[0];
        } else if (parent && isSeq(parent)) {
          offset = node.range[0];
        }
      }
      const pos = lc.linePos(offset);
      return `${file}:${pos.line}:${pos.col}`;
    }
  }
  return file;
}

export function zodProblems(err: ZodError, whereOf: (path: ReadonlyArray<PropertyKey>) => string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of err.issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [null];
    for (const key of keys) {
      const path = key === null ? issue.path : [...issue.path, key];
      const message = key === null ? issue.message : `unknown key "${key}"`;
      problems.push({ where: whereOf(path), path: path.map(String).join('.'), message });
    }
  }
  return problems;
}

/**
 * Load and validate. `file` may be null to run on defaults + environment only. Relative paths inside the
 * config (dataDir, TLS files) are resolved against the config file's directory's parent when the file
 * lives in a `config/` folder (so `./data` means the checkout's data dir), else against the file's directory.
 */
/** Larger configuration files are refused unread (a configuration is a few KiB). */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export function loadConfig(file: string | null, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const problems: ConfigProblem[] = [];
  let raw: { [k: string]: Json } = {};
  let doc: ReturnType<typeof parseDocument> | null = null;
  const lc = new LineCounter();
  if (file !== null) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError([{ where: file, path: '', message: `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` }]);
    }
    if (text.length > MAX_CONFIG_BYTES) throw new ConfigError([{ where: file, path: '', message: `is larger than ${MAX_CONFIG_BYTES} bytes` }]);
    const deep = yamlNestingProblem(text);
    if (deep) {
      throw new ConfigError([{
        where: `${file}:${deep.line}:1`, path: '',
        message: deep.kind === 'line'
          ? `nests too deeply (more than ${MAX_LINE_LEVELS} levels of indentation and "-", "?" or ":" indicators on this line)`
          : `nests too deeply (more than ${MAX_FLOW_OPENERS} "[" and "{" in the file)`,
      }]);
    }
    try {
      doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
    } catch (err) {
      // A document nested deeper than the parser's stack ("- - - - …" thousands deep).
      throw new ConfigError([{ where: `${file}:1:1`, path: '', message: `cannot be read (${err instanceof RangeError ? 'nested too deeply' : err instanceof Error ? err.message : String(err)})` }]);
    }
    for (const e of doc.errors) {
      const pos = lc.linePos(e.pos[0]);
      problems.push({ where: `${file}:${pos.line}:${pos.col}`, path: '', message: e.message.split('\n')[0] ?? e.message });
    }
    if (problems.length > 0) throw new ConfigError(problems);
    let js: unknown;
    try {
      js = doc.toJS();
    } catch (err) {
      // e.g. the yaml library's guard against alias expansion bombs ("billion laughs"), or nesting too deep
      throw new ConfigError([{ where: `${file}:1:1`, path: '', message: `cannot be read (${err instanceof RangeError ? 'nested too deeply' : err instanceof Error ? err.message : String(err)})` }]);
    }
    if (js !== null && js !== undefined) {
      if (typeof js !== 'object' || Array.isArray(js)) throw new ConfigError([{ where: `${file}:1:1`, path: '', message: 'must be a mapping of keys to values' }]);
      raw = js as { [k: string]: Json };
    }
  }
  const fromEnv: string[] = [];
  const envPaths = new Map<string, string>();
  for (const v of envVariables()) {
    const value = env[v.name];
    if (value === undefined) continue;
    setIn(raw, v.path, parseEnvValue(value, v.sample));
    fromEnv.push(v.name);
    envPaths.set(v.path.join('.'), v.name);
  }
  const where = (path: ReadonlyArray<PropertyKey>): string => {
    const envVar = envPaths.get(path.map(String).join('.'));
    if (envVar) return `environment variable ${envVar}`;
    return doc && file ? locate(doc, lc, file, path) : 'defaults';
  };
  let parsed: ReturnType<typeof configSchema.safeParse>;
  try {
    parsed = configSchema.safeParse(raw);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new ConfigError([{ where: file ? `${file}:1:1` : 'defaults', path: '', message: 'cannot be read (nested too deeply)' }]);
  }
  if (!parsed.success) throw new ConfigError(zodProblems(parsed.error, where));
  const config = parsed.data;
  const base = file === null ? process.cwd() : baseDirOf(file);
  const abs = (p: string): string => (p === '' || isAbsolute(p) ? p : resolve(base, p));
  config.dataDir = abs(config.dataDir);
  config.smtp.tls = { cert: abs(config.smtp.tls.cert), key: abs(config.smtp.tls.key) };
  config.admin.tls = { cert: abs(config.admin.tls.cert), key: abs(config.admin.tls.key) };
  config.storage.encryptionKeyFile = abs(config.storage.encryptionKeyFile);
  return { config, file, fromEnv, where };
}

function baseDirOf(file: string): string {
  const dir = dirname(resolve(file));
  return dir.endsWith('/config') ? dirname(dir) : dir;
}
