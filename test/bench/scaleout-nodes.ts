// The nodes and passes of bench:scaleout (scaleout.ts): starts `postern serve` nodes with the imap
// plugin on free ports, journals the corpus over SMTP sessions split across nodes and waits until every
// node's intake is empty (an entry leaves only once the archive committed it), reading each node's
// /metrics and the CPU time of every process around a pass. Trusts its own servers and engines.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCorpus } from '../helpers/corpus.ts';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.ts';
import { freePort } from '../interop/harness.ts';
import { ADDRESS, asSmtpMessage, posternConfig, sha, smtpSend } from '../interop/imap-targets.ts';
import { treeCpu } from './scaleout-probes.ts';
import { dirBytes } from '../helpers/dir-bytes.ts';

const DRAIN_TIMEOUT_MS = 30 * 60_000;

export interface Node {
  name: string;
  server: SpawnedServer;
  imapPort: number;
  dataDir: string;
  token: string;
}

export interface PassResult {
  seconds: number;
  /** Until the last SMTP 250 (every message durable in an intake). */
  ingestSeconds: number;
  cpu: Map<string, number>;
  metrics: Map<string, number>;
}

/** A postern serve node with the imap plugin; `env` adds the storage settings. */
export async function startNode(dir: string, name: string, cert: { certFile: string; keyFile: string }, env: Record<string, string>): Promise<Node> {
  const nodeDir = join(dir, name);
  mkdirSync(nodeDir, { recursive: true });
  const imapPort = await freePort();
  const tlsPort = await freePort();
  const config = posternConfig(nodeDir, { port: imapPort, tlsPort, ...cert, imap: { allowPlaintext: true } });
  // Every bench client signs in as the same user at once (as bench:imap): lift the per-account burst.
  writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), signIn: { burst: 1000, addressBurst: 100000 } }, null, 2) + '\n');
  const dataDir = join(nodeDir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const server = await spawnServer(dataDir, { POSTERN_CONFIG: config, POSTERN_IMAP_PORT: String(imapPort), POSTERN_IMAPS_PORT: String(tlsPort), ...env });
  return { name, server, imapPort, dataDir, token: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim() };
}

/** The postern_* samples of a node's /metrics (label sets summed per name, histograms as _sum/_count). */
export async function scrape(n: Node): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${n.server.adminPort}/metrics`, { headers: { authorization: `Bearer ${n.token}` } });
  if (!res.ok) throw new Error(`${n.name} /metrics: ${res.status}`);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^(postern_[a-z_]+)(\{[^}]*\})? ([-+\d.eE]+|NaN)$/.exec(line);
    if (!m || m[3] === 'NaN') continue;
    const key = m[2]?.includes('store="archive"') ? `${m[1]}{archive}` : m[1]!;
    out.set(key, (out.get(key) ?? 0) + Number(m[3]));
  }
  return out;
}

const sumMaps = (maps: Array<Map<string, number>>): Map<string, number> => {
  const out = new Map<string, number>();
  for (const m of maps) for (const [k, v] of m) out.set(k, (out.get(k) ?? 0) + v);
  return out;
};

export function cpuSnapshot(nodes: Node[], engines: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  out.set('postern', nodes.reduce((s, n) => s + (n.server.child.pid ? treeCpu(n.server.child.pid) : 0), 0));
  for (const [role, pid] of engines) out.set(role, treeCpu(pid));
  const me = process.cpuUsage();
  out.set('smtp clients (bench)', (me.user + me.system) / 1e6);
  return out;
}

/** One pass: the messages over `sessions` SMTP sessions split across the nodes; resolves when every intake is empty. */
export async function journal(nodes: Node[], messages: Buffer[], engines: Map<string, number>, sessions: number): Promise<PassResult> {
  const cpu0 = cpuSnapshot(nodes, engines);
  const m0 = sumMaps(await Promise.all(nodes.map(scrape)));
  const t0 = performance.now();
  await Promise.all(nodes.map((n, i) => smtpSend(
    n.server.smtpPort,
    messages.filter((_, j) => j % nodes.length === i).map((bytes) => ({ from: 'journal@mta.example', to: [ADDRESS], bytes })),
    Math.max(1, Math.round(sessions / nodes.length)),
  )));
  const ingestSeconds = (performance.now() - t0) / 1000;
  let after: Map<string, number>;
  for (;;) {
    const each = await Promise.all(nodes.map(scrape));
    if (each.every((m) => (m.get('postern_intake_depth_messages') ?? 1) === 0)) {
      after = sumMaps(each);
      break;
    }
    if (performance.now() - t0 > DRAIN_TIMEOUT_MS) throw new Error(`intake not drained after ${DRAIN_TIMEOUT_MS / 60_000} minutes`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuSnapshot(nodes, engines);
  const cpu = new Map([...cpu1].map(([k, v]) => [k, v - (cpu0.get(k) ?? 0)]));
  const metrics = new Map([...after].map(([k, v]) => [k, v - (m0.get(k) ?? 0)]));
  return { seconds, ingestSeconds, cpu, metrics };
}


/** The corpus as an MTA hands it on (CRLF, no mbox line), byte-identical copies dropped. */
export function corpus(limit: number): Buffer[] {
  const seen = new Set<string>();
  const out: Buffer[] = [];
  for (const raw of loadCorpus()) {
    const m = asSmtpMessage(raw);
    const h = sha(m);
    if (seen.has(h)) continue;
    seen.add(h);
    out.push(m);
    if (limit > 0 && out.length >= limit) break;
  }
  return out;
}
