// Import source options: schema rules, date ranges, Date headers, credentials from file/env.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { checkSource, headerDate, inRange, resolvePassword, sourceOptions, type SourceOptions } from '../../../core/import/source.ts';

const schema = z.strictObject(sourceOptions).superRefine(checkSource);
const base = { server: 'mail.example', port: 993, username: 'journal', password: 'pw' };
const problems = (o: Record<string, unknown>): string => {
  const r = schema.safeParse(o);
  return r.success ? 'OK' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
};

test('defaults and valid definitions', () => {
  const o = schema.parse(base);
  assert.equal(o.tls, 'implicit');
  assert.equal(o.mode, 'journal');
  assert.equal(o.deleteAfterArchive, false);
  assert.equal(o.delaySeconds, 0);
  assert.equal(problems({ ...base, mode: 'single-user', user: 'alice', startDate: '20240101', endDate: '20240229', delaySeconds: 0.25 }), 'OK');
});

test('every bad definition names its field', () => {
  assert.match(problems({ ...base, password: undefined }), /password: give exactly one/);
  assert.match(problems({ ...base, passwordEnv: 'X' }), /password: give exactly one/);
  assert.match(problems({ ...base, mode: 'single-user' }), /user: single-user mode needs/);
  assert.match(problems({ ...base, user: 'alice' }), /user: only meaningful in single-user mode/);
  assert.match(problems({ ...base, startDate: '2024-01-01' }), /startDate: must be yyyymmdd/);
  assert.match(problems({ ...base, endDate: '20230229' }), /endDate: is not a calendar date/);
  assert.match(problems({ ...base, startDate: '20240102', endDate: '20240101' }), /endDate: is before startDate/);
  assert.match(problems({ ...base, acceptSelfSigned: true, fingerprint: 'AB:'.repeat(31) + 'AB' }), /fingerprint: pin a fingerprint or/);
  assert.match(problems({ ...base, tls: 'none', acceptSelfSigned: true }), /tls: certificate options need/);
  assert.match(problems({ ...base, fingerprint: 'zz' }), /fingerprint/);
  assert.match(problems({ ...base, delaySeconds: -1 }), /delaySeconds/);
  assert.match(problems({ ...base, maxQueueDepth: 0 }), /maxQueueDepth/);
  assert.match(problems({ ...base, reportTo: 'not an address' }), /reportTo/);
  assert.match(problems({ ...base, port: 70000 }), /port/);
  assert.match(problems({ ...base, surprise: 1 }), /surprise|Unrecognized/);
});

test('date ranges include the whole end day (UTC); unknown dates pass', () => {
  const o = { startDate: '20240101', endDate: '20240131' };
  assert.equal(inRange(o, new Date('2023-12-31T23:59:59Z')), false);
  assert.equal(inRange(o, new Date('2024-01-01T00:00:00Z')), true);
  assert.equal(inRange(o, new Date('2024-01-31T23:59:59Z')), true);
  assert.equal(inRange(o, new Date('2024-02-01T00:00:00Z')), false);
  assert.equal(inRange({ startDate: '', endDate: '' }, new Date('1990-01-01')), true);
  assert.equal(inRange(o, null), true);
});

test('Date header: folded, with comments; missing or garbage gives null; body dates ignored', () => {
  assert.equal(headerDate(Buffer.from('Subject: x\r\nDate: Mon, 3 Jun 2024\r\n 10:00:00 +0000 (UTC)\r\n\r\nbody'))?.toISOString(), '2024-06-03T10:00:00.000Z');
  assert.equal(headerDate(Buffer.from('Subject: x\n\nDate: Mon, 3 Jun 2024 10:00:00 +0000\n')), null);
  assert.equal(headerDate(Buffer.from('Date: yesterday-ish\r\n\r\n')), null);
  assert.equal(headerDate(Buffer.from([0xff, 0xfe, 0x00, 0x01])), null);
});

test('passwords from the definition, a file (one trailing newline removed) or the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-src-'));
  try {
    const file = join(dir, 'pw');
    writeFileSync(file, 'from-file\n');
    const o = schema.parse(base) as SourceOptions;
    assert.equal(resolvePassword(o), 'pw');
    assert.equal(resolvePassword({ ...o, password: undefined, passwordFile: file }), 'from-file');
    assert.throws(() => resolvePassword({ ...o, password: undefined, passwordFile: join(dir, 'none') }), /Password file .* cannot be read/);
    process.env.POSTERN_TEST_IMPORT_PW = 'from-env';
    assert.equal(resolvePassword({ ...o, password: undefined, passwordEnv: 'POSTERN_TEST_IMPORT_PW' }), 'from-env');
    assert.throws(() => resolvePassword({ ...o, password: undefined, passwordEnv: 'POSTERN_TEST_UNSET_PW' }), /is not set/);
  } finally {
    delete process.env.POSTERN_TEST_IMPORT_PW;
    rmSync(dir, { recursive: true, force: true });
  }
});
