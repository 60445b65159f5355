// `postern export (--user U [--folder F] | --targets MODE … | --hold CASE | --query Q) --format mbox|eml|zip --output PATH`:
// starts an export on the running server (POST /api/v1/exports), follows its progress, downloads the
// result here, checks every byte against the SHA-256 the server reported (and, for eml, every message
// against SHA256SUMS), writes the companions beside it, then deletes the server's copy (--keep leaves
// it until it expires). What lands where:
//   mbox  PATH, PATH.manifest.jsonl, PATH.SHA256SUMS (both files by their local names)
//   eml   the directory PATH: USER/FOLDER/UID.eml, manifest.jsonl, SHA256SUMS (`cd PATH && sha256sum -c SHA256SUMS`)
//   zip   PATH (the same layout inside) and PATH.SHA256SUMS
// Acts with the admin token, or as an archive user with --as (password from POSTERN_PASSWORD).
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import yauzl from 'yauzl';
import type { ExportFileInfo, ExportFormat, ExportRecord } from '../export/types.ts';
import { targetOptions, targetsFrom, type TargetFlags } from './target-flags.ts';
import { AdminClientError, errorOf, type AdminTarget } from './client.ts';
import { count } from './text.ts';

interface ExportOptions extends TargetFlags {
  user?: string;
  folder?: string;
  hold?: string;
  query?: string;
  format: string;
  output: string;
  as?: string;
  keep?: boolean;
  force?: boolean;
  json?: boolean;
}

/** The admin API with the token or, with --as, a user's name and password. */
class Api {
  constructor(private readonly url: string, private readonly authorization: string, private readonly insecure: boolean) {}

  static of(target: () => AdminTarget, urlOverride: string | undefined, as: string | undefined): Api {
    if (!as) {
      const t = target();
      return new Api(t.url, `Bearer ${t.token}`, t.insecure);
    }
    const password = process.env.POSTERN_PASSWORD;
    if (!password) throw new AdminClientError(`--as ${as} needs the password of "${as}" in the environment variable POSTERN_PASSWORD`, null);
    const url = urlOverride ?? target().url;
    return new Api(url, `Basic ${Buffer.from(`${as}:${password}`).toString('base64')}`, url.startsWith('https:'));
  }

  request(method: string, path: string, body?: unknown): Promise<IncomingMessage> {
    const url = new URL(path, this.url);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method,
      headers: { authorization: this.authorization, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
      ...(url.protocol === 'https:' ? { rejectUnauthorized: !this.insecure } : {}),
      timeout: 60_000,
    });
    return new Promise((resolvePromise, reject) => {
      req.on('response', resolvePromise);
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'ECONNREFUSED' ? 'nothing is listening there; is `postern serve` running?' : err.message;
        reject(new AdminClientError(`Cannot reach the admin API at ${this.url}: ${why}`, null));
      });
      req.end(payload);
    });
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body);
    if ((res.statusCode ?? 500) >= 400) {
      if (res.statusCode === 401 && this.authorization.startsWith('Basic ')) {
        res.resume();
        throw new AdminClientError('Wrong user name or password for --as (POSTERN_PASSWORD), or the user may not sign in (needs the "login" privilege)', 401);
      }
      throw await errorOf(res);
    }
    const parts: Buffer[] = [];
    for await (const chunk of res as AsyncIterable<Buffer>) parts.push(chunk);
    try {
      return JSON.parse(Buffer.concat(parts).toString('utf8')) as T;
    } catch {
      throw new AdminClientError(`Admin API answered ${res.statusCode} with a body that is not JSON`, res.statusCode ?? null);
    }
  }

  /** Download to `path` (created new), checking size and SHA-256 against what the server reported. */
  async download(apiPath: string, path: string, expected: ExportFileInfo): Promise<void> {
    const res = await this.request('GET', apiPath);
    if ((res.statusCode ?? 500) >= 400) throw await errorOf(res);
    const hash = createHash('sha256');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      await pipeline(res, tap, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
      const sha256 = hash.digest('hex');
      if (size !== expected.size || sha256 !== expected.sha256) {
        throw new AdminClientError(`The download of ${apiPath} does not match: ${size} bytes with SHA-256 ${sha256}, the server reported ${expected.size} bytes with ${expected.sha256}`, null);
      }
    } catch (err) {
      await rm(path, { force: true });
      throw err;
    }
  }
}

