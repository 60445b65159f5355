// Who may export what: the export privilege; own archive for users; any archive for auditors and
// administrators; preview blocking keeps administrators (and the admin token) to their own archive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorizeExport } from '../../../core/export/access.ts';
import { isPosternError } from '../../../core/errors.ts';
import type { ArchiveStore, Privilege, UserRecord } from '../../../core/storage/types.ts';
import type { ExportSelection } from '../../../core/export/types.ts';

const people: Record<string, Privilege[]> = {
  plain: ['login'], exporter: ['login', 'export'], auditor: ['login', 'auditor', 'export'], auditorOnly: ['login', 'auditor'],
  admin: ['login', 'admin', 'export'], adminOnly: ['login', 'admin'],
};
const archive = {
  getUser: async (name: string): Promise<UserRecord | null> => (people[name] ? { name, privileges: people[name] } as UserRecord : null),
} as unknown as ArchiveStore;

const outcome = async (who: string, sel: ExportSelection, previewBlocking = false): Promise<string> => {
  try {
    const scope = await authorizeExport(archive, who, sel, previewBlocking);
    return scope === 'all' ? 'all' : scope.join(',') || 'none';
  } catch (err) {
    assert.ok(isPosternError(err, 'FORBIDDEN'));
    return 'forbidden';
  }
};

test('without preview blocking', async () => {
  const rows: Array<[string, ExportSelection, string]> = [
    ['plain', { user: 'plain' }, 'forbidden'],
    ['exporter', { user: 'exporter' }, 'exporter'],
    ['exporter', { user: 'plain' }, 'forbidden'],
    ['exporter', { hold: 'case' }, 'forbidden'],
    ['exporter', { query: 'x' }, 'exporter'],
    ['auditor', { user: 'plain' }, 'all'],
    ['auditor', { hold: 'case' }, 'all'],
    ['auditorOnly', { user: 'plain' }, 'forbidden'],
    ['admin', { user: 'plain' }, 'all'],
    ['adminOnly', { user: 'plain' }, 'forbidden'],
    ['admin-token', { user: 'plain' }, 'all'],
    ['admin-token', { hold: 'case' }, 'all'],
    ['gone', { user: 'gone' }, 'forbidden'],
  ];
  for (const [who, sel, want] of rows) assert.equal(await outcome(who, sel), want, `${who} ${JSON.stringify(sel)}`);
});

test('with preview blocking', async () => {
  const rows: Array<[string, ExportSelection, string]> = [
    ['admin', { user: 'plain' }, 'forbidden'],
    ['admin', { user: 'admin' }, 'admin'],
    ['admin', { hold: 'case' }, 'forbidden'],
    ['admin', { query: 'x' }, 'admin'],
    ['admin-token', { user: 'plain' }, 'forbidden'],
    ['admin-token', { query: 'x' }, 'forbidden'],
    ['auditor', { user: 'plain' }, 'all'],
    ['exporter', { user: 'exporter' }, 'exporter'],
  ];
  for (const [who, sel, want] of rows) assert.equal(await outcome(who, sel, true), want, `${who} ${JSON.stringify(sel)}`);
});
