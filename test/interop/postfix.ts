// A private, real Postfix instance for the interop tier: its own config directory, queue and data
// directories under a temp dir, smtpd on a free loopback port, logging to a file (no syslog), and
// the relay settings taken from deploy/postfix/main.cf.snippet (and Postern's setting from the recipe,
// deploy/postfix/README.md) so the tests check what we ship.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { REPO, freePort, makeTempDir, run, runOk, sleep, waitFor } from './harness.ts';

export const SNIPPET = join(REPO, 'deploy', 'postfix', 'main.cf.snippet');
export const RECIPE = join(REPO, 'deploy', 'postfix', 'README.md');
/** The address in the snippet's Postern examples; the test swaps in the real port. */
const SNIPPET_POSTERN = '[127.0.0.1]:2525';

/** The active `name = value` lines of the named variant blocks of the snippet, in order. */
export function snippetSettings(variants: readonly string[]): Array<[string, string]> {
  const text = readFileSync(SNIPPET, 'utf8');
  const blocks = new Map<string, Array<[string, string]>>();
  let current: Array<[string, string]> | undefined;
  for (const raw of text.split('\n')) {
    const marker = /^#\s*\[variant:\s*([\w-]+)\s*\]\s*$/.exec(raw) ?? /^#\s*\[(end)\]\s*$/.exec(raw);
    if (marker) {
      current = marker[1] === 'end' ? undefined : [];
      if (current) blocks.set(marker[1]!, current);
      continue;
    }
    const line = raw.trim();
    if (!current || line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new Error(`${SNIPPET}: not a "name = value" line: ${JSON.stringify(raw)}`);
    current.push([m[1]!, m[2]!]);
  }
  const out: Array<[string, string]> = [];
  for (const v of variants) {
    const block = blocks.get(v);
    if (!block || block.length === 0) throw new Error(`${SNIPPET}: no settings in variant "${v}" (have: ${[...blocks.keys()].join(', ')})`);
    out.push(...block);
  }
  return out;
}

/**
 * The Postern settings the recipe gives: with no tag, for the always_bcc and recipient_bcc_maps
 * blocks (the README's only plain ```yaml block); with a tag, its one ```yaml TAG block.
 */
export function recipePosternSettings(tag?: string): Record<string, unknown> {
  const re = tag === undefined ? /^```yaml\n([\s\S]*?)^```$/gm : new RegExp('^```yaml ' + tag + '\\n([\\s\\S]*?)^```$', 'gm');
  const blocks = [...readFileSync(RECIPE, 'utf8').matchAll(re)].map((m) => m[1]!);
  const name = tag === undefined ? '```yaml' : `\`\`\`yaml ${tag}`;
  if (blocks.length !== 1) throw new Error(`${RECIPE}: expected one ${name} block (the Postern settings), found ${blocks.length}`);
  return parse(blocks[0]!) as Record<string, unknown>;
}

const isMap = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** `add` merged into `base` key by key, as "merge into its routing: section" means. */
function merge(base: Record<string, unknown>, add: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(add)) {
    const b = out[k];
    out[k] = isMap(b) && isMap(v) ? merge(b, v) : v;
  }
  return out;
}

/**
 * Writes the shipped config/postern.yaml with the recipe's settings merged in, as the recipe tells an
 * operator to do, to `dir`/postern.yaml; returns its path (for POSTERN_CONFIG).
 */
export function writeRecipeConfig(dir: string, settings: Record<string, unknown> = recipePosternSettings()): string {
  const shipped = parse(readFileSync(join(REPO, 'config', 'postern.yaml'), 'utf8')) as Record<string, unknown>;
  const file = join(dir, 'postern.yaml');
  writeFileSync(file, stringify(merge(shipped, settings)));
  return file;
}

export interface Delivery {
  queueId: string;
  relay: string;
  reply: string;
}

export interface PostfixInstance {
  port: number;
  configDir: string;
  maillog(): string;
  /** Queue ids Postfix reports in its log as delivered (status=sent) to `rcpt`, with the relay. */
  deliveries(rcpt: string): Delivery[];
  stop(): Promise<void>;
}

const MASTER_SERVICES = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

/**
 * Starts Postfix with the snippet's `variants` (e.g. common, relayhost, always_bcc), every
 * "[127.0.0.1]:2525" in them pointing at `posternPort`. `site` settings stand in for the rest of a
 * real installation (e.g. its normal delivery) and come before the snippet's; `options.master` is
 * appended to master.cf.
 */
