// The dedup plugin's analyzer: the canonical hash of each new message (core/mime/canonical-hash.ts),
// computed in an analysis worker under the archiving budget. A message larger than maxHashBytes gets
// none (it is deduplicated by identical bytes only). Hands on { key } for the `dedup` hook.
import type { AnalyzerInput } from '../../core/pipeline/analysis-types.ts';
import { canonicalHash } from '../../core/mime/canonical-hash.ts';

export interface DedupAnalysis {
  /** Identity key: "c<version>:<hash>". */
  key: string;
}

async function readBounded(stream: AsyncIterable<Buffer>, max: number): Promise<Buffer | null> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > max) return null;
    parts.push(chunk);
  }
  // An in-memory message arrives as one chunk: hash it where it is instead of copying it.
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
}

export async function analyze(input: AnalyzerInput): Promise<DedupAnalysis | null> {
  const { maxHashBytes, prefix } = input.options as { maxHashBytes: number; prefix: string };
  if (input.size > maxHashBytes) return null;
  const bytes = await readBounded(input.open() as AsyncIterable<Buffer>, maxHashBytes);
  if (!bytes) return null;
  const { hash, version } = canonicalHash(bytes, input.headers);
  return { key: `${prefix}${version}:${hash}` };
}