function selectionOf(o: ExportOptions): Record<string, unknown> {
  const targets = targetsFrom(o);
  const given = [o.user, o.hold, o.query, targets].filter((v) => v !== undefined).length;
  if (given !== 1) throw new AdminClientError('Give exactly one of --user, --hold or --query, or --targets (several archives)', null);
  if (targets) return { targets };
  if (o.folder !== undefined && o.user === undefined) throw new AdminClientError('--folder is only meaningful with --user', null);
  if (o.hold !== undefined) return { hold: o.hold };
  if (o.query !== undefined) return { query: o.query };
  return { user: o.user as string, ...(o.folder !== undefined ? { folder: o.folder } : {}) };
}

/** Refuse to overwrite: a file (unless --force) or, for eml, a directory that is not empty. */
function checkOutput(path: string, format: ExportFormat, force: boolean): void {
  if (!existsSync(path)) {
    if (!existsSync(dirname(path))) throw new AdminClientError(`The directory of --output "${path}" does not exist`, null);
    return;
  }
  if (format === 'eml') {
    if (!statSync(path).isDirectory() || readdirSync(path).length > 0) throw new AdminClientError(`--output "${path}" exists and is not an empty directory`, null);
    return;
  }
  if (statSync(path).isDirectory()) throw new AdminClientError(`--output "${path}" is a directory; give a file name`, null);
  if (!force) throw new AdminClientError(`--output "${path}" exists; remove it or give --force`, null);
}

/** Unpack the eml export's zip into `dir`, checking every file against SHA256SUMS and the manifest's SHA-256. */
async function unpack(zipPath: string, dir: string, manifest: ExportFileInfo): Promise<number> {
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true, validateEntrySizes: true, strictFileNames: true });
  const written = new Map<string, string>();
  const root = resolve(dir);
  try {
    for await (const entry of zip.eachEntry()) {
      const target = resolve(root, entry.fileName);
      if (!target.startsWith(root + sep)) throw new AdminClientError(`The export holds a file outside its directory: "${entry.fileName}"`, null);
      if (entry.fileName.endsWith('/')) {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      const hash = createHash('sha256');
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      await pipeline(await zip.openReadStreamPromise(entry), tap, createWriteStream(target, { flags: 'wx', mode: 0o600 }));
      written.set(entry.fileName, hash.digest('hex'));
    }
  } finally {
    zip.close();
  }
  if (written.get('manifest.jsonl') !== manifest.sha256) throw new AdminClientError('The unpacked manifest.jsonl does not have the SHA-256 the server reported', null);
  const sums = await readFile(join(dir, 'SHA256SUMS'), 'utf8').catch(() => {
    throw new AdminClientError('The export has no SHA256SUMS', null);
  });
  let listed = 0;
  for (const line of sums.split('\n')) {
    if (line === '') continue;
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (!m) throw new AdminClientError(`SHA256SUMS has a line that is not "HASH  NAME": ${JSON.stringify(line.slice(0, 100))}`, null);
    if (written.get(m[2] as string) !== m[1]) throw new AdminClientError(`"${m[2]}" does not match its SHA-256 in SHA256SUMS`, null);
    listed++;
  }
  const emls = [...written.keys()].filter((f) => f.endsWith('.eml')).length;
  if (listed !== emls + 1) throw new AdminClientError(`SHA256SUMS lists ${listed} files; the export has ${emls} messages and the manifest`, null);
  return emls;
}

const done = (r: ExportRecord): boolean => r.status !== 'queued' && r.status !== 'running';

