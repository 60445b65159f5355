// The plugin contract: definePlugin({ name, dependencies, provides, configSchema, register }).
// A plugin reaches the rest of Postern only through the PluginApi handed to register().
import type { z } from 'zod';
import type { Logger } from '../log.ts';
import type { HookHandler } from './hooks.ts';
import type { HookName } from './hook-types.ts';
import type { Services } from './services.ts';

export interface PluginApi {
  readonly name: string;
  readonly log: Logger;
  on<K extends HookName>(hook: K, handler: HookHandler<K>): void;
  /** Provide a service; boot fails if another plugin already provides it. */
  decorate<K extends keyof Services>(service: K, value: Services[K]): void;
  /** A service provided by core or by a declared dependency. */
  service<K extends keyof Services>(service: K): Services[K];
  /** Run on shutdown, in reverse registration order. */
  onClose(fn: () => Promise<void> | void): void;
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
