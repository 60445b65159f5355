import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { createMemoryLogger } from '../../../core/log.ts';
import { App, resolvePlugins } from '../../../core/app/app.ts';
import { HookRegistry } from '../../../core/app/hooks.ts';
import { definePlugin } from '../../../core/app/plugin.ts';
import { verdict } from '../../../core/app/verdict.ts';
import { ConfigError, loadConfig, type ConfigProblem } from '../../../core/config/load.ts';
import { defaultConfig } from '../../../core/config/schema.ts';
import type { SessionInfo } from '../../../core/app/hook-types.ts';

const CHECKOUT = fileURLToPath(new URL('../../../', import.meta.url));
const PLUGIN_API_URL = pathToFileURL(join(CHECKOUT, 'core', 'app', 'plugin.ts')).href;
const session: SessionInfo = { id: 's', listener: 'smtp', remoteAddress: '192.0.2.1', remotePort: 1, helo: '', secure: false, user: null };

function makeApp(): { app: App; lines: ReturnType<typeof createMemoryLogger>['lines'] } {
  const { logger, lines } = createMemoryLogger();
  return { app: new App(logger, new HookRegistry(logger, 5000)), lines };
}

async function problemsOf(run: Promise<unknown>): Promise<ConfigProblem[]> {
  try {
    await run;
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('App services', () => {
  it('decorates and returns a service', () => {
    const { app } = makeApp();
    const config = defaultConfig();
    assert.equal(app.hasService('config'), false);
    app.decorate('config', config);
    assert.equal(app.hasService('config'), true);
    assert.equal(app.service('config'), config);
  });

  it('refuses a second provider of a service with PLUGIN_CONFLICT naming both', () => {
    const { app } = makeApp();
    app.decorate('config', defaultConfig(), 'first');
    assert.throws(() => app.decorate('config', defaultConfig(), 'second'), (err: unknown) => {
      assert.equal((err as { code?: unknown }).code, 'PLUGIN_CONFLICT');
      assert.match((err as Error).message, /"config".*"first".*"second"/);
      return true;
    });
  });

  it('refuses a missing service with SERVICE_MISSING', () => {
    const { app } = makeApp();
    assert.throws(() => app.service('archive'), { name: 'PosternError', code: 'SERVICE_MISSING' });
  });
});

describe('App.register', () => {
  const alpha = definePlugin({
    name: 'alpha',
    configSchema: z.strictObject({ n: z.number().default(1) }),
    register(api, config) {
      api.on('connect', () => (config.n > 5 ? verdict.reject(554, '5.7.1 No') : undefined));
    },
  });
  const beta = definePlugin({ name: 'beta', dependencies: ['alpha'], configSchema: z.object({}), register() {} });

  it('registers plugins in order with their config and hooks', async () => {
    const { app } = makeApp();
    await app.register(alpha, { n: 9 });
    await app.register(beta, {});
    assert.deepEqual(app.plugins(), ['alpha', 'beta']);
    assert.deepEqual(app.hooks.list('connect'), ['alpha']);
    assert.deepEqual(await app.hooks.gate('connect', { session }), { kind: 'reject', code: 554, text: '5.7.1 No' });
  });

  it('refuses a plugin whose dependency is not registered with PLUGIN_DEPENDENCY', async () => {
    const { app } = makeApp();
    let ran = false;
    const needy = definePlugin({ name: 'needy', dependencies: ['alpha'], configSchema: z.object({}), register() { ran = true; } });
    await assert.rejects(app.register(needy, {}), (err: unknown) => {
      assert.equal((err as { code?: unknown }).code, 'PLUGIN_DEPENDENCY');
      assert.match((err as Error).message, /"needy".*"alpha"/);
      return true;
    });
    assert.equal(ran, false);
    assert.deepEqual(app.plugins(), []);
  });

  it('refuses a plugin enabled twice, and a declared service someone else provides, before register runs', async () => {
    const { app } = makeApp();
    await app.register(alpha, { n: 1 });
    await assert.rejects(app.register(alpha, { n: 1 }), { name: 'PosternError', code: 'PLUGIN_CONFLICT' });
    app.decorate('config', defaultConfig());
    let ran = false;
    const provider = definePlugin({ name: 'provider', provides: ['config'], configSchema: z.object({}), register() { ran = true; } });
    await assert.rejects(app.register(provider, {}), (err: unknown) => {
      assert.equal((err as { code?: unknown }).code, 'PLUGIN_CONFLICT');
      assert.match((err as Error).message, /"config".*"core".*"provider"/);
      return true;
    });
    assert.equal(ran, false);
    assert.deepEqual(app.plugins(), ['alpha']);
  });

  it('lets a plugin decorate a service another plugin then uses, and refuses a second decorator', async () => {
    const { app } = makeApp();
    const config = defaultConfig();
    const maker = definePlugin({ name: 'maker', configSchema: z.object({}), register(api) { api.decorate('config', config); } });
    let seen: unknown = null;
    const user = definePlugin({ name: 'user', dependencies: ['maker'], configSchema: z.object({}), register(api) { seen = api.service('config'); } });
    await app.register(maker, {});
    await app.register(user, {});
    assert.equal(seen, config);
    const rival = definePlugin({ name: 'rival', configSchema: z.object({}), register(api) { api.decorate('config', defaultConfig()); } });
    await assert.rejects(app.register(rival, {}), (err: unknown) => {
      assert.equal((err as { code?: unknown }).code, 'PLUGIN_CONFLICT');
      assert.match((err as Error).message, /"maker".*"rival"/);
      return true;
    });
    assert.deepEqual(app.plugins(), ['maker', 'user']);
  });

  it('runs onClose steps in reverse order, logs a failing one and goes on, and runs them once', async () => {
    const { app, lines } = makeApp();
    const order: string[] = [];
    app.onClose('core', () => { order.push('core'); });
    await app.register(definePlugin({ name: 'p1', configSchema: z.object({}), register(api) {
      api.onClose(async () => { order.push('p1'); });
    } }), {});
    await app.register(definePlugin({ name: 'p2', configSchema: z.object({}), register(api) {
      api.onClose(() => { order.push('p2'); throw new Error('p2 close failed'); });
    } }), {});
    app.onClose('last', () => { order.push('last'); });
    await app.close();
    assert.deepEqual(order, ['last', 'p2', 'p1', 'core']);
    assert.ok(lines.some((l) => l.level === 'error' && l.owner === 'p2'), 'the failed step is logged with its owner');
    await app.close();
    assert.deepEqual(order, ['last', 'p2', 'p1', 'core']);
  });
});

describe('resolvePlugins', () => {
  let root = '';
  let configDir = '';

  function plugin(name: string, body: string): void {
    mkdirSync(join(root, name), { recursive: true });
    writeFileSync(join(root, name, 'index.ts'), `import { z } from 'zod';\nimport { definePlugin } from ${JSON.stringify(PLUGIN_API_URL)};\n${body}\n`);
  }

  let n = 0;
  /** Write a YAML config (lines joined with \n) and load it with loadConfig. */
  function config(lines: string[]): { file: string; loaded: ReturnType<typeof loadConfig> } {
    const file = join(configDir, `postern-${++n}.yaml`);
    writeFileSync(file, lines.join('\n') + '\n');
    return { file, loaded: loadConfig(file, {}) };
  }

  before(() => {
    const tmp = join(CHECKOUT, '.tmp');
    mkdirSync(tmp, { recursive: true });
    const base = mkdtempSync(join(tmp, 'plugins-test-'));
    root = join(base, 'plugins');
    configDir = join(base, 'etc');
    mkdirSync(configDir, { recursive: true });
    plugin('alpha', `export default definePlugin({
  name: 'alpha',
  configSchema: z.strictObject({ limit: z.number().int().min(1).default(10), label: z.string().default('a') }),
  register(app, config) {
    app.on('connect', () => (config.limit === 99 ? { kind: 'accept' } : undefined));
  },
});`);
    plugin('beta', `export default definePlugin({
  name: 'beta',
  dependencies: ['alpha'],
  configSchema: z.strictObject({ url: z.string().url() }),
  register() {},
});`);
    plugin('gamma', `export default definePlugin({ name: 'gamma', configSchema: z.object({}).default({}), register() {} });`);
    plugin('no-default', `export const notAPlugin = definePlugin({ name: 'no-default', configSchema: z.object({}), register() {} });`);
    plugin('throws', `throw new Error('cannot start: missing native module');`);
  });

  after(() => {
    rmSync(join(root, '..'), { recursive: true, force: true });
  });

  it('loads valid plugins in configured order with parsed config', async () => {
    const { loaded } = config([
      'plugins:',
      '  - name: gamma',
      '  - name: alpha',
      '    config:',
      '      limit: 99',
      '  - name: beta',
      '    config: { url: "https://example.org/hook" }',
    ]);
    const resolved = await resolvePlugins(loaded.config.plugins, loaded.where, root);
    assert.deepEqual(resolved.map((r) => r.def.name), ['gamma', 'alpha', 'beta']);
    assert.deepEqual(resolved.map((r) => r.config), [{}, { limit: 99, label: 'a' }, { url: 'https://example.org/hook' }]);

    const { app } = makeApp();
    await app.loadPlugins(loaded.config.plugins, loaded.where, root);
    assert.deepEqual(app.plugins(), ['gamma', 'alpha', 'beta']);
    assert.deepEqual(await app.hooks.gate('connect', { session }), { kind: 'accept' });
  });

  it('reports a missing plugin at its config line', async () => {
    const { file, loaded } = config([
      'smtp:',
      '  port: 2525',
      'plugins:',
      '  - name: alpha',
      '  - name: nosuch',
    ]);
    const problems = await problemsOf(resolvePlugins(loaded.config.plugins, loaded.where, root));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.where, `${file}:5:5`);
    assert.equal(problems[0]?.path, 'plugins.1.name');
    assert.match(problems[0]?.message ?? '', /plugin "nosuch" does not exist/);
  });

  it('reports plugin config failing its schema at the line of the bad value', async () => {
    const { file, loaded } = config([
      'plugins:',
      '  - name: alpha',
      '    config:',
      '      label: fine',
      '      limit: 0',
      '  - name: beta',
      '    config:',
      '      url: not a url',
      '      extra: 1',
    ]);
    const problems = await problemsOf(resolvePlugins(loaded.config.plugins, loaded.where, root));
    const byPath = new Map(problems.map((p) => [p.path, p]));
    assert.deepEqual([...byPath.keys()].sort(), ['plugins.0.config.limit', 'plugins.1.config.extra', 'plugins.1.config.url']);
    assert.equal(byPath.get('plugins.0.config.limit')?.where, `${file}:5:7`);
    assert.equal(byPath.get('plugins.1.config.url')?.where, `${file}:8:7`);
    assert.equal(byPath.get('plugins.1.config.extra')?.where, `${file}:9:7`);
    assert.equal(byPath.get('plugins.1.config.extra')?.message, 'unknown key "extra"');
  });

  it('reports a required plugin setting that is absent at the plugin entry', async () => {
    const { file, loaded } = config(['plugins:', '  - name: alpha', '  - name: beta']);
    const problems = await problemsOf(resolvePlugins(loaded.config.plugins, loaded.where, root));
    assert.deepEqual(problems.map((p) => [p.path, p.where]), [['plugins.1.config.url', `${file}:3:5`]]);
  });

  it('reports a dependency listed after the plugin that needs it', async () => {
    const { file, loaded } = config([
      'plugins:',
      '  - name: beta',
      '    config: { url: "https://example.org/" }',
      '  - name: alpha',
    ]);
    const problems = await problemsOf(resolvePlugins(loaded.config.plugins, loaded.where, root));
    assert.deepEqual(problems, [{ where: `${file}:2:5`, path: 'plugins.0.name', message: 'plugin "beta" needs plugin "alpha" enabled before it' }]);
  });

  it('reports a dependency that is not enabled at all', async () => {
    const { file, loaded } = config(['plugins:', '  - name: gamma', '  - name: beta', '    config: { url: "https://example.org/" }']);
    const problems = await problemsOf(resolvePlugins(loaded.config.plugins, loaded.where, root));
    assert.deepEqual(problems, [{ where: `${file}:3:5`, path: 'plugins.1.name', message: 'plugin "beta" needs plugin "alpha" enabled before it' }]);
  });

  it('reports plugins that cannot be loaded, and every problem at once', async () => {
    const { file, loaded } = config([
      'plugins:',
      '  - name: no-default',
      '  - name: throws',
      '  - name: ghost',
      '  - name: alpha',
      '    config: { limit: -3 }',
    ]);
    const problems = await problemsOf(resolvePlugins(loaded.config.plugins, loaded.where, root));
    assert.deepEqual(problems.map((p) => [p.where, p.path]), [
      [`${file}:2:5`, 'plugins.0.name'],
      [`${file}:3:5`, 'plugins.1.name'],
      [`${file}:4:5`, 'plugins.2.name'],
      [`${file}:6:15`, 'plugins.3.config.limit'],
    ]);
    assert.match(problems[0]?.message ?? '', /"no-default" cannot be loaded: .*definePlugin/);
    assert.match(problems[1]?.message ?? '', /"throws" cannot be loaded: cannot start: missing native module/);
    assert.match(problems[2]?.message ?? '', /"ghost" does not exist/);
  });

  it('makes loadPlugins fail before registering anything when one entry is bad', async () => {
    const { loaded } = config(['plugins:', '  - name: alpha', '  - name: ghost']);
    const { app } = makeApp();
    await problemsOf(app.loadPlugins(loaded.config.plugins, loaded.where, root));
    assert.deepEqual(app.plugins(), []);
  });
});
