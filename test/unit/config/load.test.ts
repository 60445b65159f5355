import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, envName, envVariables, loadConfig, type ConfigProblem } from '../../../core/config/load.ts';
import { defaultConfig } from '../../../core/config/schema.ts';

const CHECKOUT = fileURLToPath(new URL('../../../', import.meta.url));
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-config-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

let fileNo = 0;
/** Write a YAML file (lines joined with \n) into the temp dir and return its path. */
function yamlFile(lines: string[], sub = ''): string {
  const folder = join(dir, sub);
  mkdirSync(folder, { recursive: true });
  const file = join(folder, `config-${++fileNo}.yaml`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** The problems of a load that must fail with ConfigError. */
function problemsOf(file: string | null, env: NodeJS.ProcessEnv = {}): { problems: ConfigProblem[]; message: string } {
  try {
    loadConfig(file, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    return { problems: err.problems, message: err.message };
  }
  assert.fail('loadConfig succeeded but should have failed');
}

describe('loadConfig', () => {
  it('gives the defaults, with an absolute dataDir, when there is no file', () => {
    const loaded = loadConfig(null, {});
    const expected = defaultConfig();
    expected.dataDir = resolve(process.cwd(), 'data');
    assert.deepEqual(loaded.config, expected);
    assert.equal(loaded.file, null);
    assert.deepEqual(loaded.fromEnv, []);
    assert.equal(loaded.config.smtp.port, 2525);
    assert.equal(loaded.config.admin.port, 9025);
    assert.equal(loaded.where(['smtp', 'port']), 'defaults');
  });

  it('loads a valid YAML file over the defaults', () => {
    const file = yamlFile([
      '# a comment',
      'dataDir: /srv/postern',
      'log:',
      '  level: debug',
      'smtp:',
      '  port: 2626',
      '  maxRecipients: 50',
      '  bareLineEndings: reject',
      '  auth:',
      '    mode: optional',
      'routing:',
      '  receivedFolder: Received',
      'plugins:',
      '  - name: client-access',
      '    config: { allow: [127.0.0.0/8] }',
    ]);
    const { config, file: loadedFile, fromEnv } = loadConfig(file, {});
    assert.equal(loadedFile, file);
    assert.deepEqual(fromEnv, []);
    const expected = defaultConfig();
    expected.dataDir = '/srv/postern';
    expected.log.level = 'debug';
    expected.smtp.port = 2626;
    expected.smtp.maxRecipients = 50;
    expected.smtp.bareLineEndings = 'reject';
    expected.smtp.auth.mode = 'optional';
    expected.routing.receivedFolder = 'Received';
    expected.plugins = [{ name: 'client-access', config: { allow: ['127.0.0.0/8'] } }];
    assert.deepEqual(config, expected);
  });

  it('treats an empty file or one with only comments as the defaults', () => {
    const expected = defaultConfig();
    for (const lines of [[], ['# nothing here', '']]) {
      const file = yamlFile(lines);
      const { config } = loadConfig(file, {});
      assert.deepEqual({ ...config, dataDir: '' }, { ...expected, dataDir: '' });
      assert.equal(config.dataDir, join(dir, 'data'));
    }
  });

  it('applies environment overrides over the file, and says which', () => {
    const file = yamlFile(['dataDir: /from/file', 'smtp:', '  port: 2626', '  enabled: true', 'admin:', '  port: 9999']);
    const env = {
      POSTERN_DATA_DIR: '/from/env',
      POSTERN_SMTP_PORT: '25',
      POSTERN_ADMIN_PORT: '8080',
      POSTERN_SMTP_EARLY_TALKER_DELAY_MS: '150',
      POSTERN_SMTP_ENABLED: 'false',
      UNRELATED: 'x',
    };
    const loaded = loadConfig(file, env);
    assert.equal(loaded.config.dataDir, '/from/env');
    assert.equal(loaded.config.smtp.port, 25);
    assert.equal(loaded.config.admin.port, 8080);
    assert.equal(loaded.config.smtp.earlyTalkerDelayMs, 150);
    assert.equal(loaded.config.smtp.enabled, false);
    assert.deepEqual([...loaded.fromEnv].sort(), [
      'POSTERN_ADMIN_PORT', 'POSTERN_DATA_DIR', 'POSTERN_SMTP_EARLY_TALKER_DELAY_MS', 'POSTERN_SMTP_ENABLED', 'POSTERN_SMTP_PORT',
    ]);
    assert.equal(loaded.where(['smtp', 'port']), 'environment variable POSTERN_SMTP_PORT');
    assert.equal(loaded.where(['smtp', 'enabled']), 'environment variable POSTERN_SMTP_ENABLED');
  });

  it('reads booleans from the environment in their usual spellings', () => {
    for (const [raw, value] of [['false', false], ['FALSE', false], ['0', false], ['no', false], ['off', false], ['true', true], ['1', true], ['yes', true], ['On', true]] as const) {
      assert.equal(loadConfig(null, { POSTERN_ADMIN_METRICS_REQUIRE_TOKEN: raw }).config.admin.metricsRequireToken, value, raw);
    }
  });

  it('applies environment overrides without a file', () => {
    const { config } = loadConfig(null, { POSTERN_SMTP_PORT: '2527', POSTERN_LOG_FORMAT: 'json' });
    assert.equal(config.smtp.port, 2527);
    assert.equal(config.log.format, 'json');
  });

  it('refuses a text that may nest too deeply before the yaml library reads it, at its line, every time', () => {
    // "? ? ? …" about 900 deep overflowed the yaml composer's stack inside V8's regular-expression
    // compiler, which aborts the process on a later load instead of throwing (fuzz tier, seed 20261207).
    for (const [text, line, what] of [
      ['dataDir: ./data\nx:\n' + '? '.repeat(1421) + '\n', 3, /more than 200 levels/],
      ['- '.repeat(30000) + 'x\n', 1, /more than 200 levels/],
      ['a:\n' + ' '.repeat(300) + 'b: 1\n', 2, /more than 200 levels/],
      ['a: ' + '['.repeat(5000) + ']'.repeat(5000) + '\n', 1, /more than 2000 "\[" and "\{"/],
      // Closing brackets in a quoted string close nothing: they cannot hide the openers.
      ['a: [' + '[[[[ "]]]]", '.repeat(600) + ']\n', 1, /more than 2000/],
    ] as const) {
      const file = yamlFile([text]);
      for (let i = 0; i < 3; i++) {
        const { problems } = problemsOf(file);
        assert.equal(problems.length, 1);
        assert.equal(problems[0]?.where, `${file}:${line}:1`);
        assert.match(problems[0]?.message ?? '', what);
      }
    }
    // The shipped configuration and ordinary nesting pass the check (the schema decides the rest).
    const { problems } = problemsOf(yamlFile(['x: ' + '['.repeat(150) + ']'.repeat(150), '- - - a: b']));
    assert.ok(problems.every((p) => !/nests too deeply/.test(p.message)), JSON.stringify(problems));
  });

  it('reports a value of the wrong type at its file:line:col with its path', () => {
    const file = yamlFile(['# comment', 'dataDir: ./data', 'smtp:', '  host: 127.0.0.1', '  port: "abc"', 'admin:', '  port: 9025']);
    const { problems, message } = problemsOf(file);
    assert.deepEqual(problems.map((p) => [p.where, p.path]), [[`${file}:5:3`, 'smtp.port']]);
    assert.match(problems[0]?.message ?? '', /number/);
    assert.ok(message.startsWith(`${file}:5:3: "smtp.port" `), message);
  });

  it('reports an out-of-range value deeper in the file at its line', () => {
    const file = yamlFile(['smtp:', '  port: 25', 'intake:', '  activeWindow: 32', '  maxAttempts: 0']);
    const { problems } = problemsOf(file);
    assert.deepEqual(problems.map((p) => [p.where, p.path]), [[`${file}:5:3`, 'intake.maxAttempts']]);
  });

  it('names each setting storage.backend postgres-s3 still needs, and a malformed URL at its line', () => {
    const file = yamlFile(['storage:', '  backend: postgres-s3', '  postgres:', '    url: mysql://db/archive', '  s3:', '    bucket: archive']);
    const { problems } = problemsOf(file);
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p]));
    assert.deepEqual(Object.keys(byPath).sort(), ['storage.postgres.url', 'storage.s3.accessKeyId', 'storage.s3.endpoint', 'storage.s3.secretAccessKeyFile']);
    assert.equal(byPath['storage.postgres.url']?.where, `${file}:4:5`);
    assert.match(byPath['storage.postgres.url']?.message ?? '', /postgres:\/\//);
    assert.match(byPath['storage.s3.endpoint']?.message ?? '', /S3 endpoint/);
    // The embedded default needs none of them.
    assert.equal(loadConfig(yamlFile(['storage:', '  backend: rocksdb']), {}).config.storage.backend, 'rocksdb');
  });

  it('reports an invalid enum value in a flow mapping at its line', () => {
    const file = yamlFile(['smtp:', '  port: 25', 'log: { level: verbose }']);
    const { problems } = problemsOf(file);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, 'log.level');
    assert.match(problems[0]?.where ?? '', new RegExp(`^${escape(file)}:3:\\d+$`));
  });

  it('reports unknown keys (typos) at their own line', () => {
    const file = yamlFile(['log:', '  level: info', 'smpt:', '  port: 25', 'smtp:', '  host: 127.0.0.1', '  prot: 2525']);
    const { problems, message } = problemsOf(file);
    const sorted = [...problems].sort((a, b) => a.path.localeCompare(b.path));
    assert.deepEqual(sorted, [
      { where: `${file}:3:1`, path: 'smpt', message: 'unknown key "smpt"' },
      { where: `${file}:7:3`, path: 'smtp.prot', message: 'unknown key "prot"' },
    ]);
    assert.ok(message.includes(`${file}:7:3: "smtp.prot" unknown key "prot"`), message);
  });

  it('reports every problem of a file at once', () => {
    const file = yamlFile(['smtp:', '  port: -1', 'admin:', '  port: 70000', 'hooks:', '  timeoutMs: 1']);
    const { problems } = problemsOf(file);
    assert.deepEqual(problems.map((p) => [p.where, p.path]).sort(), [
      [`${file}:2:3`, 'smtp.port'], [`${file}:4:3`, 'admin.port'], [`${file}:6:3`, 'hooks.timeoutMs'],
    ].sort());
  });

  it('reports a YAML syntax error with its line', () => {
    const tab = yamlFile(['log:', '  level: info', 'smtp:', '\tport: 25']);
    const a = problemsOf(tab).problems;
    assert.equal(a.length, 1);
    assert.match(a[0]?.where ?? '', new RegExp(`^${escape(tab)}:4:\\d+$`));
    assert.match(a[0]?.message ?? '', /tab/i);

    const nested = yamlFile(['log:', '  level: info', 'smtp:', '  host: a: b', '  port: 25']);
    const b = problemsOf(nested).problems;
    assert.ok(b.length >= 1);
    assert.match(b[0]?.where ?? '', new RegExp(`^${escape(nested)}:4:\\d+$`));

    const dedent = yamlFile(['smtp:', '    port: 25', '  host: x']);
    const c = problemsOf(dedent).problems;
    assert.ok(c.length >= 1);
    assert.match(c[0]?.where ?? '', new RegExp(`^${escape(dedent)}:3:\\d+$`));
  });

  it('reports a duplicate key at the line of the repeat', () => {
    const file = yamlFile(['smtp:', '  port: 25', '  host: 127.0.0.1', '  port: 26']);
    const { problems } = problemsOf(file);
    assert.equal(problems.length, 1);
    assert.match(problems[0]?.where ?? '', new RegExp(`^${escape(file)}:4:\\d+$`));
    assert.match(problems[0]?.message ?? '', /unique|duplicate/i);
  });

  it('reports a file whose top level is not a mapping', () => {
    const file = yamlFile(['- a', '- b']);
    assert.deepEqual(problemsOf(file).problems, [{ where: `${file}:1:1`, path: '', message: 'must be a mapping of keys to values' }]);
  });

  it('reports a file that cannot be read', () => {
    const file = join(dir, 'does-not-exist.yaml');
    assert.deepEqual(problemsOf(file).problems, [{ where: file, path: '', message: 'cannot be read (ENOENT)' }]);
  });

  it('reports a bad environment value as coming from that variable', () => {
    const file = yamlFile(['smtp:', '  port: 2525']);
    const { problems, message } = problemsOf(file, { POSTERN_SMTP_PORT: 'twenty-five' });
    assert.deepEqual(problems.map((p) => [p.where, p.path]), [['environment variable POSTERN_SMTP_PORT', 'smtp.port']]);
    assert.ok(message.startsWith('environment variable POSTERN_SMTP_PORT: "smtp.port" '), message);
    for (const bad of ['', '70000', '25.5']) {
      assert.deepEqual(problemsOf(null, { POSTERN_SMTP_PORT: bad }).problems.map((p) => p.where), ['environment variable POSTERN_SMTP_PORT'], JSON.stringify(bad));
    }
    assert.deepEqual(problemsOf(null, { POSTERN_SMTP_ENABLED: 'maybe' }).problems.map((p) => [p.where, p.path]), [['environment variable POSTERN_SMTP_ENABLED', 'smtp.enabled']]);
  });

  it('resolves a relative dataDir against the checkout when the file is in a config/ folder', () => {
    const inConfig = yamlFile(['dataDir: ./var/archive', 'smtp:', '  tls:', '    cert: tls/cert.pem', '    key: /etc/key.pem'], 'checkout/config');
    const a = loadConfig(inConfig, {}).config;
    assert.equal(a.dataDir, join(dir, 'checkout', 'var', 'archive'));
    assert.equal(a.smtp.tls.cert, join(dir, 'checkout', 'tls', 'cert.pem'));
    assert.equal(a.smtp.tls.key, '/etc/key.pem');
    assert.equal(a.admin.tls.cert, '');

    const elsewhere = yamlFile(['dataDir: ./var/archive'], 'etc');
    assert.equal(loadConfig(elsewhere, {}).config.dataDir, join(dir, 'etc', 'var', 'archive'));

    const lookalike = yamlFile(['dataDir: data'], 'myconfig');
    assert.equal(loadConfig(lookalike, {}).config.dataDir, join(dir, 'myconfig', 'data'));

    const fromEnv = loadConfig(inConfig, { POSTERN_DATA_DIR: 'state' }).config;
    assert.equal(fromEnv.dataDir, join(dir, 'checkout', 'state'));
  });

  it('locates plugin settings for errors found after loading', () => {
    const file = yamlFile(['plugins:', '  - name: one', '  - name: two', '    config:', '      limit: 5']);
    const loaded = loadConfig(file, {});
    assert.equal(loaded.where(['plugins', 1, 'config', 'limit']), `${file}:5:7`);
    assert.equal(loaded.where(['plugins', 0, 'name']), `${file}:2:5`);
  });

  it('names environment variables after the key path in upper snake case', () => {
    assert.equal(envName(['smtp', 'maxMessageSize']), 'POSTERN_SMTP_MAX_MESSAGE_SIZE');
    assert.equal(envName(['dataDir']), 'POSTERN_DATA_DIR');
    assert.equal(envName(['smtp', 'earlyTalkerDelayMs']), 'POSTERN_SMTP_EARLY_TALKER_DELAY_MS');
    assert.equal(envName(['admin', 'tls', 'cert']), 'POSTERN_ADMIN_TLS_CERT');
    const names = envVariables().map((v) => v.name);
    for (const n of ['POSTERN_DATA_DIR', 'POSTERN_SMTP_PORT', 'POSTERN_ADMIN_PORT', 'POSTERN_SMTP_MAX_MESSAGE_SIZE', 'POSTERN_SMTP_AUTH_MODE']) assert.ok(names.includes(n), n);
    // Lists and maps are file-only.
    assert.ok(!names.includes('POSTERN_PLUGINS'));
    assert.ok(!names.includes('POSTERN_SMTP_AUTH_USERS'));
    assert.equal(new Set(names).size, names.length);
  });

  it('loads the shipped config/postern.yaml as exactly the defaults plus the dedup, imap, search and web plugins, with dataDir absolute', () => {
    const shipped = join(CHECKOUT, 'config', 'postern.yaml');
    const { config, fromEnv } = loadConfig(shipped, {});
    assert.deepEqual(fromEnv, []);
    assert.equal(config.dataDir, join(CHECKOUT, 'data'));
    assert.deepEqual(config.plugins.map((p) => p.name), ['dedup', 'imap', 'search', 'web']);
    assert.deepEqual({ ...config, dataDir: './data', plugins: [] }, defaultConfig());
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
