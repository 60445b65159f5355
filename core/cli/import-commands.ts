// `postern import mbox|eml|maildir PATH [--user NAME]`: reads mail files here and uploads each message
// to the running server (POST /api/v1/import/message), which spools it into the durable intake.
// Shows a progress line on a terminal, prints a summary, and exits non-zero when anything failed.
// With --as USER (password from POSTERN_PASSWORD) a user with the `archive` privilege imports into
// their own archive (--user USER) instead of the admin token.
// Trusts the server's replies only as JSON it validates loosely; the files are untrusted input.
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { readMbox, type MboxFormat } from '../import/mbox.ts';
import { readEml, readMaildir } from '../import/files.ts';
import { AdminClientError, callJson, type AdminTarget } from './client.ts';
import { article, count } from './text.ts';

interface Upload {
  sha256: string;
  duplicate: boolean;
  /** With --user: the folder it goes into and whether that folder held it already. */
  filed: { user: string; folder: string; alreadyThere: boolean } | null;
}

interface Failure { where: string; reason: string }

/** Where uploads go and with which credential: the admin token, or --as a user's name and password. */
interface UploadTarget {
  url: string;
  authorization: string;
  insecure: boolean;
}

class Uploader {
  private readonly agent: HttpAgent | HttpsAgent;
  constructor(private readonly target: UploadTarget, parallel: number) {
    const o = { keepAlive: true, maxSockets: parallel };
    this.agent = target.url.startsWith('https:') ? new HttpsAgent(o) : new HttpAgent(o);
  }

