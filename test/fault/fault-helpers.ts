// Shared parts of the whole-server fault tests: tmpfs mounts (root, as CI has), a seeded PRNG, test
// messages with a unique Subject, one SMTP transaction classified by how it ended, and the reconcile
// side (archive listing by Subject, intake listing, a verify run through the admin API).
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SmtpClient } from '../helpers/smtp-client.ts';
import type { SpawnedServer } from '../helpers/spawn-server.ts';
import { prng } from '../helpers/prng.ts';

export { prng };

export function mountTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
}
export function growTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-o', `remount,size=${size}`, dir]);
}
export function umount(dir: string): void {
  try { execFileSync('umount', ['-l', dir]); } catch { /* already gone */ }
}

/**
 * Keep the file system of `file` full: append to it until ENOSPC, now and every 50 ms after (space a
 * database frees, e.g. while reopening, is taken at once). Returns the function that stops it.
 */
export function holdFull(file: string): () => void {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const topUp = (): void => {
    for (;;) {
      try {
        appendFileSync(file, chunk);
      } catch {
        try { appendFileSync(file, chunk.subarray(0, 4096)); } catch { return; }
      }
    }
  };
  topUp();
  const timer = setInterval(topUp, 50);
  return () => clearInterval(timer);
}


const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * A message of about `size` bytes whose Subject is `subject`: headers, then 76-character lines of
 * pseudo-random base64 text seeded by `seed` (barely compressible, so it fills the archive as well as
 * the intake; no line starts with a dot). Ends with CRLF.
 */
export function testMessage(subject: string, id: string, size: number, seed: number): string {
  const rnd = prng(seed);
  const head = `From: load@else.org\r\nTo: journal@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${id}@fault.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n\r\n`;
  const lines: string[] = [];
  let bytes = head.length;
  while (bytes < size) {
    let line = '';
    for (let i = 0; i < 76; i++) line += B64[Math.floor(rnd() * 64)];
    lines.push(line);
    bytes += 78;
  }
  return head + lines.join('\r\n') + '\r\n';
}

export type Outcome =
  /** 250 to the final dot: the message is acknowledged. */
  | { kind: 'ack'; code: number; intakeId: string | null }
  /** A 4xx to any command of the transaction (the client would try again later). */
  | { kind: 'temp'; code: number; phase: string; closing: boolean }
  /** A 5xx to any command. */
  | { kind: 'perm'; code: number; phase: string }
  /** The connection closed or went silent before the final dot was sent: nothing may be archived. */
  | { kind: 'cut'; phase: string; error: string }
  /** The final dot was sent and no reply came: archived at most once. */
  | { kind: 'doubt'; error: string };

/** One SMTP transaction on an open session (after EHLO); the body must end with CRLF. */
export async function transaction(c: SmtpClient, body: string, replyTimeoutMs = 30000): Promise<Outcome> {
  let phase = 'MAIL';
  try {
    for (const [p, line, want] of [['MAIL', 'MAIL FROM:<load@else.org>', 250], ['RCPT', 'RCPT TO:<journal@example.com>', 250], ['DATA', 'DATA', 354]] as const) {
      phase = p;
      const r = await c.cmd(line);
      if (r.code === want) continue;
      if (r.code >= 400 && r.code < 500) return { kind: 'temp', code: r.code, phase, closing: r.code === 421 };
      return { kind: 'perm', code: r.code, phase };
    }
    phase = 'body';
    c.write(body);
    c.write('.\r\n');
  } catch (err) {
    return { kind: 'cut', phase, error: (err as Error).message };
  }
  try {
    const r = await c.read(replyTimeoutMs);
    if (r.code === 250) return { kind: 'ack', code: 250, intakeId: /queued as (\S+)/.exec(r.text)?.[1] ?? null };
    if (r.code >= 400 && r.code < 500) return { kind: 'temp', code: r.code, phase: 'dot', closing: r.code === 421 };
    return { kind: 'perm', code: r.code, phase: 'dot' };
  } catch (err) {
    return { kind: 'doubt', error: (err as Error).message };
  }
}

/** Connect and greet; null when the server is not there (killed) or does not greet with 220/250. */
export async function session(port: number): Promise<SmtpClient | null> {
  let c: SmtpClient | null = null;
  try {
    c = await SmtpClient.open(port);
    if ((await c.read()).code !== 220) throw new Error('no 220 greeting');
    if ((await c.cmd('EHLO load.example')).code !== 250) throw new Error('EHLO refused');
    return c;
  } catch {
    c?.close();
    return null;
  }
}

/**
 * How many times each Subject matching `pattern` (capture group 1 = key) is in the user's folder. With
 * `dataDir`, an entry whose listed Subject does not match (a message archived raw-only lists none) is
 * identified by the Subject header in its raw bytes.
 */
