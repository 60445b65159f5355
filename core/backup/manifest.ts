// A backup repository's layout and each snapshot's manifest. A repository is a directory:
//   REPOSITORY                       marker ("postern-backup-repository 1")
//   packs/<snapshot>-<n>.pack        blob chunks, written once, shared by later snapshots
//   snapshots/<id>/manifest.json     written last: a snapshot without it is incomplete and ignored
//   segments/<sha256>.rec            every archive key but the chunks (directory, entries, messages,
//                                    retention, holds, audit chain, jobs) in content-addressed segments,
//                                    shared by later snapshots (segments.ts)
//   snapshots/<id>/metadata.idx      the segments of this snapshot in key order
//   snapshots/<id>/chunks.idx        one line per chunk present: "<sha256> <n> <pack> <offset> <length>"
//   snapshots/<id>/intake.rec        acknowledged messages not archived yet (records and spool files)
//   snapshots/<id>/files/<name>      small files of the data directory (jobs secret key, audit pointer)
// The manifest is read back from disk, so it is validated like any outside input.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { PosternError } from '../errors.ts';

export const REPOSITORY_MARKER = 'postern-backup-repository 1\n';
export const SNAPSHOT_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;
const SHA256 = /^[0-9a-f]{64}$/;

const fileEntry = z.object({
  path: z.string().regex(/^(packs\/[A-Za-z0-9T_.-]+\.pack|segments\/[0-9a-f]{64}\.rec|snapshots\/[A-Za-z0-9T_.-]+\/(metadata\.idx|chunks\.idx|intake\.rec|files\/[A-Za-z0-9_.-]+))$/),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(SHA256),
});

export const manifestSchema = z.object({
  format: z.literal('postern-backup'),
  version: z.literal(1),
  id: z.string().regex(SNAPSHOT_ID),
  parent: z.string().regex(SNAPSHOT_ID).nullable(),
  startedAt: z.string(),
  finishedAt: z.string(),
  postern: z.string(),
  source: z.object({ dataDir: z.string(), backend: z.literal('rocksdb') }),
  /** Blobs are encrypted with this key file, which the backup does not contain. */
  encryptionKeyFile: z.string().nullable(),
  counts: z.object({
    archiveKeys: z.number().int().nonnegative(),
    users: z.number().int().nonnegative(),
    messages: z.number().int().nonnegative(),
    entries: z.number().int().nonnegative(),
    blobs: z.number().int().nonnegative(),
    chunks: z.number().int().nonnegative(),
    chunksCopied: z.number().int().nonnegative(),
    chunksReused: z.number().int().nonnegative(),
    auditRecords: z.number().int().nonnegative(),
    intakeEntries: z.number().int().nonnegative(),
    bytesWritten: z.number().int().nonnegative(),
  }),
  auditHead: z.object({ seq: z.number().int().nonnegative(), hash: z.string() }).nullable(),
  files: z.array(fileEntry),
});

export type BackupManifest = z.infer<typeof manifestSchema>;
export type BackupFile = z.infer<typeof fileEntry>;

export const paths = {
  marker: (repo: string) => join(repo, 'REPOSITORY'),
  lock: (repo: string) => join(repo, 'lock'),
  packs: (repo: string) => join(repo, 'packs'),
  segments: (repo: string) => join(repo, 'segments'),
  pack: (id: string, n: number) => `packs/${id}-${String(n).padStart(4, '0')}.pack`,
  snapshots: (repo: string) => join(repo, 'snapshots'),
  /** Relative paths of a snapshot's files. */
  snapshotFile: (id: string, name: 'manifest.json' | 'metadata.idx' | 'chunks.idx' | 'intake.rec') => `snapshots/${id}/${name}`,
  dataFile: (id: string, name: string) => `snapshots/${id}/files/${name}`,
};

/** Files of the data directory a backup carries (small; everything else is in the databases or derived). */
export const DATA_FILES = ['jobs-secret.key', 'audit-config.json'] as const;

export function isRepository(dir: string): boolean {
  try {
    return readFileSync(paths.marker(dir), 'utf8') === REPOSITORY_MARKER;
  } catch {
    return false;
  }
}

/** Complete snapshots (those with a manifest), oldest first. */
export function listSnapshots(repo: string): string[] {
  const dir = paths.snapshots(repo);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => SNAPSHOT_ID.test(name) && existsSync(join(dir, name, 'manifest.json')))
    .sort();
}

export function readManifest(repo: string, id: string): BackupManifest {
  const file = join(repo, paths.snapshotFile(id, 'manifest.json'));
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new PosternError('BACKUP_CORRUPT', `Backup manifest "${file}" cannot be read: ${(err as Error).message}`);
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new PosternError('BACKUP_CORRUPT', `Backup manifest "${file}" is not valid at "${issue?.path.join('.') ?? ''}": ${issue?.message ?? 'unknown'}`);
  }
  if (result.data.id !== id) throw new PosternError('BACKUP_CORRUPT', `Backup manifest "${file}" names snapshot "${result.data.id}", not "${id}"`);
  return result.data;
}

/** The snapshot to restore: the one named, or the newest complete one. */
export function chooseSnapshot(repo: string, id: string | undefined): string {
  if (!isRepository(repo)) throw new PosternError('NOT_FOUND', `"${repo}" is not a Postern backup (no REPOSITORY marker)`);
  const all = listSnapshots(repo);
  if (id !== undefined) {
    if (!all.includes(id)) throw new PosternError('NOT_FOUND', `Backup "${repo}" has no complete snapshot "${id}" (complete: ${all.join(', ') || 'none'})`);
    return id;
  }
  const last = all.at(-1);
  if (last === undefined) throw new PosternError('NOT_FOUND', `Backup "${repo}" has no complete snapshot`);
  return last;
}

/** A chunk line of chunks.idx. */
export interface ChunkLocation {
  /** "<sha256>\0<n>", ordered like the archive's chunk keys. */
  key: string;
  pack: string;
  offset: number;
  length: number;
}

export function chunkLine(c: ChunkLocation): string {
  return `${c.key.replace('\u0000', ' ')} ${c.pack} ${c.offset} ${c.length}\n`;
}

const CHUNK_LINE = /^([0-9a-f]{64}) ([0-9a-f]{6}) (packs\/[A-Za-z0-9T_.-]+\.pack) (\d{1,15}) (\d{1,10})$/;

export function parseChunkLine(line: string, where: string): ChunkLocation {
  const m = CHUNK_LINE.exec(line);
  if (!m) throw new PosternError('BACKUP_CORRUPT', `${where}: not a chunk line: "${line.slice(0, 120)}"`);
  return { key: `${m[1]}\u0000${m[2]}`, pack: m[3] as string, offset: Number(m[4]), length: Number(m[5]) };
}