export async function startPostfix(
  posternPort: number, variants: readonly string[], site: ReadonlyArray<[string, string]> = [], options: { master?: string } = {},
): Promise<PostfixInstance> {
  if (!existsSync('/usr/sbin/postfix')) throw new Error('Postfix is not installed (/usr/sbin/postfix missing); run test/interop/install-deps.sh');
  if (process.getuid?.() !== 0) throw new Error('Postfix must be started as root (its master drops privileges to mail_owner)');
  const ids = await run('id', ['-u', 'postfix']);
  if (ids.code !== 0) throw new Error('the "postfix" system user does not exist; reinstall the postfix package');

  const tmp = makeTempDir('postern-postfix-');
  chmodSync(tmp.path, 0o755); // the queue must be reachable once master drops to the postfix user
  const configDir = join(tmp.path, 'conf');
  const queueDir = join(tmp.path, 'queue');
  const dataDir = join(tmp.path, 'data');
  const logFile = join(tmp.path, 'maillog');
  for (const d of [configDir, queueDir, dataDir]) mkdirSync(d);
  await runOk('chown', ['postfix:postfix', dataDir]);
  const port = await freePort();

  const relaySettings = snippetSettings(variants).map(([k, v]) => `${k} = ${v.split(SNIPPET_POSTERN).join(`[127.0.0.1]:${posternPort}`)}`);
  const mainCf = [
    '# Private interop instance (generated by test/interop/postfix.ts)',
    'compatibility_level = 3.6',
    `queue_directory = ${queueDir}`,
    `data_directory = ${dataDir}`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    'myhostname = postfix-interop.test',
    'mydomain = postfix-interop.test',
    'myorigin = $myhostname',
    'mydestination =',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'smtpd_relay_restrictions = permit_mynetworks, reject',
    'alias_maps =',
    'alias_database =',
    'local_transport = error:local delivery is disabled in the interop instance',
    `maillog_file = ${logFile}`,
    `maillog_file_prefixes = ${tmp.path}`,
    'syslog_name = postfix-interop',
    // Retry quickly if Postern answers 4xx, so a failure shows up within the test's timeout.
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
    // A delivery agent that fails (as opposed to a destination that refuses) suspends its whole
    // transport for transport_retry_time, 60 s by default: longer than a test waits.
    'transport_retry_time = 1s',
    ...site.map(([k, v]) => `${k} = ${v}`),
    '# --- from deploy/postfix/main.cf.snippet ---',
    ...relaySettings,
    '',
  ].join('\n');
  writeFileSync(join(configDir, 'main.cf'), mainCf);
  writeFileSync(join(configDir, 'master.cf'), `127.0.0.1:${port} inet n - n - - smtpd\n${MASTER_SERVICES}${options.master ?? ''}`);

  const maillog = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const check = await run('/usr/sbin/postfix', ['-c', configDir, 'check']);
  if (check.code !== 0) {
    tmp.cleanup();
    throw new Error(`postfix check failed (${check.code}):\n${check.stderr}\n${maillog()}\nmain.cf:\n${mainCf}`);
  }
  const start = await run('/usr/sbin/postfix', ['-c', configDir, 'start'], { timeoutMs: 30_000 });
  if (start.code !== 0) {
    tmp.cleanup();
    throw new Error(`postfix start failed (${start.code}):\n${start.stderr}\n${maillog()}`);
  }
  const pidFile = join(queueDir, 'pid', 'master.pid');
  const masterPid = await waitFor('Postfix master pid file', async () => {
    if (!existsSync(pidFile)) return undefined;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return pid > 0 ? pid : undefined;
  }, 10_000, 100);
  await waitFor(`Postfix smtpd on 127.0.0.1:${port}`, async () => {
    const r = await run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]);
    return r.code === 0 ? true : undefined;
  }, 10_000, 100);

  let stopped = false;
  return {
    port,
    configDir,
    maillog,
    deliveries(rcpt) {
      const out: Delivery[] = [];
      const re = /: ([0-9A-F]+): to=<([^>]*)>, relay=([^,]+), .*status=sent \((.*)\)$/;
      for (const line of maillog().split('\n')) {
        const m = re.exec(line);
        if (m && m[2] === rcpt) out.push({ queueId: m[1]!, relay: m[3]!, reply: m[4]! });
      }
      return out;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        const r = await run('/usr/sbin/postfix', ['-c', configDir, 'stop'], { timeoutMs: 30_000 });
        const alive = (): boolean => {
          try {
            const stat = readFileSync(`/proc/${masterPid}/stat`, 'utf8');
            return !/^\d+ \(.*\) Z/.test(stat); // a zombie has exited
          } catch {
            return false;
          }
        };
        const deadline = Date.now() + 10_000;
        while (alive() && Date.now() < deadline) await sleep(100);
        if (alive()) {
          await run('/usr/sbin/postfix', ['-c', configDir, 'abort']);
          throw new Error(`Postfix master ${masterPid} still running 10 s after "postfix stop" (${r.code}: ${r.stderr})`);
        }
      } finally {
        tmp.cleanup();
      }
    },
  };
}
