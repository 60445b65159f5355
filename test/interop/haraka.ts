// A private, real Haraka (the npm devDependency) for the interop tier: `haraka -i` makes a config
// directory in a temp dir, the Postern plugin is installed into it by path exactly as
// plugins/haraka/README.md says (`npm install <postern>/plugins/haraka`), its config/postern.ini is
// the README's ```ini block with Postern's port substituted, and Haraka listens on a free loopback
// port in the foreground (one process, log on stdout into a file).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, freePort, makeTempDir, runOk, stopChild, waitForPort } from './harness.ts';

export const HARAKA_BIN = join(REPO, 'node_modules', 'Haraka', 'bin', 'haraka');
export const PLUGIN_DIR = join(REPO, 'plugins', 'haraka');
export const RECIPE = join(PLUGIN_DIR, 'README.md');
/** The Postern port in the recipe's examples; the test swaps in the real one. */
const RECIPE_PORT = 'port=2525';

/** The fenced blocks of the recipe with the given info string (e.g. "ini", "sh"), in order. */
export function recipeBlocks(lang: string): string[] {
  const re = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm');
  return [...readFileSync(RECIPE, 'utf8').matchAll(re)].map((m) => m[1]!);
}

/** The recipe's config/postern.ini (its only ```ini block) pointing at `posternPort`, with `edits` applied per key. */
export function recipePosternIni(posternPort: number, edits: Record<string, string> = {}): string {
  const blocks = recipeBlocks('ini');
  if (blocks.length !== 1) throw new Error(`${RECIPE}: expected one \`\`\`ini block (config/postern.ini), found ${blocks.length}`);
  let text = blocks[0]!;
  if (!text.includes(RECIPE_PORT)) throw new Error(`${RECIPE}: the ini block has no "${RECIPE_PORT}" line`);
  text = text.split(RECIPE_PORT).join(`port=${posternPort}`);
  for (const [key, value] of Object.entries(edits)) {
    const re = new RegExp(`^${key}=.*$`, 'm');
    if (!re.test(text)) throw new Error(`${RECIPE}: the ini block has no "${key}=" line to change`);
    text = text.replace(re, `${key}=${value}`);
  }
  return text;
}

export interface HarakaOptions {
  /** Lines of config/plugins, in order. */
  plugins: readonly string[];
  /** Extra files under config/ (name -> content), e.g. smtp_forward.ini. */
  files?: Record<string, string>;
}

export interface HarakaInstance {
  port: number;
  dir: string;
  log(): string;
  stop(): Promise<void>;
}

/** Starts Haraka with `postern.ini` (see recipePosternIni) and the given plugins and files. */
export async function startHaraka(posternIni: string, opts: HarakaOptions): Promise<HarakaInstance> {
  if (!existsSync(HARAKA_BIN)) throw new Error(`Haraka is not installed (${HARAKA_BIN} missing); run npm ci`);
  const tmp = makeTempDir('postern-haraka-');
  const dir = join(tmp.path, 'haraka');
  try {
    await runOk(process.execPath, [HARAKA_BIN, '-i', dir]);
    // The recipe's install step, with the checkout's plugin folder as the path. No registry access:
    // the package has no dependencies.
    await runOk('npm', ['install', '--no-audit', '--no-fund', '--offline', PLUGIN_DIR], { cwd: dir, timeoutMs: 60_000 });
  } catch (err) {
    tmp.cleanup();
    throw err;
  }
  const port = await freePort();
  const config = (name: string, text: string): void => writeFileSync(join(dir, 'config', name), text);
  config('smtp.ini', `listen=127.0.0.1:${port}\n`);
  config('me', 'haraka-interop.test\n');
  config('host_list', 'example.test\n');
  config('log.ini', '[main]\nlevel=info\ntimestamps=true\nformat=default\n');
  config('plugins', `${opts.plugins.join('\n')}\n`);
  config('postern.ini', posternIni);
  for (const [name, text] of Object.entries(opts.files ?? {})) config(name, text);

  const logFile = join(tmp.path, 'haraka.log');
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [HARAKA_BIN, '-c', dir], { cwd: dir, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  try {
    await waitForPort(port, { child, timeoutMs: 20_000 });
  } catch (err) {
    child.kill('SIGKILL');
    const text = log();
    tmp.cleanup();
    throw new Error(`Haraka did not start: ${(err as Error).message}\n${text}`);
  }
  let stopped = false;
  return {
    port,
    dir,
    log,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await stopChild(child);
      } finally {
        tmp.cleanup();
      }
    },
  };
}
