// Plugin environment variables (definePlugin({ env })): POSTERN_IMAP_PORT / POSTERN_IMAPS_PORT set the
// imap plugin's ports before its schema parses, errors name the variable, and `config env` lists them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pluginEnvVariables, resolvePlugins } from '../../../../core/app/app.ts';
import { ConfigError } from '../../../../core/config/load.ts';

const where = (p: ReadonlyArray<PropertyKey>): string => `file:${p.join('.')}`;

describe('plugin environment variables', () => {
  it('override the imap plugin ports and settings', async () => {
    const [r] = await resolvePlugins([{ name: 'imap', config: { port: 1143 } }], where, undefined, { POSTERN_IMAP_PORT: '2143', POSTERN_IMAPS_PORT: '2993', POSTERN_IMAP_ALLOW_PLAINTEXT: 'yes' });
    const config = r?.config as { port: number; tlsPort: number; allowPlaintext: boolean; host: string };
    assert.equal(config.port, 2143);
    assert.equal(config.tlsPort, 2993);
    assert.equal(config.allowPlaintext, true);
    assert.equal(config.host, '127.0.0.1');
  });

  it('report a bad value with the variable name', async () => {
    await assert.rejects(resolvePlugins([{ name: 'imap', config: {} }], where, undefined, { POSTERN_IMAPS_PORT: 'seventy' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems[0]?.where, 'environment variable POSTERN_IMAPS_PORT');
      assert.equal(err.problems[0]?.path, 'plugins.0.config.tlsPort');
      return true;
    });
    await assert.rejects(resolvePlugins([{ name: 'imap', config: {} }], where, undefined, { POSTERN_IMAP_PORT: '70000' }), /POSTERN_IMAP_PORT/);
  });

  it('are listed for every plugin and by `postern config env`', async () => {
    const vars = await pluginEnvVariables();
    assert.ok(vars.some((v) => v.name === 'POSTERN_IMAP_PORT' && v.plugin === 'imap' && v.path === 'port'));
    assert.ok(vars.some((v) => v.name === 'POSTERN_IMAPS_PORT' && v.path === 'tlsPort'));
    const cli = fileURLToPath(new URL('../../../../core/cli/postern.js', import.meta.url));
    const out = execFileSync(process.execPath, [cli, 'config', 'env'], { encoding: 'utf8' });
    assert.match(out, /^POSTERN_IMAPS_PORT\tplugins\[imap\]\.config\.tlsPort\t\(plugin imap\)$/m);
    assert.match(out, /^POSTERN_SMTP_PORT\t/m);
  });
});
