// The small pure parts of the audit log: which admin requests become which events (and which are not
// audited), the login and access event builders, the configuration fingerprint, and canonical JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adminEvent, type AdminRequestInfo } from '../../../core/audit/admin-audit.ts';
import { accessEvent, loginEvent } from '../../../core/audit/events.ts';
import { configFingerprint } from '../../../core/audit/config-event.ts';
import { canonicalJson, validEvent } from '../../../core/audit/canonical.ts';
import { defaultConfig } from '../../../core/config/schema.ts';

const req = (method: string, path: string, status: number, query = ''): AdminRequestInfo =>
  ({ method, path, search: new URLSearchParams(query), status, remote: '127.0.0.1', principal: 'admin-token' });

test('admin requests: token failures, changes and (when enabled) raw reads are audited; plain reads are not', () => {
  assert.deepEqual(adminEvent(req('GET', '/api/v1/users', 401), false), {
    category: 'login', action: 'api.token', actor: 'unknown', target: '/api/v1/users', outcome: 'failure', remote: '127.0.0.1', details: { method: 'GET' },
  });
  assert.equal(adminEvent(req('GET', '/api/v1/users', 200), true), null);
  assert.equal(adminEvent(req('GET', '/healthz', 200), true), null);
  const patch = adminEvent(req('PATCH', '/api/v1/users/alice', 200), false);
  assert.deepEqual([patch?.category, patch?.action, patch?.target, patch?.outcome], ['admin', 'api.users.patch', 'alice', 'success']);
  assert.equal(adminEvent(req('DELETE', '/api/v1/holds/case-1', 403), false)?.outcome, 'denied');
  assert.equal(adminEvent(req('POST', '/api/v1/users', 400), false)?.outcome, 'failure');
  assert.equal(adminEvent(req('GET', '/api/v1/archive/alice/messages/7/raw', 200, 'folder=Sent'), false), null);
  // A failed Basic sign-in and a throttled one are recorded by the sign-in (api.login), not again per request.
  assert.equal(adminEvent({ ...req('POST', '/api/v1/users', 401), signInFailure: 'basic' }, false), null);
  assert.equal(adminEvent({ ...req('POST', '/api/v1/users', 429), signInFailure: 'throttled' }, false), null);
  assert.equal(adminEvent({ ...req('GET', '/api/v1/users', 401), signInFailure: 'token' }, false)?.action, 'api.token');
  const read = adminEvent(req('GET', '/api/v1/archive/alice/messages/7/raw', 200, 'folder=Sent'), true);
  assert.deepEqual([read?.category, read?.action, read?.target], ['access', 'message.get', 'alice/Sent/7']);
});

test('admin requests with odd paths still make valid events (bad escapes, long paths, symbols)', () => {
  for (const path of ['/api/v1/users/%E0%A4%A', `/api/v1/${'x'.repeat(5000)}`, '/api/v1/%24%24/..', '/api/v1/', '/metrics']) {
    const e = adminEvent(req('POST', path, 404), false);
    if (e) validEvent(e);
  }
  assert.equal(adminEvent(req('POST', '/api/v1/%24%24', 404), false)?.action, 'api.root.post');
  assert.equal(adminEvent(req('POST', '/metrics', 404), false), null);
});

test('login and access events have one shape for every protocol', () => {
  assert.deepEqual(loginEvent({ via: 'imap', login: 'Alice@Example.com', user: 'alice', ok: true, remote: '192.0.2.1' }), {
    category: 'login', action: 'imap.login', actor: 'alice', target: 'Alice@Example.com', outcome: 'success', remote: '192.0.2.1',
  });
  const failed = loginEvent({ via: 'imap', login: 'x'.repeat(400), ok: false, reason: 'bad-password' });
  assert.equal(failed.target.length, 320);
  assert.deepEqual([failed.outcome, failed.details], ['failure', { reason: 'bad-password' }]);
  assert.equal(loginEvent({ via: 'api', login: '', ok: false }).actor, 'unknown');
  validEvent(failed);
  assert.equal(accessEvent({ user: 'a', auditor: false, target: 'b', folder: 'Inbox', uid: null, what: 'select', via: 'imap' }).target, 'b/Inbox');
});

test('the configuration fingerprint hashes every setting and changes only where the setting changed', () => {
  const a = configFingerprint(defaultConfig());
  const changed = defaultConfig();
  changed.smtp.port = 2600;
  const b = configFingerprint(changed);
  assert.notEqual(a.hash, b.hash);
  assert.deepEqual(Object.keys(a.keys).filter((k) => a.keys[k] !== b.keys[k]), ['smtp.port']);
  assert.equal(configFingerprint(defaultConfig()).hash, a.hash);
  assert.ok(Object.values(a.keys).every((h) => /^[0-9a-f]{16}$/.test(h)));
});

test('canonical JSON sorts keys at every level and drops undefined members', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: undefined }], c: 'x' } }), '{"a":{"c":"x","d":[1,{"z":1}]},"b":1}');
  assert.throws(() => canonicalJson({ x: Infinity }), { code: 'INVALID_INPUT' });
  assert.throws(() => canonicalJson(new Map()), { code: 'INVALID_INPUT' });
});
