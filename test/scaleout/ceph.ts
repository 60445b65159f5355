// A private single-node Ceph with an S3 gateway for the scale-out tier and bench: one monitor, one memstore
// OSD (1 GiB device), one RADOS Gateway (beast), cephx auth, no manager, everything bound to 127.0.0.1 on
// free ports, all state in one temp dir (config, keyring, pid files, logs). An S3 user with random keys is
// made with radosgw-admin. stopRgw()/startRgw() take the gateway away and bring it back over the same
// RADOS data; stop() ends every daemon (by its pid file) and waits until none is left. The coordinates
// are kept in <dir>/state.json beside <dir>/ceph.conf so another process can reopen it with openCeph().
// Debian 12's Ceph 16.2 (Pacific): `ceph-mon ceph-osd radosgw ceph-common`, see install-deps.sh.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { freePort, run, runOk, sleep } from '../interop/harness.ts';
import { isAlive, readPidFile, tailFile, terminate } from './daemon.ts';

const RGW_NAME = 'client.rgw.postern';
/** RGW's default zonegroup takes SigV4 requests signed for any region; "us-east-1" also means no LocationConstraint on CreateBucket. */
const REGION = 'us-east-1';
const MEMSTORE_BYTES = 1024 ** 3;

export interface CephOptions {
  /** Directory for all state (created). Default: a new temp dir. */
  dir?: string;
}

export interface Ceph {
  /** http://127.0.0.1:<port> of the RADOS Gateway (path-style S3). */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** ceph.conf of this cluster (for the ceph / radosgw-admin tools). */
  conf: string;
  dir: string;
  logDir: string;
  rgwRunning(): boolean;
  /** Stops the gateway only (monitor and OSD stay up, so the objects stay). */
  stopRgw(): Promise<void>;
  /** Starts the gateway again; resolves when it answers HTTP. */
  startRgw(): Promise<void>;
  /** Stops every daemon (gateway, OSD, monitor) and waits until none is left; the directory stays. */
  stop(): Promise<void>;
  /** stop(), then removes the directory (kept when POSTERN_KEEP_TMP=1). */
  destroy(): Promise<void>;
  /** The last lines of each daemon's log, for failure reports. */
  logTails(lines?: number): string;
}

const State = z.object({
  rgwPort: z.number().int().min(1).max(65535),
  accessKeyId: z.string().regex(/^[A-Z0-9]{20}$/),
  secretAccessKey: z.string().min(32),
});
type State = z.infer<typeof State>;

function cephConf(dir: string, fsid: string, monV2: number, monV1: number, bindMin: number, rgwPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = [v2:127.0.0.1:${monV2},v1:127.0.0.1:${monV1}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind port min = ${bindMin}
ms bind port max = ${bindMin + 99}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
# One monitor: commit map changes at once instead of batching them for 1 s (RGW's first start makes ~15).
paxos propose interval = 0.05
osd crush chooseleaf type = 0
mon osd full ratio = .99
mon osd nearfull ratio = .98
osd failsafe full ratio = .995
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
mon data = ${dir}/mon/$cluster-$id
osd data = ${dir}/osd/$cluster-$id
keyring = ${dir}/keyring
[osd]
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES}
[${RGW_NAME}]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
rgw enable usage log = false
`;
}

export async function startCeph(opts: CephOptions = {}): Promise<Ceph> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'postern-ceph-'));
  if (existsSync(join(dir, 'ceph.conf'))) throw new Error(`"${dir}" already holds a cluster: use openCeph()`);
  for (const sub of ['mon', 'run', 'log', 'rgw', 'osd/ceph-0']) mkdirSync(join(dir, sub), { recursive: true });
  const conf = join(dir, 'ceph.conf');
  const keyring = join(dir, 'keyring');
  const fsid = randomUUID();
  const [monV2, monV1, rgwPort] = [await freePort(), await freePort(), await freePort()];
  // The OSD binds its messengers to free ports within this window (it skips ports in use); kept below
  // the kernel's ephemeral range so outgoing connections rarely sit there.
  const bindMin = 20_000 + Math.floor(Math.random() * 100) * 100;
  writeFileSync(conf, cephConf(dir, fsid, monV2, monV1, bindMin, rgwPort));
  const state: State = {
    rgwPort,
    accessKeyId: randomBytes(15).toString('base64').replace(/[^A-Za-z0-9]/g, '0').toUpperCase().slice(0, 20),
    secretAccessKey: randomBytes(30).toString('base64url'),
  };
  writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
  const ceph = openCeph(dir);
  const C = ['-c', conf, '--connect-timeout', '30'];
  try {
    await runOk('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    await runOk('ceph-authtool', [keyring, '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *']);
    await runOk('ceph-authtool', [keyring, '--gen-key', '-n', 'osd.0', '--cap', 'mon', 'allow profile osd', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow profile osd']);
    await runOk('ceph-authtool', [keyring, '--gen-key', '-n', RGW_NAME, '--cap', 'mon', 'allow rw', '--cap', 'osd', 'allow rwx', '--cap', 'mgr', 'allow rw']);
    await runOk('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monV2},v1:127.0.0.1:${monV1}]`, join(dir, 'monmap')]);
    await runOk('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', keyring]);
    await runOk('ceph-mon', ['-c', conf, '-i', 'a']);
    const osdUuid = randomUUID();
    const id = (await runOk('ceph', [...C, 'osd', 'new', osdUuid], { timeoutMs: 60_000 })).stdout.toString().trim();
    if (id !== '0') throw new Error(`ceph osd new gave id "${id}", expected "0"`);
    await runOk('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid], { timeoutMs: 60_000 });
    await runOk('ceph-osd', ['-c', conf, '-i', '0']);
    await waitOsdUp(C);
    await ceph.startRgw();
    await runOk('radosgw-admin', ['-c', conf, '-n', 'client.admin', 'user', 'create', '--uid=postern', '--display-name=postern',
      `--access-key=${state.accessKeyId}`, `--secret-key=${state.secretAccessKey}`], { timeoutMs: 60_000 });
  } catch (err) {
    const tails = ceph.logTails(20);
    await ceph.destroy();
    throw new Error(`Ceph did not start: ${(err as Error).message}\n${tails}`);
  }
  return ceph;
}

