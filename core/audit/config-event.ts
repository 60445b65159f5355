// The `config.loaded` audit record written at every start: a SHA-256 of the effective configuration
// (file + environment + defaults) and of each setting down to section.key, and which of those changed
// since the previous start. That covers edits of the YAML file between runs (the running server never
// changes its configuration). Values are only hashed, so secrets in the configuration never reach the
// log. The previous start's record is found through `audit-config.json` in the data directory (a seq
// pointer, re-checked against the record itself). Hands on the written record.
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import { canonicalJson } from './canonical.ts';
import type { AuditLog, AuditRecord } from './types.ts';

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A hash per setting path ("smtp.port", "users", "plugins"), two levels deep. */
export function configFingerprint(config: Config): { hash: string; keys: Record<string, string> } {
  const plain = JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
  const keys: Record<string, string> = {};
  for (const [k, v] of Object.entries(plain)) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) keys[`${k}.${k2}`] = sha(canonicalJson(v2)).slice(0, 16);
    } else keys[k] = sha(canonicalJson(v)).slice(0, 16);
  }
  return { hash: sha(canonicalJson(plain)), keys };
}

function pointerFile(dataDir: string): string {
  return join(dataDir, 'audit-config.json');
}

async function previousKeys(audit: AuditLog, dataDir: string): Promise<{ seq: number; hash: string; keys: Record<string, string> } | null> {
  let seq: number;
  try {
    seq = (JSON.parse(readFileSync(pointerFile(dataDir), 'utf8')) as { seq: number }).seq;
  } catch {
    return null;
  }
  if (!Number.isSafeInteger(seq) || seq < 1) return null;
  for await (const r of audit.list({ fromSeq: seq, limit: 1 })) {
    const d = r.details as { hash?: unknown; keys?: unknown } | undefined;
    if (r.seq !== seq || r.action !== 'config.loaded' || typeof d?.hash !== 'string' || typeof d.keys !== 'object' || d.keys === null) return null;
    return { seq, hash: d.hash, keys: d.keys as Record<string, string> };
  }
  return null;
}

export async function recordConfigLoaded(audit: AuditLog, config: Config, file: string | null): Promise<AuditRecord> {
  const now = configFingerprint(config);
  const prev = await previousKeys(audit, config.dataDir);
  const changed: string[] = [];
  if (prev) {
    for (const k of new Set([...Object.keys(prev.keys), ...Object.keys(now.keys)])) if (prev.keys[k] !== now.keys[k]) changed.push(k);
    changed.sort();
  }
  const record = await audit.record({
    category: 'config', action: 'config.loaded', actor: 'system', target: file ?? '(defaults)', outcome: 'success',
    details: {
      hash: now.hash, keys: now.keys,
      previous: prev ? { seq: prev.seq, hash: prev.hash } : null,
      changed: prev ? (prev.hash === now.hash ? [] : changed) : null,
    },
  });
  const tmp = `${pointerFile(config.dataDir)}.tmp`;
  writeFileSync(tmp, JSON.stringify({ seq: record.seq }) + '\n', { mode: 0o600 });
  renameSync(tmp, pointerFile(config.dataDir));
  return record;
}
