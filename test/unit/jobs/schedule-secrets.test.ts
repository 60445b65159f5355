// Schedules (intervals and cron) and sealed job secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nextRun, parseSchedule } from '../../../core/jobs/schedule.ts';
import { SecretBox, redactOptions } from '../../../core/jobs/secrets.ts';

test('intervals: s/m/h/d with fractions; next run from the last start, never in the past', () => {
  const s = parseSchedule('1.5h');
  assert.deepEqual(s, { type: 'interval', ms: 5_400_000 });
  const now = new Date('2026-01-01T12:00:00Z');
  assert.equal(nextRun(s, null, now)?.toISOString(), '2026-01-01T13:30:00.000Z');
  assert.equal(nextRun(s, new Date('2026-01-01T11:00:00Z'), now)?.toISOString(), '2026-01-01T12:30:00.000Z');
  assert.equal(nextRun(s, new Date('2025-12-01T00:00:00Z'), now)?.toISOString(), now.toISOString());
  for (const bad of ['0s', '0.5s', '400d', '15', 'm15', '-1m', '']) assert.throws(() => parseSchedule(bad), /Schedule/);
});

test('cron expressions (croner), with an optional seconds field', () => {
  const s = parseSchedule('30 2 * * *');
  assert.equal(s.type, 'cron');
  const next = nextRun(s, null, new Date('2026-01-01T12:00:00Z'));
  assert.ok(next && next > new Date('2026-01-01T12:00:00Z'));
  assert.equal(next.getMinutes(), 30);
  assert.equal(next.getHours(), 2);
  assert.equal(parseSchedule('*/10 * * * * *').type, 'cron');
  assert.throws(() => parseSchedule('61 * * * *'), /neither an interval/);
  assert.throws(() => parseSchedule('x'.repeat(201)), /longer than 200/);
});

test('secrets: sealed with a key file made 0600, opened again, tamper and wrong key detected', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-secrets-'));
  try {
    const box = SecretBox.inDataDir(dir);
    const sealed = box.sealOptions({ password: 'pw', user: 'u', empty: '' }, ['password', 'empty', 'missing']);
    assert.match(String(sealed.password), /^enc:v1:/);
    assert.equal(sealed.user, 'u');
    assert.equal(sealed.empty, '');
    assert.equal(statSync(join(dir, 'jobs-secret.key')).mode & 0o777, 0o600);
    assert.deepEqual(box.openOptions(sealed, ['password']), { password: 'pw', user: 'u', empty: '' });
    assert.equal(box.sealOptions(sealed, ['password']).password, sealed.password, 'sealed values are not sealed twice');
    const raw = Buffer.from(String(sealed.password).slice(7), 'base64');
    raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
    assert.throws(() => box.open('enc:v1:' + raw.toString('base64')), /cannot be decrypted/);
    assert.throws(() => box.open('enc:v1:AAAA'), /truncated/);
    const other = join(dir, 'other.key');
    writeFileSync(other, 'ab'.repeat(32));
    assert.throws(() => new SecretBox(other).open(String(sealed.password)), /cannot be decrypted/);
    writeFileSync(join(dir, 'bad.key'), 'nothex');
    assert.throws(() => new SecretBox(join(dir, 'bad.key')).seal('x'), /64 hex characters/);
    assert.deepEqual(redactOptions({ password: 'x', other: 'y' }, ['password']), { password: '(secret)', other: 'y' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
