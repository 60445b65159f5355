// The compliance areas of the admin API are reserved: core/compliance/access.ts lets every signed-in user
// through to them (their routes check privileges themselves), so no other module may add a route there,
// before or after the compliance routes are added.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminRoutes } from '../../../core/admin/routes.ts';
import { addComplianceRoutes } from '../../../core/compliance/routes.ts';
import { COMPLIANCE_AREAS } from '../../../core/compliance/access.ts';
import { ComplianceService } from '../../../core/compliance/service.ts';
import { KvArchiveStore } from '../../../core/storage/kv-archive.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { HookRegistry } from '../../../core/app/hooks.ts';
import { createLogger } from '../../../core/log.ts';
import { createMetrics } from '../../../core/metrics.ts';
import { isPosternError } from '../../../core/errors.ts';

const conflict = (e: unknown): boolean => isPosternError(e, 'PLUGIN_CONFLICT');
const handler = async (): Promise<{ body: unknown }> => ({ body: {} });

function withCompliance(fn: (add: (routes: AdminRoutes) => void) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'postern-reserved-'));
  try {
    const archive = new KvArchiveStore(new RocksEngine(join(dir, 'archive')));
    const log = createLogger({ level: 'error' });
    const service = new ComplianceService({ archive, hooks: new HookRegistry(log, 1000), log, metrics: createMetrics(), audit: () => null });
    fn((routes) => addComplianceRoutes(routes, archive, service));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('no other owner can add a route under a compliance area after the compliance routes', () => withCompliance((addCompliance) => {
  const routes = new AdminRoutes();
  addCompliance(routes);
  for (const area of COMPLIANCE_AREAS) {
    assert.throws(() => routes.add('GET', `${area}/export`, handler, 'some-plugin'), conflict, area);
  }
  assert.throws(() => routes.add('POST', 'entries/:user/undelete', handler, 'some-plugin'), conflict);
  routes.add('GET', 'reports', handler, 'some-plugin');  // other areas stay open to plugins
  assert.ok(routes.match('GET', ['reports']));
}));

test('a route another owner added there first stops the compliance routes from loading', () => withCompliance((addCompliance) => {
  const routes = new AdminRoutes();
  routes.add('GET', 'entries/export', handler, 'some-plugin');
  assert.throws(() => addCompliance(routes), /reserved for "compliance" but "some-plugin" has a route there/);
}));

test('reserve: the owner itself may add routes in its areas', () => {
  const routes = new AdminRoutes();
  routes.reserve(['cases'], 'legal');
  routes.add('GET', 'cases/:id', handler, 'legal');
  assert.throws(() => routes.add('GET', 'cases', handler, 'core'), conflict);
  assert.ok(routes.match('GET', ['cases', '7']));
});