async function waitOsdUp(C: string[]): Promise<void> {
  const Dump = z.object({ osds: z.array(z.object({ osd: z.number(), up: z.number() })) });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = await run('ceph', [...C, 'osd', 'dump', '-f', 'json'], { timeoutMs: 40_000 });
    if (r.code === 0 && Dump.parse(JSON.parse(r.stdout.toString())).osds.some((o) => o.osd === 0 && o.up === 1)) return;
    if (Date.now() > deadline) throw new Error('OSD 0 not up after 120 s');
    await sleep(250);
  }
}

/** Reopens a cluster made by startCeph() (possibly in another process) from its directory. */
export function openCeph(dir: string): Ceph {
  const state = State.parse(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')));
  const conf = join(dir, 'ceph.conf');
  const logDir = join(dir, 'log');
  const pidOf = (name: string): number | undefined => readPidFile(join(dir, 'run', `${name}.pid`));
  const endpoint = `http://127.0.0.1:${state.rgwPort}`;
  const rgwRunning = (): boolean => {
    const pid = pidOf(RGW_NAME);
    return pid !== undefined && isAlive(pid);
  };
  const stopDaemon = async (name: string): Promise<void> => {
    const pid = pidOf(name);
    if (pid !== undefined) await terminate(pid, 15_000);
  };
  const stop = async (): Promise<void> => {
    await stopDaemon(RGW_NAME);
    await stopDaemon('osd.0');
    await stopDaemon('mon.a');
  };
  return {
    endpoint,
    accessKeyId: state.accessKeyId,
    secretAccessKey: state.secretAccessKey,
    region: REGION,
    conf,
    dir,
    logDir,
    rgwRunning,
    stopRgw: () => stopDaemon(RGW_NAME),
    async startRgw() {
      if (rgwRunning()) return;
      await runOk('radosgw', ['-c', conf, '-n', RGW_NAME], { timeoutMs: 60_000 });
      const deadline = Date.now() + 120_000;
      for (;;) {
        const answered = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(5_000) }).then((res) => res.status > 0, () => false);
        if (answered) return;
        const pid = pidOf(RGW_NAME);
        if (Date.now() > deadline || (pid !== undefined && !isAlive(pid))) throw new Error(`RADOS Gateway not answering on ${endpoint}`);
        await sleep(200);
      }
    },
    stop,
    async destroy() {
      await stop();
      if (process.env.POSTERN_KEEP_TMP !== '1') rmSync(dir, { recursive: true, force: true });
    },
    logTails(lines = 30) {
      if (!existsSync(logDir)) return `(no ${logDir})`;
      return readdirSync(logDir).sort().map((f) => `--- ${f}\n${tailFile(join(logDir, f), lines)}`).join('\n');
    },
  };
}
