// The plugin contract: definePlugin({ name, dependencies, provides, configSchema, register }).
// A plugin reaches the rest of Postern only through the PluginApi handed to register().
import type { z } from 'zod';
import type { Logger } from '../log.ts';
import type { HookHandler } from './hooks.ts';
import type { HookName } from './hook-types.ts';
import type { Services } from './services.ts';

/** A plugin's analyzer: CPU work on each message's bytes, run in the analysis workers under the archiving budget. */
export interface AnalyzerRegistration {
  /** file: URL of the module, e.g. `new URL('./analyzer.ts', import.meta.url).href`. */
  module: string;
  /** Export to call (default "analyze"): `(input: AnalyzerInput) => JSON-safe value`, see core/pipeline/analysis-types.ts. */
  export?: string;
  /** Settings handed to every call (JSON-safe). */
  options?: unknown;
  /**
   * Only run through the `analysis` service's analyzeWith() (e.g. text extraction for an index that is
   * filled behind the archive commit), never on each message being archived. Default false.
   */
  onDemand?: boolean;
}

export interface PluginApi {
  readonly name: string;
  readonly log: Logger;
  on<K extends HookName>(hook: K, handler: HookHandler<K>): void;
  /** Provide a service; boot fails if another plugin already provides it. */
  decorate<K extends keyof Services>(service: K, value: Services[K]): void;
  /** A service provided by core or by a declared dependency. */
  service<K extends keyof Services>(service: K): Services[K];
  /**
   * A service another plugin may provide later in the plugin order (an optional integration, e.g. the
   * IMAP server using the search index when that plugin is enabled): looked up on each call, null when
   * nobody provides it. Never a substitute for a declared dependency.
   */
  optionalService<K extends keyof Services>(service: K): () => Services[K] | null;
  /** Run on shutdown, in reverse registration order. */
  onClose(fn: () => Promise<void> | void): void;
  /**
   * Have an analyzer run on every message in the analysis workers, under the per-message time and
   * memory budget; its result reaches this plugin's hooks as `context.analysis[name]`. Untrusted-byte
   * parsing belongs here, not in a hook: a hook runs on the main thread and cannot be interrupted.
   */
  analyzer(registration: AnalyzerRegistration): void;
}

export interface PluginDefinition<S extends z.ZodType = z.ZodType> {
  name: string;
  /** Plugins that must be enabled before this one. */
  dependencies?: string[];
  /** Services this plugin decorates, declared so conflicts are found before any register() runs. */
  provides?: Array<keyof Services>;
  configSchema: S;
  /**
   * Environment variables that override this plugin's settings: variable name → dotted key in its
   * config (e.g. { POSTERN_IMAP_PORT: 'port' }). Applied before configSchema parses; listed by `postern config env`.
   */
  env?: Record<string, string>;
  register(app: PluginApi, config: z.output<S>): void | Promise<void>;
}

export function definePlugin<S extends z.ZodType>(definition: PluginDefinition<S>): PluginDefinition<S> {
  return definition;
}
