// An analysis pool for tests that drive the archiving pipeline directly (one worker; close it after).
import { AnalysisPool, type AnalysisPoolOptions } from '../../core/pipeline/analysis-pool.ts';
import type { AnalyzerSpec } from '../../core/pipeline/analysis-types.ts';
import type { Logger } from '../../core/log.ts';

export function testAnalysisPool(log: Logger, specs: AnalyzerSpec[] = [], options: Partial<AnalysisPoolOptions> = {}): AnalysisPool {
  return new AnalysisPool(specs, { workers: 1, timeoutMs: 30000, memoryMb: 256, ...options }, log);
}