  upload(bytes: Buffer, query: Record<string, string>): Promise<Upload> {
    const url = new URL(`/api/v1/import/message?${new URLSearchParams(query)}`, this.target.url);
    const secure = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(url, {
        method: 'POST',
        agent: this.agent,
        headers: { authorization: this.target.authorization, 'content-type': 'message/rfc822', 'content-length': bytes.length },
        ...(secure ? { rejectUnauthorized: !this.target.insecure } : {}),
        timeout: 120_000,
      }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          let body: { error?: string; duplicate?: boolean; sha256?: string; filed?: { user?: unknown; folder?: unknown; alreadyThere?: unknown } } = {};
          try {
            body = JSON.parse(Buffer.concat(parts).toString('utf8')) as typeof body;
          } catch {
            // a body that is not JSON is reported by status below
          }
          if ((res.statusCode ?? 500) >= 400) reject(new AdminClientError(body.error ?? `HTTP ${res.statusCode}`, res.statusCode ?? null));
          else {
            const f = body.filed;
            const filed = f && typeof f.user === 'string' && typeof f.folder === 'string' ? { user: f.user, folder: f.folder, alreadyThere: f.alreadyThere === true } : null;
            resolve({ sha256: typeof body.sha256 === 'string' ? body.sha256 : '', duplicate: body.duplicate === true, filed });
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'ECONNREFUSED' ? 'nothing is listening there; is `postern serve` running?' : err.message;
        reject(new AdminClientError(`Cannot reach the admin API at ${this.target.url}: ${why}`, null));
      });
      req.end(bytes);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

class Progress {
  found = 0;
  archived = 0;
  duplicates = 0;
  readonly failures: Failure[] = [];
  /** Per archive folder ("alice/Inbox"): entries added by this import and messages it held already. */
  readonly filed = new Map<string, { added: number; already: number }>();
  private readonly seen = new Set<string>();

  /** Counts a message filed into a user's folder; the same bytes twice in one run are added once. */
  file(sha256: string, f: NonNullable<Upload['filed']>): void {
    const where = `${f.user}/${f.folder}`;
    const c = this.filed.get(where) ?? { added: 0, already: 0 };
    const key = `${sha256}\u0000${where}`;
    if (f.alreadyThere || (sha256 !== '' && this.seen.has(key))) c.already++;
    else c.added++;
    this.seen.add(key);
    this.filed.set(where, c);
  }
  private last = 0;
  private readonly tty = process.stderr.isTTY === true;

  tick(fraction: number | null): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    const width = 30;
    const bar = fraction === null ? '' : `[${'#'.repeat(Math.round(fraction * width)).padEnd(width, '.')}] ${Math.floor(fraction * 100)}% `;
    process.stderr.write(`\r${bar}${this.found} found, ${this.archived} archived, ${count(this.duplicates, 'duplicate')}, ${this.failures.length} failed\u001b[K`);
  }

  done(): void {
    if (this.tty) process.stderr.write('\r\u001b[K');
  }
}

type Source = AsyncIterable<{ ok: true; where: string; folder: string | null; bytes: Buffer; fraction: number | null } | { ok: false; where: string; reason: string }>;

async function* mboxSource(path: string, format: MboxFormat): Source {
  const total = statSync(path).size || 1;
  for await (const m of readMbox(path, { format })) {
    const where = `${path}:${m.offset} (message ${m.index + 1})`;
    if (m.ok) yield { ok: true, where, folder: null, bytes: m.bytes, fraction: Math.min(1, m.offset / total) };
    else yield { ok: false, where, reason: m.reason };
  }
}

async function* fileSource(items: ReturnType<typeof readEml>): Source {
  for await (const f of items) {
    if (f.ok) yield { ok: true, where: f.path, folder: f.folder, bytes: f.bytes, fraction: null };
    else yield { ok: false, where: f.path, reason: f.reason };
  }
}

async function runImport(target: UploadTarget, source: Source, opts: { user?: string; folder?: string; direction: string; parallel: string }): Promise<void> {
  const parallel = Number(opts.parallel);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 32) throw new AdminClientError(`--parallel must be an integer from 1 to 32, not "${opts.parallel}"`, null);
  const up = new Uploader(target, parallel);
  const p = new Progress();
  // At most `parallel` uploads in flight (the server commits concurrent ones in one fsync); a fatal
  // error (server unreachable, bad token, unknown user) stops reading at once.
  const inFlight = new Set<Promise<void>>();
  let fatal: unknown = null;
  const one = async (item: { where: string; folder: string | null; bytes: Buffer; fraction: number | null }): Promise<void> => {
    const query: Record<string, string> = {};
    if (opts.user) {
      query.user = opts.user;
      query.direction = opts.direction;
      const folder = opts.folder ?? item.folder;
      if (folder) query.folder = folder;
    }
    try {
      const r = await up.upload(item.bytes, query);
      if (r.duplicate) p.duplicates++;
      else p.archived++;
      if (r.filed) p.file(r.sha256, r.filed);
    } catch (err) {
      const fatalError = err instanceof AdminClientError && (err.status === null || err.status === 401 || err.status === 403 || (err.status === 404 && opts.user));
      if (fatalError) fatal ??= err;
      else p.failures.push({ where: item.where, reason: (err as Error).message });
    }
    p.tick(item.fraction);
  };
  try {
    for await (const item of source) {
      if (fatal) break;
      p.found++;
      if (!item.ok) {
        p.failures.push({ where: item.where, reason: item.reason });
        p.tick(null);
        continue;
      }
      const task: Promise<void> = one(item).finally(() => inFlight.delete(task));
      inFlight.add(task);
      if (inFlight.size >= parallel) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    p.done();
    up.close();
  }
  if (fatal) throw fatal;
  // Archived/Duplicates count messages in the whole archive; a duplicate may still be new to the
  // archive it is filed into, so with --user the entries added there are reported per folder.
  const lines = [
    `Found:      ${p.found}`,
    `Archived:   ${p.archived} (submitted; new to the archive)`,
    `Duplicates: ${p.duplicates} (identical bytes were already archived${opts.user ? '' : '; still filed into any archive routing finds without them'})`,
    `Failed:     ${p.failures.length}`,
    ...p.failures.map((f) => `  ${f.where}: ${f.reason}`),
    ...[...p.filed].map(([where, c]) => `Into ${where}: ${count(c.added, 'entry', 'entries')} added, ${count(c.already, 'message')} already there`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  if (p.failures.length > 0) process.exitCode = 1;
}

export function addImportCommands(program: Command, target: () => AdminTarget): void {
  /** The admin token, or with --as the user's name and password (POSTERN_PASSWORD). */
  const uploadTarget = (o: { as?: string; user?: string }): UploadTarget => {
    if (!o.as) {
      const t = target();
      return { url: t.url, authorization: `Bearer ${t.token}`, insecure: t.insecure };
    }
    const password = process.env.POSTERN_PASSWORD;
    if (!password) throw new AdminClientError(`--as ${o.as} needs the password of "${o.as}" in the environment variable POSTERN_PASSWORD`, null);
    if (o.user !== o.as) throw new AdminClientError(`--as ${o.as} imports only into their own archive: add --user ${o.as}`, null);
    const url = program.opts<{ url?: string }>().url ?? target().url;
    return { url, authorization: `Basic ${Buffer.from(`${o.as}:${password}`).toString('base64')}`, insecure: url.startsWith('https:') };
  };
  const imp = program.command('import').description('import mail files into the archive of the running server');
  const common = (c: Command): Command => c
    .option('-u, --user <name>', "into this user's archive only (folders kept), instead of the multidrop router")
    .option('--as <user>', 'import as this archive user (needs the "archive" privilege; into their own archive, --user USER) with the password from POSTERN_PASSWORD')
    .option('--direction <dir>', 'with --user: "received" or "sent"', 'received')
    .option('-P, --parallel <n>', 'uploads in flight at once (1 keeps the archive order equal to the file order)', '4');
  common(imp.command('mbox <file>')
    .description('import an mbox file (mboxrd or mboxo "From " quoting)')
    .option('--format <format>', 'mboxrd (">From" quoting reversible) or mboxo', 'mboxrd')
    .option('-f, --folder <folder>', 'with --user: the archive folder (default: the received folder)'))
    .action(async (file: string, o: { user?: string; folder?: string; direction: string; format: string; parallel: string; as?: string }) => {
      if (o.format !== 'mboxrd' && o.format !== 'mboxo') throw new AdminClientError(`--format must be mboxrd or mboxo, not "${o.format}"`, null);
      await runImport(uploadTarget(o), mboxSource(file, o.format), o);
    });
  common(imp.command('eml <path>')
    .description('import an .eml file or every *.eml under a directory (recursive)')
    .option('-f, --folder <folder>', 'with --user: the archive folder (default: the received folder)'))
    .action(async (path: string, o: { user?: string; folder?: string; direction: string; parallel: string; as?: string }) => {
      await runImport(uploadTarget(o), fileSource(readEml(path)), o);
    });
  for (const proto of ['imap', 'pop3'] as const) {
    imp.command(proto)
      .description(`list the folders and message counts of ${article(proto.toUpperCase())} ${proto.toUpperCase()} mailbox (--list); imports run as jobs of kind import-${proto}`)
      .option('--list', 'dry run: show folders and message counts, import nothing')
      .option('-o, --options <json>', 'the source as job options (JSON object: server, port, tls, username, passwordFile …)')
      .option('--options-file <file>', 'read the options (JSON object) from a file')
      .action(async (o: { list?: boolean; options?: string; optionsFile?: string }) => {
        if (!o.list) {
          throw new AdminClientError(`Mailbox imports run as jobs: \`postern jobs create NAME --kind import-${proto} --options …\`, then \`postern jobs run NAME\`; here only --list is available`, null);
        }
        const text = o.optionsFile !== undefined ? readFileSync(o.optionsFile, 'utf8') : o.options;
        if (text === undefined) throw new AdminClientError('Give the source with --options or --options-file', null);
        let options: unknown;
        try {
          options = JSON.parse(text);
        } catch (err) {
          throw new AdminClientError(`Options must be a JSON object: ${(err as Error).message}`, null);
        }
        const res = await callJson<{ list: { server?: string; folders?: Array<{ folder: string; messages: number }> } }>(target(), 'POST', '/api/v1/job-list', { kind: `import-${proto}`, options });
        if (res.list.server) process.stdout.write(`Server: ${res.list.server}\n`);
        for (const f of res.list.folders ?? []) process.stdout.write(`${f.folder}\t${count(f.messages, 'message')}\n`);
      });
  }
  common(imp.command('maildir <path>')
    .description('import a Maildir or Maildir++ tree (cur/ and new/ of every folder; .A.B → A/B)'))
    .action(async (path: string, o: { user?: string; direction: string; parallel: string; as?: string }) => {
      await runImport(uploadTarget(o), fileSource(readMaildir(path)), o);
    });
}
