// The application container: services, the hook registry, plugin loading in configured order, and
// shutdown in reverse order. Core never imports a plugin; plugins are resolved by name at boot.
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import { PosternError, errorMessage } from '../errors.ts';
import { ConfigError, zodProblems, type ConfigProblem } from '../config/load.ts';
import type { PluginEntry } from '../config/schema.ts';
import { HookRegistry } from './hooks.ts';
import type { PluginApi, PluginDefinition } from './plugin.ts';
import type { Services } from './services.ts';
import type { AnalyzerSpec } from '../pipeline/analysis-types.ts';
import { runtimeModule } from './module-url.ts';

export const PLUGIN_ROOT = fileURLToPath(new URL('../../plugins/', import.meta.url));

export class App {
  readonly hooks: HookRegistry;
  private readonly services = new Map<keyof Services, { owner: string; value: unknown }>();
  private readonly closers: Array<{ owner: string; fn: () => Promise<void> | void }> = [];
  private readonly loaded: string[] = [];
  /** Analyzers the plugins registered, in registration order (run by the analysis workers). */
  readonly analyzers: AnalyzerSpec[] = [];

  constructor(readonly log: Logger, hooks: HookRegistry) {
    this.hooks = hooks;
  }

  decorate<K extends keyof Services>(name: K, value: Services[K], owner = 'core'): void {
    const existing = this.services.get(name);
    if (existing) throw new PosternError('PLUGIN_CONFLICT', `Service "${String(name)}" is provided by both "${existing.owner}" and "${owner}"`);
    this.services.set(name, { owner, value });
  }

  service<K extends keyof Services>(name: K): Services[K] {
    const s = this.services.get(name);
    if (!s) throw new PosternError('SERVICE_MISSING', `Service "${String(name)}" is not available; is the plugin that provides it enabled?`);
    return s.value as Services[K];
  }

  hasService(name: keyof Services): boolean {
    return this.services.has(name);
  }

  onClose(owner: string, fn: () => Promise<void> | void): void {
    this.closers.push({ owner, fn });
  }

  plugins(): string[] {
    return [...this.loaded];
  }

  /** Register one plugin (built-in or loaded) with already-validated config. */
  async register<S extends PluginDefinition>(def: S, config: unknown): Promise<void> {
    for (const dep of def.dependencies ?? []) {
      if (!this.loaded.includes(dep)) throw new PosternError('PLUGIN_DEPENDENCY', `Plugin "${def.name}" needs plugin "${dep}"; enable "${dep}" before "${def.name}" in plugins`);
    }
    if (this.loaded.includes(def.name)) throw new PosternError('PLUGIN_CONFLICT', `Plugin "${def.name}" is enabled twice`);
    for (const s of def.provides ?? []) {
      const existing = this.services.get(s);
      if (existing) throw new PosternError('PLUGIN_CONFLICT', `Service "${String(s)}" is provided by both "${existing.owner}" and "${def.name}"`);
    }
    const log = this.log.child({ plugin: def.name });
    const api: PluginApi = {
      name: def.name,
      log,
      on: (hook, handler) => this.hooks.on(hook, def.name, handler),
      decorate: (name, value) => this.decorate(name, value, def.name),
      service: (name) => this.service(name),
      optionalService: (name) => () => (this.services.has(name) ? this.service(name) : null),
      onClose: (fn) => this.onClose(def.name, fn),
      analyzer: (reg) => {
        if (this.analyzers.some((a) => a.plugin === def.name)) throw new PosternError('PLUGIN_CONFLICT', `Plugin "${def.name}" registers a second analyzer`);
        this.analyzers.push({ plugin: def.name, module: reg.module, exportName: reg.export ?? 'analyze', options: reg.options ?? null, onDemand: reg.onDemand ?? false });
      },
    };
    await def.register(api, config as never);
    this.loaded.push(def.name);
  }

  /** Load the configured plugins in order; every problem is reported with its config location. */
  async loadPlugins(entries: PluginEntry[], where: (path: ReadonlyArray<PropertyKey>) => string, root = PLUGIN_ROOT): Promise<void> {
    const resolved = await resolvePlugins(entries, where, root);
    for (const { def, config } of resolved) await this.register(def, config);
  }

