// Runs the `postern` command as a child process against a running server (CLI protocol tests).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../core/cli/postern.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `postern ARGS` with the data directory and admin port of the server under test (port 1 when none). */
export function runCli(args: string[], target: { dataDir: string; adminPort: number | undefined }, env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      env: { ...process.env, POSTERN_DATA_DIR: target.dataDir, POSTERN_ADMIN_PORT: String(target.adminPort ?? 1), ...env },
    }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) }));
  });
}