export function addExportCommands(program: Command, target: () => AdminTarget): void {
  targetOptions(program.command('export'))
    .description('export archived mail with a manifest, byte-identical: a user (or folder), several users (--targets), a legal hold, or a search query')
    .option('-u, --user <name>', "the user's archive (all folders, or --folder)")
    .option('-f, --folder <folder>', 'with --user: only this folder (INBOX and any letter case work)')
    .option('--hold <name>', 'every entry the legal hold covers, in every archive')
    .option('-q, --query <query>', 'the hits of a full-text search (needs the search plugin)')
    .requiredOption('--format <format>', 'mbox (mboxrd), eml (a directory of .eml files) or zip')
    .requiredOption('-o, --output <path>', 'the mbox or zip file, or the directory for eml (created; must be empty)')
    .option('--as <user>', 'act as this archive user (password from POSTERN_PASSWORD) instead of with the admin token')
    .option('--keep', 'leave the export on the server after the download (deleted when it expires)')
    .option('--force', 'overwrite an existing mbox or zip file')
    .option('--json', 'print the export record and the local files as JSON')
    .action(async (o: ExportOptions) => {
      if (o.format !== 'mbox' && o.format !== 'eml' && o.format !== 'zip') throw new AdminClientError(`--format must be mbox, eml or zip, not "${o.format}"`, null);
      const format: ExportFormat = o.format;
      const selection = selectionOf(o);
      const output = resolve(o.output);
      checkOutput(output, format, o.force === true);
      const api = Api.of(target, program.opts<{ url?: string }>().url, o.as);
      const created = await api.json<{ export: ExportRecord }>('POST', '/api/v1/exports', { selection, format });
      const id = created.export.id;
      const path = `/api/v1/exports/${id}`;
      const tty = process.stderr.isTTY === true;
      let rec = created.export;
      while (!done(rec)) {
        await new Promise((r) => setTimeout(r, 300));
        rec = (await api.json<{ export: ExportRecord }>('GET', path)).export;
        if (tty) process.stderr.write(`\rExport ${id}: ${rec.status}, ${rec.counts.exported} exported, ${rec.counts.failed} failed, ${count(rec.counts.bytes, 'byte')}\u001b[K`);
      }
      if (tty) process.stderr.write('\r\u001b[K');
      if (!rec.file || !rec.manifest || (rec.status !== 'succeeded' && rec.status !== 'completed-with-errors')) {
        throw new AdminClientError(`Export ${id} ${rec.status}: ${rec.errors.join('; ') || 'no file'}`, null);
      }
      const files: string[] = [];
      const name = basename(output);
      if (format === 'eml') {
        const zipPath = join(dirname(output), `.${name}.${id}.zip`);
        try {
          await api.download(`${path}/file`, zipPath, rec.file);
          await mkdir(output, { recursive: true, mode: 0o700 });
          await unpack(zipPath, output, rec.manifest);
        } finally {
          await rm(zipPath, { force: true });
        }
        files.push(output, join(output, 'manifest.jsonl'), join(output, 'SHA256SUMS'));
      } else {
        const part = `${output}.${id}.part`;
        await api.download(`${path}/file`, part, rec.file);
        await rename(part, output);
        const sums = [`${rec.file.sha256}  ${name}\n`];
        files.push(output);
        if (format === 'mbox') {
          const manifestPath = `${output}.manifest.jsonl`;
          await rm(manifestPath, { force: true });
          await api.download(`${path}/manifest`, manifestPath, rec.manifest);
          sums.push(`${rec.manifest.sha256}  ${basename(manifestPath)}\n`);
          files.push(manifestPath);
        }
        await writeFile(`${output}.SHA256SUMS`, sums.join(''), { mode: 0o600 });
        files.push(`${output}.SHA256SUMS`);
      }
      if (!o.keep) await api.json('DELETE', path);
      if (o.json) {
        process.stdout.write(JSON.stringify({ export: rec, files, keptOnServer: o.keep === true }, null, 2) + '\n');
      } else {
        const check = format === 'eml' ? `cd ${output} && sha256sum -c SHA256SUMS` : `cd ${dirname(output)} && sha256sum -c ${name}.SHA256SUMS`;
        process.stdout.write([
          `Exported ${count(rec.counts.exported, 'message')} (${count(rec.counts.bytes, 'byte')}) as ${format} to ${output}`,
          `Manifest: SHA-256 ${rec.manifest.sha256} (audit record ${rec.auditSeq ?? '-'})`,
          `Check:    ${check}`,
          ...(rec.counts.failed > 0 ? [`Failed:   ${rec.counts.failed} (listed in the manifest):`, ...rec.errors.map((e) => `  ${e}`)] : []),
          ...(o.keep ? [`Kept on the server as export ${id} until ${rec.expiresAt ?? '-'}`] : []),
        ].join('\n') + '\n');
      }
      if (rec.status !== 'succeeded') process.exitCode = 1;
    });
}
