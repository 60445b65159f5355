// `postern backup prune DIR --keep N`: removes all but the newest N complete snapshots, then every pack
// and metadata segment no remaining snapshot lists (packs are shared: one written by an old snapshot stays while a newer one
// uses it). Snapshots go first, packs after, so an interruption leaves only unreferenced packs, which
// the next prune removes. Holds the repository lock, so it never races a backup.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PosternError } from '../errors.ts';
import { fsyncDir } from './fsync-dir.ts';
import { takeLock } from './lock.ts';
import { chooseSnapshot, listSnapshots, paths, readManifest } from './manifest.ts';

export interface PruneResult {
  removedSnapshots: string[];
  removedPacks: number;
  freedBytes: number;
  kept: string[];
}

export async function pruneBackup(repo: string, keep: number): Promise<PruneResult> {
  if (!Number.isSafeInteger(keep) || keep < 1) throw new PosternError('INVALID_INPUT', `--keep must be at least 1, not ${keep}`);
  chooseSnapshot(repo, undefined);
  const release = takeLock(repo);
  try {
    const all = listSnapshots(repo);
    const kept = all.slice(-keep);
    const removed = all.slice(0, Math.max(0, all.length - keep));
    // Read every kept manifest before deleting anything: a damaged one stops the prune.
    const used = new Set(kept.flatMap((id) => readManifest(repo, id).files.map((f) => f.path)));
    for (const id of removed) rmSync(join(paths.snapshots(repo), id), { recursive: true, force: true });
    await fsyncDir(paths.snapshots(repo));
    let removedPacks = 0;
    let freedBytes = 0;
    const shared = [
      ...readdirSync(paths.packs(repo)).map((name) => `packs/${name}`),
      ...readdirSync(paths.segments(repo)).map((name) => `segments/${name}`),
    ];
    for (const rel of shared) {
      if (used.has(rel)) continue;
      const file = join(repo, rel);
      try {
        freedBytes += statSync(file).size;
      } catch {
        continue;
      }
      rmSync(file, { force: true });
      if (rel.startsWith('packs/')) removedPacks++;
    }
    await fsyncDir(paths.packs(repo));
    await fsyncDir(paths.segments(repo));
    return { removedSnapshots: removed, removedPacks, freedBytes, kept };
  } finally {
    release();
  }
}
