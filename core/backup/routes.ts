// Admin API of backups: POST /api/v1/backups {"output": "/abs/dir"} starts one (202, or 409 while one
// runs); GET /api/v1/backups/current reports the latest (404 when none ran since start). Only the
// admin token: the output is a path on the server's machine.
import { z } from 'zod';
import type { AdminRoutes } from '../admin/routes.ts';
import { TOKEN_PRINCIPAL } from '../compliance/access.ts';
import { readJson, validated } from '../admin/http.ts';
import { PosternError } from '../errors.ts';
import type { BackupService } from './service.ts';

const startBody = z.object({ output: z.string().min(1).max(4096) }).strict();

export function addBackupRoutes(routes: AdminRoutes, service: BackupService): void {
  routes.add('POST', 'backups', async ({ req, principal }) => {
    if (principal !== TOKEN_PRINCIPAL) throw new PosternError('FORBIDDEN', 'Only the admin token may start a backup (it writes to the server\'s file system)');
    const body = validated(startBody, await readJson(req));
    return { status: 202, body: service.start(body.output, principal) };
  }, 'core', { summary: 'Start a backup of the embedded archive into a directory on the server', access: ['token'], body: startBody, responses: { 202: 'started', 400: 'invalid body', 409: 'a backup is running', 413: 'body too large' } });
  routes.add('GET', 'backups/current', async ({ principal }) => {
    if (principal !== TOKEN_PRINCIPAL) throw new PosternError('FORBIDDEN', 'Only the admin token may read backup status');
    const status = service.status();
    if (!status) throw new PosternError('NOT_FOUND', 'No backup has run since the server started');
    return { body: status };
  }, 'core', { summary: 'The latest backup since the server started', access: ['token'], responses: { 200: 'its status', 404: 'none ran since start' } });
}
