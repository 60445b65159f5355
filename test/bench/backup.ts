// `npm run bench:backup`: backup and restore of the embedded archive with real mail. The SpamAssassin
// corpus (≈6,000 messages nobody here wrote) is journaled COPIES times over SMTP (8 connections, each
// copy with its own envelope, so dedup keeps one blob per distinct message); then
//   full backup (postern backup) while a second SMTP load runs,
//   incremental backup after 500 more (new) messages,
//   backup verify, restore into a new data directory, and the restored server's `postern verify`.
// Prints seconds, messages/s and MiB/s of each step and the bytes each backup wrote. No targets in the
// issue: figures for operators sizing their backup window.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { loadCorpus } from '../helpers/corpus.ts';
import { runCli } from '../helpers/cli.ts';
import { SmtpClient } from '../helpers/smtp-client.ts';
import { spawnServer, stopServer, waitDrained, type SpawnedServer } from '../helpers/spawn-server.ts';
import { dirBytes } from '../helpers/dir-bytes.ts';

const COPIES = Number(process.env.BENCH_COPIES ?? 2);
const CONNECTIONS = 8;
const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');
const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;


/** Each message dot-stuffed once, with CRLF line ends. */
function wire(m: Buffer): Buffer {
  const text = m.toString('latin1').replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  return Buffer.from(text.endsWith('\r\n') ? text : `${text}\r\n`, 'latin1');
}

async function send(port: number, messages: Buffer[], stop?: () => boolean): Promise<number> {
  let next = 0;
  let sent = 0;
  const worker = async (): Promise<void> => {
    const c = await SmtpClient.open(port);
    await c.read();
    await c.cmd('EHLO bench.example');
    while (next < messages.length && !(stop?.() ?? false)) {
      const m = messages[next++] as Buffer;
      await c.cmd('MAIL FROM:<journal@corp.example>');
      await c.cmd(`RCPT TO:<user${next % 20}@example.com>`);
      await c.cmd('DATA');
      c.write(Buffer.concat([m, Buffer.from('.\r\n')]));
      if ((await c.read(60000)).code === 250) sent++;
    }
    c.close();
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, () => worker()));
  return sent;
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, (performance.now() - t0) / 1000];
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'bench-backup-'));
  const corpus = loadCorpus().map(wire);
  let server: SpawnedServer | null = null;
  let restored: SpawnedServer | null = null;
  try {
    server = await spawnServer(join(root, 'data'));
    for (let u = 0; u < 20; u++) await server.api('POST', '/api/v1/users', { name: `user${u}`, addresses: [`user${u}@example.com`] });
    const all = Array.from({ length: COPIES }, () => corpus).flat();
    console.log(`bench:backup: ${corpus.length} SpamAssassin messages × ${COPIES} copies over SMTP (${CONNECTIONS} connections), load ${load()}`);
    const [archivedCount, ingestS] = await timed(() => send(server!.smtpPort, all));
    await waitDrained(server, 600_000);
    const dataBytes = dirBytes(join(root, 'data'));
    console.log(`  ingested ${archivedCount} in ${ingestS.toFixed(1)} s; data directory ${mib(dataBytes)}`);
    const target = { dataDir: join(root, 'data'), adminPort: server.adminPort };
    const repo = join(root, 'backup');

    let stop = false;
    const during = send(server.smtpPort, corpus, () => stop);
    const [full, fullS] = await timed(() => runCli(['backup', '--output', repo, '--json'], target));
    stop = true;
    const duringSent = await during;
    if (full.code !== 0) throw new Error(full.stderr);
    const fm = JSON.parse(full.stdout) as { counts: { messages: number; bytesWritten: number; chunksCopied: number } };
    console.log(`  full backup while SMTP load ran (${duringSent} messages acknowledged meanwhile): ${fullS.toFixed(1)} s for ${fm.counts.messages} messages = ${(fm.counts.messages / fullS).toFixed(0)} msg/s, ${mib(fm.counts.bytesWritten)} written = ${(fm.counts.bytesWritten / 1048576 / fullS).toFixed(1)} MiB/s, load ${load()}`);

    // 500 new messages (a header makes each distinct from what is archived, so each is a new blob).
    await send(server.smtpPort, corpus.slice(0, 500).map((m, i) => Buffer.concat([Buffer.from(`X-Bench-Incremental: ${i}\r\n`), m])));
    await waitDrained(server, 600_000);
    const [inc, incS] = await timed(() => runCli(['backup', '--output', repo, '--json'], target));
    if (inc.code !== 0) throw new Error(inc.stderr);
    const im = JSON.parse(inc.stdout) as { counts: { messages: number; bytesWritten: number; chunksCopied: number; chunksReused: number } };
    console.log(`  incremental backup: ${incS.toFixed(1)} s, ${im.counts.chunksCopied} chunks copied, ${im.counts.chunksReused} reused, ${mib(im.counts.bytesWritten)} written (${(im.counts.bytesWritten / fm.counts.bytesWritten * 100).toFixed(1)} % of the full one)`);

    const [ver, verS] = await timed(() => runCli(['backup', 'verify', repo], target));
    console.log(`  backup verify (2 snapshots): ${verS.toFixed(1)} s, exit ${ver.code}; repository ${mib(dirBytes(repo))}`);
    await stopServer(server);
    server = null;
    const [res, resS] = await timed(() => runCli(['restore', repo, '--data-dir', join(root, 'restored')], target));
    if (res.code !== 0) throw new Error(res.stderr);
    console.log(`  restore (verifies first): ${resS.toFixed(1)} s = ${(im.counts.messages / resS).toFixed(0)} msg/s`);
    restored = await spawnServer(join(root, 'restored'));
    const [v, vS] = await timed(() => runCli(['verify'], { dataDir: join(root, 'restored'), adminPort: restored!.adminPort }));
    console.log(`  postern verify on the restored archive: exit ${v.code} in ${vS.toFixed(1)} s (${v.stdout.split('\n')[0] ?? ''})`);
    console.log(`load at the end ${load()}`);
  } finally {
    if (server) await stopServer(server).catch(() => undefined);
    if (restored) await stopServer(restored).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