  async close(): Promise<void> {
    for (const c of [...this.closers].reverse()) {
      try {
        await c.fn();
      } catch (err) {
        this.log.error('Shutdown step failed', { owner: c.owner, err: errorMessage(err) });
      }
    }
    this.closers.length = 0;
  }
}

/** Import and validate the configured plugins without registering them (used by `config check` too). */
export async function resolvePlugins(
  entries: PluginEntry[], where: (path: ReadonlyArray<PropertyKey>) => string, root = PLUGIN_ROOT, env: NodeJS.ProcessEnv = process.env,
): Promise<Array<{ def: PluginDefinition; config: unknown }>> {
  const problems: ConfigProblem[] = [];
  const out: Array<{ def: PluginDefinition; config: unknown }> = [];
  for (const [i, entry] of entries.entries()) {
    const file = runtimeModule(join(entry.path ?? join(root, entry.name), 'index.ts'));
    if (!existsSync(file)) {
      problems.push({ where: where(['plugins', i, 'name']), path: `plugins.${i}.name`, message: `plugin "${entry.name}" does not exist (no ${file})` });
      continue;
    }
    let def: PluginDefinition;
    try {
      const mod = (await import(pathToFileURL(file).href)) as { default?: PluginDefinition };
      if (!mod.default || typeof mod.default.register !== 'function') throw new Error('its index.ts has no default export made with definePlugin()');
      def = mod.default;
    } catch (err) {
      problems.push({ where: where(['plugins', i, 'name']), path: `plugins.${i}.name`, message: `plugin "${entry.name}" cannot be loaded: ${errorMessage(err)}` });
      continue;
    }
    const overridden = applyPluginEnv(def, entry.config, env);
    const parsed = def.configSchema.safeParse(overridden.config);
    if (!parsed.success) {
      problems.push(...zodProblems(parsed.error, (p) => overridden.fromEnv.get(p.map(String).join('.')) ?? where(['plugins', i, 'config', ...p])).map((pr) => ({ ...pr, path: `plugins.${i}.config${pr.path ? '.' + pr.path : ''}` })));
      continue;
    }
    const earlier = entries.slice(0, i).map((e) => e.name);
    for (const dep of def.dependencies ?? []) {
      if (!earlier.includes(dep)) problems.push({ where: where(['plugins', i, 'name']), path: `plugins.${i}.name`, message: `plugin "${entry.name}" needs plugin "${dep}" enabled before it` });
    }
    out.push({ def, config: parsed.data });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/** A plugin's settings with its declared environment variables applied (numbers and booleans parsed as in core). */
export function applyPluginEnv(def: PluginDefinition, config: Record<string, unknown>, env: NodeJS.ProcessEnv): { config: Record<string, unknown>; fromEnv: Map<string, string> } {
  const fromEnv = new Map<string, string>();
  const out: Record<string, unknown> = structuredClone(config);
  for (const [name, path] of Object.entries(def.env ?? {})) {
    const raw = env[name];
    if (raw === undefined) continue;
    const keys = path.split('.');
    let cur = out;
    for (const k of keys.slice(0, -1)) {
      const next = cur[k];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[k] = {};
      cur = cur[k] as Record<string, unknown>;
    }
    const value = /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : /^(true|yes|on)$/i.test(raw) ? true : /^(false|no|off)$/i.test(raw) ? false : raw;
    cur[keys[keys.length - 1] as string] = value;
    fromEnv.set(path, `environment variable ${name}`);
  }
  return { config: out, fromEnv };
}

/** Environment variables declared by every plugin under root (for `postern config env`). */
export async function pluginEnvVariables(root = PLUGIN_ROOT): Promise<Array<{ name: string; plugin: string; path: string }>> {
  const out: Array<{ name: string; plugin: string; path: string }> = [];
  for (const dir of readdirSync(root, { withFileTypes: true })) {
    const file = join(root, dir.name, 'index.ts');
    if (!dir.isDirectory() || !existsSync(file)) continue;
    try {
      const mod = (await import(pathToFileURL(file).href)) as { default?: PluginDefinition };
      for (const [name, path] of Object.entries(mod.default?.env ?? {})) out.push({ name, plugin: mod.default?.name ?? dir.name, path });
    } catch {
      // A plugin that cannot be loaded has no variables to list; `config check` reports it.
    }
  }
  return out;
}
