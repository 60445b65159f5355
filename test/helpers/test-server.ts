// Starts a real Postern in-process on ephemeral ports with a fresh data directory, for protocol tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../core/config/load.ts';
import type { Config } from '../../core/config/schema.ts';
import { startServer, type RunningServer } from '../../core/app/serve.ts';
import { createMemoryLogger } from '../../core/log.ts';
import type { ArchiveStore } from '../../core/storage/types.ts';

export interface TestServer {
  running: RunningServer;
  dataDir: string;
  smtpPort: number;
  adminPort: number;
  archive: ArchiveStore;
  logs: ReturnType<typeof createMemoryLogger>['lines'];
  /** Wait until every accepted message is archived. */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestServer(configure: (c: Config) => void = () => undefined, dataDir?: string): Promise<TestServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'postern-test-'));
  const loaded = loadConfig(null, { POSTERN_DATA_DIR: dir, POSTERN_SMTP_PORT: '0', POSTERN_ADMIN_PORT: '0' });
  loaded.config.shutdown.graceSeconds = 5;
  configure(loaded.config);
  const { logger, lines } = createMemoryLogger('debug');
  const running = await startServer(loaded, { log: logger });
  return {
    running,
    dataDir: dir,
    smtpPort: running.smtpPort ?? 0,
    adminPort: running.adminPort,
    archive: running.app.service('archive'),
    logs: lines,
    settle: () => running.queue.idle(),
    async stop() {
      await running.shutdown('test');
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function readAll(stream: NodeJS.ReadableStream | null): Promise<Buffer> {
  if (!stream) throw new Error('No stream');
  const parts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}
