// Wires API sessions into the gateway: the store in <dataDir>/api-sessions.json with admin.sessionHours
// as lifetime, and its routes in the admin route table (before plugins load, so the area is reserved).
import { join } from 'node:path';
import type { App } from '../app/app.ts';
import type { AuditLog } from '../audit/types.ts';
import { ApiSessions } from './sessions.ts';
import { addSessionRoutes } from './session-routes.ts';

export const SESSIONS_FILE = 'api-sessions.json';

export function setupApiSessions(app: App): ApiSessions {
  const config = app.service('config');
  const archive = app.service('archive');
  const sessions = new ApiSessions({ file: join(config.dataDir, SESSIONS_FILE), archive, ttlMs: config.admin.sessionHours * 3_600_000 });
  const audit = (): AuditLog | null => (app.hasService('audit') ? app.service('audit') : null);
  addSessionRoutes(app.service('adminRoutes'), { sessions, archive, audit, log: app.service('log').child({ component: 'admin' }) });
  return sessions;
}
