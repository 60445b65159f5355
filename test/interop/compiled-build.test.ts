// `npm run build` (deploy/build.mjs) into a temp directory, then `postern serve` from the compiled tree,
// as the systemd unit runs it: the server starts without the TypeScript loader (no .ts file in the
// tree), plugins, analysis workers and the search index threads load their compiled modules, a message
// sent with swaks is archived (its subject read in a compiled analysis worker), listed by the compiled
// CLI and found by a search (compiled index writer and reader threads), the default configuration is the repository's config/ (linked), and SIGTERM exits 0.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeTempDir, REPO, run, waitFor } from './harness.ts';
import { assertDelivered, swaks } from './swaks.ts';

const tmp = makeTempDir('postern-build-');
const OUT = join(tmp.path, 'dist');
let server: ChildProcess | null = null;

after(() => {
  server?.kill('SIGKILL');
  tmp.cleanup();
});

function files(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'config') continue;
    if (e.isDirectory()) files(join(dir, e.name), out);
    else out.push(join(dir, e.name));
  }
  return out;
}

test('npm run build emits a runnable tree without TypeScript', async () => {
  // Types are checked by npm test; emitting alone keeps this test short.
  const r = await run(process.execPath, [join(REPO, 'deploy', 'build.mjs'), '--out', OUT, '--no-check'], { timeoutMs: 110_000 });
  assert.equal(r.code, 0, `build: ${r.stdout.toString()}${r.stderr}`);
  const all = files(OUT);
  assert.deepEqual(all.filter((f) => f.endsWith('.ts')), [], 'no TypeScript left');
  for (const f of ['core/cli/main.js', 'core/cli/postern.js', 'core/pipeline/analysis-worker-main.js', 'plugins/imap/index.js', 'plugins/search/writer-worker-main.js', 'plugins/web/assets/web.css', 'core/systemd/notify-helper.py']) {
    assert.ok(existsSync(join(OUT, f)), `${f} is in the build`);
  }
  assert.equal(realpathSync(join(OUT, 'config')), realpathSync(join(REPO, 'config')), `config links to the repository's (${readlinkSync(join(OUT, 'config'))})`);
  // The emitted modules import .js, never .ts.
  const main = all.filter((f) => f.endsWith('.js') && f.includes('/core/app/'));
  for (const f of main) assert.doesNotMatch(readFileSync(f, 'utf8'), /from '\.[^']*\.ts'/, f);
});

test('postern serve from the compiled tree archives a message, the compiled CLI lists it, SIGTERM exits 0', async () => {
  const cli = join(OUT, 'core', 'cli', 'postern.js');
  const env = {
    ...process.env, POSTERN_DATA_DIR: join(tmp.path, 'data'), POSTERN_SMTP_PORT: '0', POSTERN_ADMIN_PORT: '0', POSTERN_IMAP_PORT: '0',
    POSTERN_IMAPS_PORT: '0', POSTERN_WEB_PORT: '0', POSTERN_LOG_FORMAT: 'json',
  };
  const child = spawn(process.execPath, [cli, 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  server = child;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let log = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => { log += d; });
  const ready = await waitFor('the ready line', async () => log.split('\n').find((l) => l.includes('"Postern is ready"')), 60_000, 50)
    .catch((err: Error) => { throw new Error(`${err.message}\n${log}`); });
  const { smtpPort, adminPort, config } = JSON.parse(ready) as { smtpPort: number; adminPort: number; config: string };
  assert.equal(realpathSync(config), realpathSync(join(REPO, 'config', 'postern.yaml')), 'the default config is the repository\'s, through dist/config');
  const cliEnv = { ...env, POSTERN_ADMIN_PORT: String(adminPort) };
  const cliRun = async (args: string[]): Promise<string> => {
    const r = await run(process.execPath, [cli, ...args], { env: cliEnv, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `postern ${args.join(' ')}: ${r.stdout.toString()}${r.stderr}`);
    return r.stdout.toString('utf8');
  };
  await cliRun(['user', 'add', 'built', '--address', 'built@example.test']);
  const marker = `compiled-${randomUUID()}`;
  const file = join(tmp.path, 'm.eml');
  writeFileSync(file, `From: <sender@example.test>\r\nTo: <built@example.test>\r\nSubject: ${marker}\r\n\r\nbody of ${marker}\r\n`);
  assertDelivered(await swaks(['--server', `127.0.0.1:${smtpPort}`, '--from', 'sender@example.test', '--to', 'built@example.test', '--data', `@${file}`]));
  // The subject is read in an analysis worker: listed means the compiled worker and analyzers ran.
  const listed = await waitFor('the message archived', async () => {
    const out = await cliRun(['archive', 'list', 'built']);
    return out.includes(marker) ? out : undefined;
  }, 60_000, 250);
  assert.match(listed, new RegExp(`^1\t.*\t${marker}$`, 'm'));
  // Indexed by the compiled search writer thread, found through a compiled reader thread.
  const found = await waitFor('the message in the search index', async () => {
    const out = await cliRun(['search', `subject:${marker}`]);
    return out.includes(marker) ? out : undefined;
  }, 60_000, 500);
  assert.match(found, new RegExp(marker));
  assert.doesNotMatch(log, /"level":"error"/, 'no error logged');
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  server = null;
});