export async function archivedBySubject(s: SpawnedServer, pattern: RegExp, options: { dataDir?: string; user?: string; folder?: string } = {}): Promise<{ counts: Map<string, number>; uids: Map<string, number>; other: string[]; fromRaw: string[] }> {
  const { user = 'journal', folder = 'Inbox' } = options;
  const counts = new Map<string, number>();
  const uids = new Map<string, number>();
  const other: string[] = [];
  const fromRaw: string[] = [];
  let after = 0;
  for (;;) {
    const page = await call<{ entries: Array<{ uid: number; subject: string }> }>(s, 'GET', `/api/v1/archive/${user}/messages?folder=${folder}&afterUid=${after}&limit=5000`);
    if (page.entries.length === 0) break;
    for (const e of page.entries) {
      after = e.uid;
      let key = pattern.exec(e.subject)?.[1];
      if (key === undefined && options.dataDir !== undefined) {
        const raw = await rawMessage(s, options.dataDir, e.uid, user, folder);
        key = pattern.exec(/^Subject: ([^\r\n]*)\r?$/m.exec(raw)?.[1] ?? '')?.[1];
        if (key !== undefined) fromRaw.push(key);
      }
      if (key === undefined) {
        other.push(e.subject);
        continue;
      }
      counts.set(key, (counts.get(key) ?? 0) + 1);
      uids.set(key, e.uid);
    }
  }
  return { counts, uids, other, fromRaw };
}

/** An admin API call that gives up after `timeoutMs` (a request can hang while a database reopens). */
export function call<T>(s: SpawnedServer, method: string, path: string, body?: unknown, timeoutMs = 20000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([s.api<T>(method, path, body), timeout]).finally(() => clearTimeout(timer));
}

export interface StatusView {
  intake: { depth: number; active: number; deferred: number; corrupt: number; held: number; processing: number };
  durability: { refusingWrites: string[]; lostWrites: unknown[] };
}

export function status(s: SpawnedServer): Promise<StatusView> {
  return call<StatusView>(s, 'GET', '/api/v1/status');
}

export interface IntakeEntryView {
  id: string;
  state: string;
  attempts: number;
  lastError: string | null;
  crashes?: number;
}

export async function intakeEntries(s: SpawnedServer, state?: string): Promise<IntakeEntryView[]> {
  return (await call<{ entries: IntakeEntryView[] }>(s, 'GET', `/api/v1/intake${state ? `?state=${state}` : ''}`)).entries;
}

export interface VerifyView {
  ok: boolean;
  total: number;
  startedAt: string;
  cancelled: boolean;
  checked: { blobs: number; messages: number; entries: number };
  problems: Record<string, number>;
  details: Array<{ kind: string; detail: string }>;
}

/** Start a verify run through the admin API and wait for its report. */
export async function runVerify(s: SpawnedServer, timeoutMs = 120000): Promise<VerifyView> {
  const asked = Date.now();
  await call(s, 'POST', '/api/v1/verify');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await call<{ running: boolean; last: VerifyView | null; lastError: string | null }>(s, 'GET', '/api/v1/verify');
    if (!v.running && v.lastError) throw new Error(`Verify failed: ${v.lastError}`);
    if (!v.running && v.last && Date.parse(v.last.startedAt) >= asked - 1000) return v.last;
    if (Date.now() > deadline) throw new Error(`Verify did not finish in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Poll until `done` holds (a throwing `done` counts as not yet); throws with `describe()` and the last error after the timeout. */
export async function waitFor(done: () => Promise<boolean>, timeoutMs: number, describe: () => Promise<string> | string, everyMs = 200): Promise<number> {
  const started = Date.now();
  let lastError: string | null = null;
  for (;;) {
    try {
      if (await done()) return Date.now() - started;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() - started > timeoutMs) {
      let text: string;
      try {
        text = await describe();
      } catch (err) {
        text = `(no description: ${(err as Error).message})`;
      }
      throw new Error(`${text} (after ${timeoutMs} ms${lastError ? `; last error: ${lastError}` : ''})`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The raw bytes of an archived message (admin token from the data directory). */
export async function rawMessage(s: SpawnedServer, dataDir: string, uid: number, user = 'journal', folder = 'Inbox'): Promise<string> {
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const res = await fetch(`http://127.0.0.1:${s.adminPort}/api/v1/archive/${user}/messages/${uid}/raw?folder=${folder}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(20000) });
  if (!res.ok) throw new Error(`Raw message ${user}/${folder}/${uid}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer()).toString('latin1');
}

async function metricsText(s: SpawnedServer): Promise<string> {
  return (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`, { signal: AbortSignal.timeout(20000) })).text();
}

/** A metric's value from Prometheus text (first sample whose line starts with `prefix`), or 0. */
export async function metricValue(s: SpawnedServer, prefix: string): Promise<number> {
  const line = (await metricsText(s)).split('\n').find((l) => l.startsWith(prefix));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** The postern_storage_* and intake gauge samples, one line (for failure messages). */
export async function storageMetrics(s: SpawnedServer): Promise<string> {
  try {
    return (await metricsText(s)).split('\n').filter((l) => /^postern_(storage|intake)_/.test(l)).join('; ');
  } catch (err) {
    return `(metrics unavailable: ${(err as Error).message})`;
  }
}
